// The SIMD kernels of one dispatch target. CMake compiles this file once per target (baseline,
// AVX2+FMA, AVX-512) with that target's flags and -DXENTCPP_TARGET=<name>; dispatch.cpp picks one.
//
// stats: a span is cut into blocks of kBlock elements (L1-resident). Per block:
//   1. m_b = max (one read from memory, done while the previous block's sums are computed);
//   2. s_b = sum exp(x - m_b), and the v-weighted sums when asked (a re-read from L1); the exps
//      kept for the gradient when asked, and in the same loop, one vector per exp, the same block
//      of another row's gradient (a pending ScaledGrad: the row before, written one row late);
// and blocks are merged exactly (simd::merge), so a row is read from memory once whatever its length.
// scaled_grad (GradBlock): the gradient from the kept exps, factor_b * e - v_coef * v per block, with
// factor_b = p_coef * exp(m_b - max) / sum: one multiply-add per element instead of an exp.
// Note: the per-block max keeps every exp argument <= 0, so s_b >= 1 and no block can overflow.
// Lanes accumulate in T within a block (<= kBlock / lanes terms each) and blocks in double.
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "half_bits.hpp"
#include "kernels.hpp"
#include "vector_math.hpp"

#define XENTCPP_STR2(x) #x
#define XENTCPP_STR(x) XENTCPP_STR2(x)

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {


// As many int64 labels, or doubles, as V<T> has lanes (two registers for float: the compiler splits them).
template <typename T>
struct Wide;
template <>
struct Wide<float> {
    typedef std::int64_t labels __attribute__((vector_size(Vec<float>::lanes * 8)));
    typedef double doubles __attribute__((vector_size(Vec<float>::lanes * 8)));
};
template <>
struct Wide<double> {
    typedef std::int64_t labels __attribute__((vector_size(Vec<double>::lanes * 8)));
    typedef double doubles __attribute__((vector_size(Vec<double>::lanes * 8)));
};
template <typename T>
using WideLabels = typename Wide<T>::labels;
template <typename T>
using WideDouble = typename Wide<T>::doubles;

constexpr std::int64_t kSmallPrefetchBytes = 4096;

template <typename T>
constexpr std::int64_t kLineElements = 64 / sizeof(T);  // one prefetch per 64-byte cache line

template <typename T>
constexpr T kMinusInf = -std::numeric_limits<T>::infinity();

template <typename T>
V<T> lane_index() {
    V<T> v{};
    for (int i = 0; i < Vec<T>::lanes; ++i) v[i] = static_cast<T>(i);
    return v;
}

// The multipliers v of lanes [c, c + lanes) (or only the first `valid` of them, the rest 0).
template <typename T, bool kWeight, bool kProbs>
V<T> multipliers(const T* weight, const T* probs, std::int64_t c, std::int64_t valid, V<T> keep, V<T> spread) {
    constexpr int L = Vec<T>::lanes;
    V<T> v = splat(T(1));
    if constexpr (kProbs) {
        v = mul_add<T>(valid == L ? load(probs + c) : load_partial(probs + c, valid, T(0)), keep, spread);
    }
    if constexpr (kWeight) {
        v = v * (valid == L ? load(weight + c) : load_partial(weight + c, valid, T(0)));
    }
    if (valid < L) v = lane_index<T>() < static_cast<T>(valid) ? v : splat(T(0));
    return v;
}

// Max of x[0, n) (NaN skipped).
// Note: four running maxima, so that the loop is not one chain of dependent max instructions (the
// max does not depend on the order).
template <typename T>
T block_max(const T* x, std::int64_t n) {
    constexpr int L = Vec<T>::lanes;
    V<T> vmax[4] = {splat(kMinusInf<T>), splat(kMinusInf<T>), splat(kMinusInf<T>), splat(kMinusInf<T>)};
    std::int64_t c = 0;
    for (; c + 4 * L <= n; c += 4 * L) {
        for (int k = 0; k < 4; ++k) vmax[k] = max_skip_nan(vmax[k], load(x + c + k * L));
    }
    for (; c + L <= n; c += L) vmax[0] = max_skip_nan(vmax[0], load(x + c));
    if (c < n) vmax[0] = max_skip_nan(vmax[0], load_partial(x + c, n - c, kMinusInf<T>));
    return reduce_max(max_skip_nan(max_skip_nan(vmax[0], vmax[1]), max_skip_nan(vmax[2], vmax[3])));
}

// The target's entry of store_gradient: g[target_at - c] = target_grad, when target_at falls in
// [c, c + valid). The row driver computes it in double from the row's statistics (p_y - 1 must not
// be rounded as p_y first: for a confident row p_y rounds to 1).
template <typename T>
XENTCPP_INLINE V<T> with_target(V<T> g, std::int64_t c, std::int64_t valid, std::int64_t target_at,
                                double target_grad) {
    if (target_at >= c && target_at < c + valid) g[target_at - c] = static_cast<T>(target_grad);
    return g;
}

// The first element of out[0, n) from which vectors can be streamed (aligned to the vector size);
// n when none can (not streaming, too short, or out not even aligned to T).
template <typename T>
std::int64_t stream_head(const T* out, std::int64_t n, bool stream) {
    const auto address = reinterpret_cast<std::uintptr_t>(out);
    if (!stream || address % sizeof(T) != 0) return n;
    const auto head = static_cast<std::int64_t>((kVectorBytes - address % kVectorBytes) % kVectorBytes) /
                      static_cast<std::int64_t>(sizeof(T));
    return head < n ? head : n;
}

// out[0, n) = value(c, valid), vector by vector, streamed from `head` (the first vector-aligned
// element; n: none) on, except the vectors [head, next) that the caller streamed already (next = head
// when none was). With a carry, the head completes the vector the carry holds when that vector
// continues here, and the tail is held instead of written (see Carry).
template <typename T, typename Value>
XENTCPP_INLINE void stream_rest(T* out, std::int64_t n, std::int64_t head, std::int64_t next, Carry<T>* carry,
                                const Value& value) {
    constexpr int L = Vec<T>::lanes;
    std::int64_t c = 0;
    if (head < n) {
        if (head > 0) {
            T* const vector = out + head - L;  // the aligned vector that the head ends
            if (carry && carry->at == vector && carry->count == L - head) {
                store_partial(carry->values + carry->count, head, value(0, head));
                store_stream(vector, load(carry->values));
                carry->at = nullptr;
            } else {
                store_partial(out, head, value(0, head));
            }
        }
        for (c = next; c + L <= n; c += L) store_stream(out + c, value(c, L));
        if (carry && c < n) {
            if (carry->at) store_partial(carry->at, carry->count, load(carry->values));
            store_partial(carry->values, n - c, value(c, n - c));
            carry->at = out + c;
            carry->count = n - c;
            return;
        }
    }
    for (; c + L <= n; c += L) store(out + c, value(c, L));
    if (c < n) store_partial(out + c, n - c, value(c, n - c));
}

// Block [start, start + len) of a ScaledGrad: its gradient vector by vector, from the exponentials
// that stats stored, with the one-hot correction (see store_gradient).
template <typename T, bool kV, bool kWeight, bool kProbs>
struct GradBlock {
    GradBlock() = default;
    GradBlock(const ScaledGrad<T>& g, std::int64_t start, std::int64_t length)
        : out(g.out + start),
          len(length),
          head(stream_head(g.out + start, length, g.stream)),
          e(g.e + start),
          weight(g.weight ? g.weight + start : nullptr),
          probs(g.probs ? g.probs + start : nullptr),
          target_at(g.target_at >= start && g.target_at < start + length ? g.target_at - start : -1),
          target_grad(g.target_grad),
          carry(g.carry),
          vv(splat(g.v_coef)),
          vkeep(splat(g.keep)),
          vspread(splat(g.spread)) {
        const T m = g.maxima[start / kBlock];
        const double scale = m == g.shift ? 1.0 : std::exp(static_cast<double>(m) - static_cast<double>(g.shift));
        factor = splat(static_cast<T>(static_cast<double>(g.p_coef) * scale / g.sum));
    }

    XENTCPP_INLINE V<T> operator()(std::int64_t c, std::int64_t valid) const {
        constexpr int L = Vec<T>::lanes;
        V<T> g = factor * (valid == L ? load(e + c) : load_partial(e + c, valid, T(0)));
        // Note: explicit fused multiply-adds, so that the gradient has the same bits written late
        // (inlined into block_stats) or at once (scaled_grad).
        if constexpr (kV) g = mul_add<T>(-vv, multipliers<T, kWeight, kProbs>(weight, probs, c, valid, vkeep, vspread), g);
        return with_target<T>(g, c, valid, target_at, target_grad);
    }

    // Everything but the vectors [head, next) already streamed (stream_rest).
    void finish(std::int64_t next) const { stream_rest(out, len, head, next, carry, *this); }

    T* out = nullptr;
    std::int64_t len = 0;
    std::int64_t head = 0;
    const T* e = nullptr;
    const T* weight = nullptr;
    const T* probs = nullptr;
    std::int64_t target_at = -1;
    double target_grad = 0.0;
    Carry<T>* carry = nullptr;
    V<T> factor{}, vv{}, vkeep{}, vspread{};
};

// Statistics of the block x[0, n) whose max is known; in the same loop, the max of the next block
// next[0, next_n) (next_n <= n) and, with kPending, the vectors of `pending` (a block of another
// row's gradient, of n elements).
// Note: software pipelining. The next block's loads go to memory while this block's exponentials are
// computed (from L1), so memory streams all the time instead of waiting for a separate max pass; and
// the previous row's streamed stores drain beside the arithmetic: after it, they stalled the core on
// its write-combining buffers and the two phases added up.
template <typename T, bool kDot, bool kWeight, bool kProbs, bool kStore, bool kPending>
SpanStats<T> block_stats(const T* x, std::int64_t n, T max, const T* weight, const T* probs, V<T> keep,
                         V<T> spread, const T* next, std::int64_t next_n, T& next_max, T* exp_out,
                         const GradBlock<T, kDot, kWeight, kProbs> pending) {
    constexpr int L = Vec<T>::lanes;
    SpanStats<T> out;
    out.max = max;
    const V<T> shift = splat(max == kMinusInf<T> ? T(0) : max);
    // Note: the sums in two levels, 16 vectors a run, then the runs: a lane's chain of additions
    // is at most 16 + kBlock / (16 lanes) long instead of kBlock / lanes (1 024 for doubles on the
    // baseline, whose rounding reached 200 eps in a row's sum of 131 072 exps).
    V<T> at_max{}, below{}, dot{}, mass{}, run_below{}, run_dot{}, run_mass{};
    const auto end_run = [&] {
        below += run_below;
        run_below = V<T>{};
        if constexpr (kDot) {
            dot += run_dot;
            mass += run_mass;
            run_dot = run_mass = V<T>{};
        }
    };
    V<T> vnext = splat(kMinusInf<T>);
    std::int64_t streamed = pending.head;  // the next pending vector to stream
    const auto accumulate = [&](V<T> z, std::int64_t c, std::int64_t valid) {
        // z <= 0: x minus the block's max. exp_sum, also for the exponentials stored for the gradient:
        // a loss must be the same with or without its gradient, and exp for the stored ones next to
        // exp_sum for the sum cost value_and_grad 15 % (see vector_math.hpp).
        const V<T> e = exp_sum(z);
        // The max's own exp(0) = 1s are counted apart from the other terms (see SpanStats); z is NaN
        // for a NaN logit, which is not 0 and so reaches the sum.
        const auto is_max = z == T(0);
        run_below += is_max ? splat(T(0)) : e;
        at_max += is_max ? splat(T(1)) : splat(T(0));
        if constexpr (kStore) {
            if (valid == L) store(exp_out + c, e);
            else store_partial(exp_out + c, valid, e);
        }
        if constexpr (kDot) {
            const V<T> v = multipliers<T, kWeight, kProbs>(weight, probs, c, valid, keep, spread);
            run_dot += v != 0 ? v * z : splat(T(0));  // a class of zero multiplier adds nothing, even at -inf
            run_mass += v;
        }
        if constexpr (kPending) {
            if (streamed + L <= pending.len) {
                store_stream(pending.out + streamed, pending(streamed, L));
                streamed += L;
            }
        }
        if (c % (16 * L) == 15 * L) end_run();
    };
    std::int64_t c = 0;
    for (; c + L <= next_n; c += L) {
        if (c % kLineElements<T> == 0) __builtin_prefetch(next + c + kBlock);
        vnext = max_skip_nan(vnext, load(next + c));
        accumulate(load(x + c) - shift, c, L);
    }
    if (c < next_n) vnext = max_skip_nan(vnext, load_partial(next + c, next_n - c, kMinusInf<T>));
    for (; c + L <= n; c += L) {
        // Past the next block (or in a row of one block): fetch what follows in memory, usually the
        // next rows, for the same reason.
        if (c % kLineElements<T> == 0) __builtin_prefetch(x + c + kBlock);
        accumulate(load(x + c) - shift, c, L);
    }
    if (c < n) accumulate(load_partial(x + c, n - c, kMinusInf<T>) - shift, c, n - c);
    end_run();
    if constexpr (kPending) pending.finish(streamed);
    next_max = reduce_max(vnext);
    out.at_max = reduce_sum(at_max);
    out.below_max = reduce_sum(below);
    if constexpr (kDot) {
        out.dot = reduce_sum(dot);
        out.mass = reduce_sum(mass);
    }
    return out;
}

template <typename T, bool kDot, bool kWeight, bool kProbs, bool kStore, bool kPending>
SpanStats<T> span_stats(const T* x, std::int64_t n, const T* weight, const T* probs, double keep, double spread,
                        T* exp_out, T* maxima, const ScaledGrad<T>* pending) {
    using Pending = GradBlock<T, kDot, kWeight, kProbs>;
    const V<T> vkeep = splat(static_cast<T>(keep));
    const V<T> vspread = splat(static_cast<T>(spread));
    const auto length = [&](std::int64_t start) { return n - start < kBlock ? n - start : kBlock; };
    SpanStats<T> total;
    T max = block_max(x, length(0));
    for (std::int64_t start = 0; start < n; start += kBlock) {
        const std::int64_t next = start + kBlock;
        const std::int64_t next_len = next < n ? length(next) : 0;
        T next_max = kMinusInf<T>;
        if constexpr (kStore) maxima[start / kBlock] = max;
        const SpanStats<T> block = block_stats<T, kDot, kWeight, kProbs, kStore, kPending>(
            x + start, length(start), max, weight ? weight + start : nullptr, probs ? probs + start : nullptr, vkeep,
            vspread, x + next, next_len, next_max, kStore ? exp_out + start : nullptr,
            kPending ? Pending(*pending, start, length(start)) : Pending());
        total = start == 0 ? block : merge(total, block);
        max = next_max;
    }
    return total;
}

template <typename T, bool kStore, bool kPending>
SpanStats<T> stats_dispatch(const T* x, std::int64_t n, const T* weight, const T* probs, double keep, double spread,
                            bool with_dot, T* exp_out, T* maxima, const ScaledGrad<T>* pending) {
    const auto run = [&](auto impl, const T* w, const T* t) {
        return impl(x, n, w, t, keep, spread, exp_out, maxima, pending);
    };
    if (!with_dot) return run(span_stats<T, false, false, false, kStore, kPending>, nullptr, nullptr);
    if (weight && probs) return run(span_stats<T, true, true, true, kStore, kPending>, weight, probs);
    if (weight) return run(span_stats<T, true, true, false, kStore, kPending>, weight, nullptr);
    if (probs) return run(span_stats<T, true, false, true, kStore, kPending>, nullptr, probs);
    return run(span_stats<T, true, false, false, kStore, kPending>, nullptr, nullptr);
}

template <typename T>
void scaled_grad(const ScaledGrad<T>& grad);

template <typename T>
SpanStats<T> stats(const T* x, std::int64_t n, const T* weight, const T* probs, double keep, double spread,
                   bool with_dot, T* exp_out, T* maxima, const ScaledGrad<T>* pending) {
    // The pending gradient shares the statistics' variant: v_coef != 0 where the dot is computed,
    // with the same weights and probabilities (one call's rows). Otherwise it is written first.
    if (pending && (!exp_out || (pending->v_coef != T(0)) != with_dot || (pending->weight != nullptr) != (weight != nullptr) ||
                    (pending->probs != nullptr) != (probs != nullptr))) {
        scaled_grad(*pending);
        pending = nullptr;
    }
    if (pending) return stats_dispatch<T, true, true>(x, n, weight, probs, keep, spread, with_dot, exp_out, maxima, pending);
    if (exp_out) return stats_dispatch<T, true, false>(x, n, weight, probs, keep, spread, with_dot, exp_out, maxima, nullptr);
    return stats_dispatch<T, false, false>(x, n, weight, probs, keep, spread, with_dot, nullptr, nullptr, nullptr);
}

// out[0, n) = value(c, valid), vector by vector, with out[target_at] = target_grad (target_at >= 0).
// stream: aligned streaming stores after a head up to the first vector-aligned address.
// Note: the target's entry is set here, before the store: read back from the output, a line just
// written (streamed, or waiting for ownership) stalls each row for a round trip to memory.
template <typename T, typename Value>
XENTCPP_INLINE void store_gradient(T* out, std::int64_t n, bool stream, std::int64_t target_at, double target_grad,
                                   const Value& value) {
    const auto with_target_entry = [&](std::int64_t c, std::int64_t valid) {
        return with_target<T>(value(c, valid), c, valid, target_at, target_grad);
    };
    const std::int64_t head = stream_head(out, n, stream);
    stream_rest<T>(out, n, head, head, nullptr, with_target_entry);
}

template <typename T, bool kV, bool kWeight, bool kProbs>
void softmax_grad_impl(const T* x, std::int64_t n, T shift, T log_sum, T p_coef, const T* weight, const T* probs,
                       T keep, T spread, T v_coef, T* out, bool stream, std::int64_t target_at, double target_grad) {
    constexpr int L = Vec<T>::lanes;
    const V<T> vshift = splat(shift), vlog = splat(log_sum), vp = splat(p_coef), vv = splat(v_coef);
    const V<T> vkeep = splat(keep), vspread = splat(spread);
    store_gradient(out, n, stream && out != x, target_at, target_grad, [&](std::int64_t c, std::int64_t valid) {
        const V<T> xs = valid == L ? load(x + c) : load_partial(x + c, valid, kMinusInf<T>);
        V<T> g = vp * exp<true>((xs - vshift) - vlog);  // the max and the log-sum subtracted separately
        if constexpr (kV) g -= vv * multipliers<T, kWeight, kProbs>(weight, probs, c, valid, vkeep, vspread);
        return g;
    });
}

template <typename T>
void softmax_grad(const T* x, std::int64_t n, T shift, T log_sum, T p_coef, const T* weight, const T* probs, T keep,
                  T spread, T v_coef, T* out, bool stream, std::int64_t target_at, double target_grad) {
    const auto run = [&](auto impl) {
        impl(x, n, shift, log_sum, p_coef, weight, probs, keep, spread, v_coef, out, stream, target_at, target_grad);
    };
    if (v_coef == T(0)) return run(softmax_grad_impl<T, false, false, false>);
    if (weight && probs) return run(softmax_grad_impl<T, true, true, true>);
    if (weight) return run(softmax_grad_impl<T, true, true, false>);
    if (probs) return run(softmax_grad_impl<T, true, false, true>);
    return run(softmax_grad_impl<T, true, false, false>);
}

// A full group of `lanes` rows (rows × n, n <= kSmallClasses) as class-major vectors: lane j of
// col[c] is rows[j * n + c]. Each row is loaded as ceil(n / lanes) vectors, which are transposed in
// registers; lanes past a row's end hold the next row's start (or 0 at the end of the group) and
// land in col[c >= n], which nobody reads.
template <typename T>
XENTCPP_INLINE void load_columns(const T* rows, std::int64_t n, V<T>* col) {
    constexpr int L = Vec<T>::lanes;
    const std::int64_t parts = (n + L - 1) / L;
    for (std::int64_t p = 0; p < parts; ++p) {
        // A few columns left (8 lanes or fewer): gathered one by one, cheaper than a transpose.
        if (L <= 8 && n - p * L <= L / 4) {
            for (std::int64_t c = p * L; c < n; ++c) {
                for (int j = 0; j < L; ++j) col[c][j] = rows[j * n + c];
            }
            break;
        }
        V<T> r[L];
        for (int j = 0; j < L; ++j) {
            const std::int64_t at = j * n + p * L;
            r[j] = at + L <= L * n ? load(rows + at) : load_partial(rows + at, n - p * L < L ? n - p * L : L, T(0));
        }
        transpose<T>(r);
        for (int i = 0; i < L && p * L + i < n; ++i) col[p * L + i] = r[i];
    }
}

// The inverse of load_columns: col[0, n) back into the rows of the group.
// Note: rows are stored in memory order with whole vectors; the lanes past a row's end spill into
// the next rows, which are stored afterwards and overwrite them. Only a store that would leave the
// group is cut to the row's length.
template <typename T>
XENTCPP_INLINE void store_columns(const V<T>* col, std::int64_t n, T* rows) {
    constexpr int L = Vec<T>::lanes;
    constexpr std::int64_t kMaxParts = (kSmallClasses + L - 1) / L;
    const std::int64_t parts = (n + L - 1) / L;
    V<T> r[kMaxParts][L];
    for (std::int64_t p = 0; p < parts; ++p) {
        for (int i = 0; i < L; ++i) r[p][i] = p * L + i < n ? col[p * L + i] : splat(T(0));
        transpose<T>(r[p]);
    }
    for (int j = 0; j < L; ++j) {
        for (std::int64_t p = 0; p < parts; ++p) {
            const std::int64_t at = j * n + p * L;
            if (at + L <= L * n) store(rows + at, r[p][j]);
            else store_partial(rows + at, n - p * L < L ? n - p * L : L, r[p][j]);
        }
    }
}

// A group of `valid` rows (up to `lanes`) as class-major vectors, and back: a full group through
// the transposes above, a partial one (the last rows) element by element, its missing rows 0.
template <typename T>
XENTCPP_INLINE void load_group(const T* rows, std::int64_t n, std::int64_t valid, V<T>* col) {
    constexpr int L = Vec<T>::lanes;
    if (valid == L) return load_columns<T>(rows, n, col);
    for (std::int64_t c = 0; c < n; ++c) {
        for (int j = 0; j < L; ++j) col[c][j] = j < valid ? rows[j * n + c] : T(0);
    }
}

template <typename T>
XENTCPP_INLINE void store_group(const V<T>* col, std::int64_t n, std::int64_t valid, T* rows) {
    if (valid == Vec<T>::lanes) return store_columns<T>(col, n, rows);
    for (std::int64_t j = 0; j < valid; ++j) {
        for (std::int64_t c = 0; c < n; ++c) rows[j * n + c] = col[c][j];
    }
}

// v[0] + ... + v[n - 1] (n <= kSmallClasses), added pairwise: neighbours, then neighbouring pairs...
// Note: in one running sum, the small terms added to the max's 1 one by one all round the same way
// (25 terms of exp(-7.5) put a float sum 20 ulp high, and p - 1 at the target 1.2e-6 off); pairwise,
// a term meets at most log2(n) additions, for the same number of them.
template <typename T>
XENTCPP_INLINE V<T> tree_sum(const V<T>* v, std::int64_t n) {
    V<T> t[(kSmallClasses + 1) / 2];
    std::int64_t m = 0;
    for (std::int64_t i = 0; i < n; i += 2) t[m++] = i + 1 < n ? v[i] + v[i + 1] : v[i];
    while (m > 1) {
        std::int64_t k = 0;
        for (std::int64_t i = 0; i < m; i += 2) t[k++] = i + 1 < m ? t[i] + t[i + 1] : t[i];
        m = k;
    }
    return t[0];
}

// The labels of the rows [r0, r0 + valid) as lanes: -1 for ignored and masked rows and padding,
// which then match no class and count for nothing.
template <typename T>
XENTCPP_INLINE V<T> group_labels(const SmallRows<T>& a, std::int64_t r0, std::int64_t valid) {
    V<T> label = splat(T(-1));
    if (valid == Vec<T>::lanes && !a.row_mask) {
        WideLabels<T> y;
        std::memcpy(&y, a.labels + r0, sizeof y);
        const V<T> as_t = __builtin_convertvector(y, V<T>);
        return __builtin_convertvector(y == a.ignore_index, typename Vec<T>::bits) ? splat(T(-1)) : as_t;
    }
    for (std::int64_t j = 0; j < valid; ++j) {
        const bool masked = a.row_mask && a.row_mask[r0 + j] == 0;
        const std::int64_t y = masked ? a.ignore_index : a.labels[r0 + j];
        label[j] = y == a.ignore_index ? T(-1) : static_cast<T>(y);
    }
    return label;
}

// One group of up to `lanes` rows starting at r0: lane j owns row r0 + j.
//   1. transpose the group into class-major vectors (load_columns), missing rows padded with 0;
//   2. per class: m = max, then the exponentials exp(x - m), kept for step 4 (the target's minus 1),
//      and by selects x[y] - m and w[y] (no gathers), and d = sum_c w_c (x_c - m) when smoothing;
//   3. loss per lane: log s = log1p(s - 1), s - 1 their pairwise sum (see the Note);
//   4. gradient per class from the kept exponentials divided by s, the target's entry from
//      p_y - 1 = -(s - e_y) / s, transposed back (store_columns).
// kN > 0: the class count, known at compile time (loops unroll); 0: a.classes at run time.
// The exponentials by exp_sum, as in stats.
// Note: the target's term enters the sum as e_y - 1, so that the sum is s - 1 itself: when the
// target holds the max (a confident row), e_y - 1 = 0 exactly and the loss is log1p of the other
// terms, to full relative precision, where log(1 + others) lost every term below 6e-8 in float (the
// loss of [20, 0, 0] was 0 instead of 4.1e-9). Otherwise s - 1 >= e_y: no cancellation. One
// masked subtraction per class.
template <typename T>
struct GroupLoss {
    V<T> loss;    // cross-entropy term
    V<T> z_loss;  // z-loss term
};

template <typename T, int kN>
XENTCPP_INLINE GroupLoss<T> small_group(const SmallRows<T>& a, std::int64_t r0, std::int64_t valid) {
    constexpr int L = Vec<T>::lanes;
    const std::int64_t n = kN > 0 ? kN : a.classes;
    V<T> col[kSmallClasses];
    load_group<T>(a.x + r0 * n, n, valid, col);

    const V<T> label = group_labels(a, r0, valid);
    V<T> scale = splat(static_cast<T>(a.scale));
    if (a.scale_rows) scale = valid == L ? load(a.scale_rows + r0) : load_partial(a.scale_rows + r0, valid, T(0));
    const auto counts = label >= T(0);

    const double smooth_coef = a.smoothing / static_cast<double>(n);
    const auto w = [&](std::int64_t c) { return a.weight ? a.weight[c] : T(1); };
    V<T> m = splat(kMinusInf<T>);
    for (std::int64_t c = 0; c < n; ++c) m = max_skip_nan(m, col[c]);
    V<T> dot{}, target_shift{}, target_weight{};
    if (a.weight == nullptr && smooth_coef == 0.0) {  // the common case, without the per-class tests
        for (std::int64_t c = 0; c < n; ++c) {
            const V<T> z = col[c] - m;
            const V<T> e = exp_sum(z);
            const auto hit = label == static_cast<T>(c);
            target_shift = hit ? z : target_shift;
            col[c] = hit ? e - T(1) : e;
        }
        target_weight = splat(T(1));
    } else {
        for (std::int64_t c = 0; c < n; ++c) {
            const V<T> z = col[c] - m;
            const V<T> e = exp_sum(z);
            const auto hit = label == static_cast<T>(c);
            col[c] = hit ? e - T(1) : e;
            target_shift = hit ? z : target_shift;
            target_weight = hit ? splat(w(c)) : target_weight;
            if (smooth_coef != 0.0 && w(c) != T(0)) dot += w(c) * z;  // zero weight adds nothing, even at -inf
        }
    }
    const V<T> excess = tree_sum<T>(col, n);  // s - 1
    const V<T> log_sum = log1p_excess<T>(excess);
    const V<T> nll_coef = static_cast<T>(1.0 - a.smoothing) * target_weight;
    V<T> loss = nll_coef != 0 ? nll_coef * (log_sum - target_shift) : splat(T(0));  // 0 * inf is not NaN here
    if (smooth_coef != 0.0) loss += static_cast<T>(smooth_coef) * (static_cast<T>(a.weight_total) * log_sum - dot);
    loss = log_sum != log_sum ? log_sum : loss;  // NaN in the row: NaN loss
    loss = counts ? loss : splat(T(0));
    const V<T> lse = m + log_sum;
    V<T> z_loss{};
    if (a.z_loss != 0.0) z_loss = counts ? static_cast<T>(a.z_loss) * lse * lse : splat(T(0));
    const auto put = [&](T* out, V<T> v) {
        if (valid == L) store(out + r0, v);
        else store_partial(out + r0, valid, v);
    };
    if (a.row_losses) put(a.row_losses, loss + z_loss);
    if (a.row_z_losses) put(a.row_z_losses, z_loss);
    if (a.grad == nullptr) return {loss, z_loss};

    V<T> p_coef = scale * (nll_coef + static_cast<T>(smooth_coef * a.weight_total));
    if (a.z_loss != 0.0) {  // d(λ lse^2)/dx = 2 λ lse softmax
        const V<T> z_scale = a.scale_rows ? scale : splat(static_cast<T>(a.z_scale));
        p_coef += z_scale != 0 ? static_cast<T>(2.0 * a.z_loss) * lse * z_scale : splat(T(0));
    }
    const V<T> v_coef = scale * static_cast<T>(smooth_coef);
    const V<T> onehot_coef = scale * nll_coef;
    // The softmax from the stored exponentials, exp(x - m) / s (as scaled_grad does for long rows),
    // and the target's entry p_coef p_y - onehot - v w_y, with p_y - 1 = -(s - e_y) / s and
    // s - e_y = (s - 1) + (1 - e_y): exact where e_y = 1, a sum of two positive terms elsewhere.
    // Note: one division per group; exp(-log s) in its place is longer on the group's critical path.
    const V<T> inverse = T(1) / (excess + T(1));
    const V<T> factor = p_coef * inverse;
    const V<T> e_y = exp_sum(target_shift);
    const V<T> others = excess + (T(1) - e_y);
    const V<T> target = ((p_coef - onehot_coef) * e_y - onehot_coef * others) * inverse - v_coef * target_weight;
    for (std::int64_t c = 0; c < n; ++c) {
        V<T> g = factor * col[c] - v_coef * w(c);
        g = label == static_cast<T>(c) ? target : g;
        col[c] = counts ? g : splat(T(0));
    }
    store_group<T>(col, n, valid, a.grad + r0 * n);
    return {loss, z_loss};
}

// Two full groups of the plain forward (no gradient, weight, smoothing or z-loss: the common case)
// side by side, with the arithmetic of small_group: the two chains of max, exp, sum and log are
// independent, and one group's chain is longer than the core's out-of-order window overlaps.
template <typename T, int kN>
XENTCPP_INLINE void plain_pair(const SmallRows<T>& a, std::int64_t r0, V<T>* loss) {
    constexpr int L = Vec<T>::lanes;
    const std::int64_t n = kN > 0 ? kN : a.classes;
    V<T> col[2][kSmallClasses], label[2], m[2], target_shift[2] = {};
    for (int g = 0; g < 2; ++g) {
        load_columns<T>(a.x + (r0 + g * L) * n, n, col[g]);
        label[g] = group_labels(a, r0 + g * L, L);
        m[g] = splat(kMinusInf<T>);
    }
    for (std::int64_t c = 0; c < n; ++c) {
        for (int g = 0; g < 2; ++g) m[g] = max_skip_nan(m[g], col[g][c]);
    }
    for (std::int64_t c = 0; c < n; ++c) {
        for (int g = 0; g < 2; ++g) {
            const V<T> z = col[g][c] - m[g];
            const V<T> e = exp_sum(z);
            const auto hit = label[g] == static_cast<T>(c);
            target_shift[g] = hit ? z : target_shift[g];
            col[g][c] = hit ? e - T(1) : e;
        }
    }
    for (int g = 0; g < 2; ++g) {
        const V<T> log_sum = log1p_excess<T>(tree_sum<T>(col[g], n));
        const V<T> nll = log_sum - target_shift[g];
        loss[g] = label[g] >= T(0) ? (log_sum != log_sum ? log_sum : nll) : splat(T(0));
        if (a.row_losses) store(a.row_losses + r0 + g * L, loss[g] + V<T>{});
        if (a.row_z_losses) store(a.row_z_losses + r0 + g * L, V<T>{});
    }
}

template <typename T, int kN>
LossSums small_rows_n(const SmallRows<T>& a) {
    constexpr int L = Vec<T>::lanes;
    WideDouble<T> total{}, z_total{};  // one double per lane: the rows' losses are summed in double
    const std::int64_t group_bytes = L * (kN > 0 ? kN : a.classes) * static_cast<std::int64_t>(sizeof(T));
    const auto prefetch = [&](std::int64_t r0, std::int64_t bytes) {
        // Fetch a few groups ahead (as stats does for blocks), so memory and arithmetic overlap.
        const char* ahead = reinterpret_cast<const char*>(a.x + r0 * a.classes) + kSmallPrefetchBytes;
        for (std::int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(ahead + b);
    };
    std::int64_t r0 = 0;
    if (a.grad == nullptr && a.weight == nullptr && a.smoothing == 0.0 && a.z_loss == 0.0) {
        for (; r0 + 2 * L <= a.rows; r0 += 2 * L) {
            prefetch(r0, 2 * group_bytes);
            V<T> loss[2];
            plain_pair<T, kN>(a, r0, loss);
            total += __builtin_convertvector(loss[0], WideDouble<T>);  // in group order, as below
            total += __builtin_convertvector(loss[1], WideDouble<T>);
        }
    }
    for (; r0 < a.rows; r0 += L) {
        prefetch(r0, group_bytes);
        const GroupLoss<T> group = small_group<T, kN>(a, r0, a.rows - r0 < L ? a.rows - r0 : L);
        total += __builtin_convertvector(group.loss, WideDouble<T>);
        if (a.z_loss != 0.0) z_total += __builtin_convertvector(group.z_loss, WideDouble<T>);
    }
    return {reduce_sum(total), reduce_sum(z_total)};
}

// fn(std::integral_constant<int, kN>{}): the most common small class counts get a copy of the
// kernel with the count built in (kN = classes); any other count runs the generic copy (kN = 0).
template <typename Fn>
XENTCPP_INLINE auto with_class_count(std::int64_t classes, const Fn& fn) {
    switch (classes) {
        case 2: return fn(std::integral_constant<int, 2>{});
        case 3: return fn(std::integral_constant<int, 3>{});
        case 4: return fn(std::integral_constant<int, 4>{});
        case 5: return fn(std::integral_constant<int, 5>{});
        case 8: return fn(std::integral_constant<int, 8>{});
        case 10: return fn(std::integral_constant<int, 10>{});
        case 16: return fn(std::integral_constant<int, 16>{});
        default: return fn(std::integral_constant<int, 0>{});
    }
}

template <typename T>
LossSums small_rows(const SmallRows<T>& a) {
    return with_class_count(a.classes, [&](auto count) { return small_rows_n<T, decltype(count)::value>(a); });
}

// The softmax family of one group of up to `lanes` rows of few classes, lane j owning row j, with
// the arithmetic of the per-row path: m = max (NaN skipped), s = sum of exp_sum(x - m) added
// pairwise (shift 0 for a row of -inf only), then op 0: lse = m + log s; 1: exp((x - m) - log s);
// 2: (x - m) - log s. out: the group's first result (one per row for op 0, else rows × n; may be x).
template <typename T, int kN>
XENTCPP_INLINE void family_group(const T* x, std::int64_t classes, std::int64_t valid, int op, T* out) {
    constexpr int L = Vec<T>::lanes;
    const std::int64_t n = kN > 0 ? kN : classes;
    V<T> col[kSmallClasses], e[kSmallClasses];
    load_group<T>(x, n, valid, col);
    V<T> m = splat(kMinusInf<T>);
    for (std::int64_t c = 0; c < n; ++c) m = max_skip_nan(m, col[c]);
    const V<T> shift = m == kMinusInf<T> ? splat(T(0)) : m;
    V<T> log_sum;
    if (op == 1) {  // p = exp(z - log s): log s to an absolute eps keeps every p to a relative one
        for (std::int64_t c = 0; c < n; ++c) e[c] = exp_sum(col[c] - shift);
        log_sum = log<true>(tree_sum<T>(e, n));
    } else {  // logsumexp and log_softmax: the max's 1s counted apart, as in stats
        V<T> at_max{};
        for (std::int64_t c = 0; c < n; ++c) {
            const V<T> z = col[c] - shift;
            const auto is_max = z == T(0);
            e[c] = is_max ? splat(T(0)) : exp_sum(z);
            at_max += is_max ? splat(T(1)) : splat(T(0));
        }
        log_sum = log1p_excess<T>((at_max - T(1)) + tree_sum<T>(e, n));
    }
    if (op == 0) {
        const V<T> lse = shift + log_sum;
        if (valid == L) store(out, lse);
        else store_partial(out, valid, lse);
        return;
    }
    for (std::int64_t c = 0; c < n; ++c) {
        const V<T> z = (col[c] - m) - log_sum;  // the max and the log-sum subtracted separately
        col[c] = op == 1 ? exp<true>(z) : z;
    }
    store_group<T>(col, n, valid, out);
}

template <typename T>
void small_family(const T* x, std::int64_t rows, std::int64_t classes, int op, T* out) {
    constexpr int L = Vec<T>::lanes;
    with_class_count(classes, [&](auto count) {
        for (std::int64_t r0 = 0; r0 < rows; r0 += L) {
            const char* ahead = reinterpret_cast<const char*>(x + r0 * classes) + kSmallPrefetchBytes;
            for (std::int64_t b = 0; b < L * classes * static_cast<std::int64_t>(sizeof(T)); b += 64) {
                __builtin_prefetch(ahead + b);
            }
            family_group<T, decltype(count)::value>(x + r0 * classes, classes, rows - r0 < L ? rows - r0 : L, op,
                                                    out + r0 * (op == 0 ? 1 : classes));
        }
    });
}

// The gradient of ScaledGrad, block by block: factor_b = p_coef * exp(m_b - shift) / sum.
// Note: the row's sum in double, not its log rounded to T (whose rounding, times log(sum), went into
// every element); and no exp at all for the block that holds the max (every block of a short row).
template <typename T, bool kV, bool kWeight, bool kProbs>
void scaled_grad_impl(const ScaledGrad<T>& grad) {
    for (std::int64_t start = 0; start < grad.n; start += kBlock) {
        const std::int64_t len = grad.n - start < kBlock ? grad.n - start : kBlock;
        const GradBlock<T, kV, kWeight, kProbs> block(grad, start, len);
        block.finish(block.head);
    }
}

template <typename T>
void scaled_grad(const ScaledGrad<T>& grad) {
    if (grad.v_coef == T(0)) return scaled_grad_impl<T, false, false, false>(grad);
    if (grad.weight && grad.probs) return scaled_grad_impl<T, true, true, true>(grad);
    if (grad.weight) return scaled_grad_impl<T, true, true, false>(grad);
    if (grad.probs) return scaled_grad_impl<T, true, false, true>(grad);
    return scaled_grad_impl<T, true, false, false>(grad);
}

template <typename T, V<T> (*F)(V<T>)>
void elementwise(const T* x, std::int64_t n, T* out) {
    constexpr int L = Vec<T>::lanes;
    std::int64_t c = 0;
    for (; c + L <= n; c += L) store(out + c, F(load(x + c)));
    if (c < n) store_partial(out + c, n - c, F(load_partial(x + c, n - c, T(1))));
}

template <typename T>
V<T> exp_lanes(V<T> x) { return exp(x); }
template <typename T>
V<T> exp_sum_lanes(V<T> x) { return exp_sum(x); }
template <typename T>
V<T> log_lanes(V<T> x) { return log(x); }
template <typename T>
V<T> expm1_lanes(V<T> x) { return expm1<T>(x); }
template <typename T>
V<T> log1p_lanes(V<T> x) { return log1p<T>(x); }
template <typename T>
V<T> log1p_excess_lanes(V<T> x) { return log1p_excess<T>(x); }
template <typename T>
V<T> tanh_lanes(V<T> x) { return tanh<T>(x); }

template <typename T>
void softcap(const T* x, std::int64_t n, T cap, T* out) {
    constexpr int L = Vec<T>::lanes;
    const auto capped = [cap](V<T> v) { return cap * tanh<T>(v / cap); };
    std::int64_t c = 0;
    for (; c + L <= n; c += L) store(out + c, capped(load(x + c)));
    if (c < n) store_partial(out + c, n - c, capped(load_partial(x + c, n - c, T(0))));
}

template <typename T>
void softcap_grad(const T* g, const T* capped, std::int64_t n, T cap, T* out) {
    const T inverse = T(1) / cap;
    for (std::int64_t c = 0; c < n; ++c) {
        const T t = capped[c] * inverse;  // tanh(x / cap)
        out[c] = g[c] * (T(1) - t * t);
    }
}

// Note: _Float16 conversions compile to vcvtph2ps/vcvtps2ph where the target has F16C, and to
// libgcc's exact software conversions on the baseline. Compilers without _Float16 here (Clang 14)
// take the portable conversions of half_bits.hpp, which give the same bits.
template <typename T>
void widen_f16(const std::uint16_t* in, std::int64_t n, T* out) {
    for (std::int64_t c = 0; c < n; ++c) {
#if defined(__FLT16_MAX__)
        _Float16 h;
        std::memcpy(&h, in + c, sizeof h);
        out[c] = static_cast<T>(static_cast<float>(h));
#else
        out[c] = static_cast<T>(half_bits_to_float(in[c]));
#endif
    }
}

template <typename T>
void narrow_f16(const T* in, std::int64_t n, std::uint16_t* out) {
    for (std::int64_t c = 0; c < n; ++c) {
#if defined(__FLT16_MAX__)
        const _Float16 h = static_cast<_Float16>(in[c]);  // one rounding, also from double
        std::memcpy(out + c, &h, sizeof h);
#else
        out[c] = double_to_half_bits(static_cast<double>(in[c]));
#endif
    }
}

// bfloat16 is the high half of a float.
template <typename T>
void widen_bf16(const std::uint16_t* in, std::int64_t n, T* out) {
    for (std::int64_t c = 0; c < n; ++c) {
        const std::uint32_t bits = static_cast<std::uint32_t>(in[c]) << 16;
        float f;
        std::memcpy(&f, &bits, sizeof f);
        out[c] = static_cast<T>(f);
    }
}

template <typename T>
void narrow_bf16(const T* in, std::int64_t n, std::uint16_t* out) {
    for (std::int64_t c = 0; c < n; ++c) {
        const float f = static_cast<float>(in[c]);  // double input: rounded twice, within an ulp of bfloat16
        std::uint32_t bits;
        std::memcpy(&bits, &f, sizeof bits);
        const std::uint32_t rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);  // to nearest, ties to even
        const bool nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
        out[c] = static_cast<std::uint16_t>(nan ? (bits >> 16) | 0x0040u : rounded >> 16);  // NaN stays quiet NaN
    }
}

template <typename T>
void columns(const T* x, std::int64_t classes, std::int64_t inner, int op, T* out) {
    constexpr int L = Vec<T>::lanes;
    for (std::int64_t i = 0; i < inner; i += L) {
        const std::int64_t valid = inner - i < L ? inner - i : L;
        const auto at = [&](std::int64_t c) {
            const T* p = x + c * inner + i;
            return valid == L ? load(p) : load_partial(p, valid, kMinusInf<T>);
        };
        const auto put = [&](T* p, V<T> v) {
            if (valid == L) store(p, v);
            else store_partial(p, valid, v);
        };
        V<T> m = splat(kMinusInf<T>);
        for (std::int64_t c = 0; c < classes; ++c) m = max_skip_nan(m, at(c));
        const V<T> shift = m == kMinusInf<T> ? splat(T(0)) : m;  // all -inf: lse -inf, softmax NaN
        // Note: the sum in runs of 16 classes, the runs added in double: one chain of float additions
        // over 1 000 000 classes was 31 ulp off in logsumexp (the row kernels' sums: under 1). The
        // max's 1s are counted apart, as in stats, so that log s = log1p((at_max - 1) + below).
        WideDouble<T> below{}, at_max{};
        V<T> run{}, run_at_max{};
        const auto end_run = [&] {
            below += __builtin_convertvector(run, WideDouble<T>);
            at_max += __builtin_convertvector(run_at_max, WideDouble<T>);
            run = run_at_max = V<T>{};
        };
        for (std::int64_t c = 0; c < classes; ++c) {
            const V<T> z = at(c) - shift;
            const auto is_max = z == T(0);
            run += is_max ? splat(T(0)) : exp(z);
            run_at_max += is_max ? splat(T(1)) : splat(T(0));
            if (c % 16 == 15) end_run();
        }
        end_run();
        const WideDouble<T> excess = (at_max - 1.0) + below;
        const V<T> log_sum = log1p_excess<T>(__builtin_convertvector(excess, V<T>));
        if (op == 0) {
            put(out + i, shift + log_sum);
            continue;
        }
        for (std::int64_t c = 0; c < classes; ++c) {
            const V<T> z = (at(c) - m) - log_sum;
            put(out + c * inner + i, op == 1 ? exp(z) : z);
        }
    }
}

template <typename T>
void shifted(const T* x, std::int64_t n, T shift, T log_sum, T* out) {
    for (std::int64_t c = 0; c < n; ++c) out[c] = (x[c] - shift) - log_sum;
}

// Note: with e = exp(-|x|) in (0, 1], softplus(-x) = log1p(e) + max(-x, 0) and sigmoid(x) = 1 / (1 + e)
// (x >= 0) or e / (1 + e): no overflow for any x, full precision for |x| up to the underflow of e.
template <typename T>
double bce_with_logits(const T* x, const T* t, std::int64_t n, const T* weight, const T* class_weight,
                       const T* pos_weight, T* losses, T* grad, T scale, const T* scales) {
    constexpr int L = Vec<T>::lanes;
    double total = 0.0;
    for (std::int64_t start = 0; start < n; start += kBlock) {
        const std::int64_t len = n - start < kBlock ? n - start : kBlock;
        V<T> block_sum{};
        for (std::int64_t c = start; c < start + len; c += L) {
            const std::int64_t valid = start + len - c < L ? start + len - c : L;
            const auto at = [&](const T* p, T fill) { return valid == L ? load(p + c) : load_partial(p + c, valid, fill); };
            const auto put = [&](T* p, V<T> v) {
                if (valid == L) store(p + c, v);
                else store_partial(p + c, valid, v);
            };
            const V<T> xv = at(x, T(0)), tv = at(t, T(0));
            V<T> w = splat(T(1));
            if (weight) w = at(weight, T(0));
            if (class_weight) w = w * at(class_weight, T(0));
            const V<T> pw = pos_weight ? at(pos_weight, T(1)) : splat(T(1));
            const V<T> magnitude = xv < T(0) ? -xv : xv;
            const V<T> e = exp(-magnitude);
            const V<T> coef = T(1) + (pw - T(1)) * tv;
            const V<T> softplus = log1p<T>(e) + (xv < T(0) ? -xv : splat(T(0)));
            V<T> loss = w * ((T(1) - tv) * xv + coef * softplus);
            if (valid < L) loss = lane_index<T>() < static_cast<T>(valid) ? loss : splat(T(0));
            block_sum += loss;
            if (losses) put(losses, loss);
            if (grad) {
                const V<T> sigmoid = (xv >= T(0) ? splat(T(1)) : e) / (T(1) + e);
                const V<T> s = scales ? at(scales, T(0)) : splat(scale);
                put(grad, s * w * (coef * sigmoid - pw * tv));
            }
        }
        total += reduce_sum(block_sum);
    }
    return total;
}

// Sums over blocks of kBlock elements: lanes in T within a block, blocks in double.
template <typename T, typename Term>
double block_sums(std::int64_t n, const Term& term) {
    constexpr int L = Vec<T>::lanes;
    double total = 0.0;
    for (std::int64_t start = 0; start < n; start += kBlock) {
        const std::int64_t end = n - start < kBlock ? n : start + kBlock;
        V<T> sum{};
        for (std::int64_t c = start; c < end; c += L) sum += term(c, end - c < L ? end - c : L);
        total += reduce_sum(sum);
    }
    return total;
}

template <typename T>
double sum_p_log_p(const T* p, std::int64_t n) {
    return block_sums<T>(n, [&](std::int64_t c, std::int64_t valid) {
        const V<T> pv = valid == Vec<T>::lanes ? load(p + c) : load_partial(p + c, valid, T(0));
        return pv == T(0) ? splat(T(0)) : pv * log(pv);  // 0 log 0 = 0; p < 0 or NaN: NaN
    });
}

// log(p / q) with the relative precision of the result, over the whole range:
//   p / q in [1/2, 2]: log1p(d), d = (p - q) / q, with p - q exact (Sterbenz) so that nearly equal
//     distributions keep their small divergence (log's reduced argument is d itself, as in
//     log1p_excess, where log(1 + d) has exponent 0);
//   otherwise log(p / q), the quotient rounded once, |result| >= log 2;
//   p / q beyond the normal range (0, subnormal or inf: q tiny, or p tiny against q): log p - log q,
//     whose terms' rounding is small against a result beyond |log(FLT_MIN)|.
// Note: log1p((p - q) / q) alone, as before, reached log1p(-1) = -inf once p / q fell below eps
// (KL of [1e-17, 1 - 1e-17] against [0.5, 0.5] was -inf; SciPy: 0.693).
template <typename T>
XENTCPP_INLINE V<T> log_ratio(V<T> p, V<T> q) {
    const V<T> ratio = p / q;
    const auto near = ratio >= T(0.5) && ratio <= T(2);
    const V<T> d = (p - q) / q;
    V<T> result = log(near ? d + T(1) : ratio, &d);  // d replaces log's f only where the exponent is 0
    const auto extreme = !(ratio >= std::numeric_limits<T>::min() && ratio <= std::numeric_limits<T>::max());
    if (any(extreme)) result = extreme ? log(p) - log(q) : result;
    return result;
}

template <typename T>
double sum_p_log_p_over_q(const T* p, const T* q, std::int64_t n) {
    return block_sums<T>(n, [&](std::int64_t c, std::int64_t valid) {
        const bool full = valid == Vec<T>::lanes;
        const V<T> pv = full ? load(p + c) : load_partial(p + c, valid, T(0));
        const V<T> qv = full ? load(q + c) : load_partial(q + c, valid, T(1));
        return pv == T(0) ? splat(T(0)) : pv * log_ratio<T>(pv, qv);  // 0 log(0 / q) = 0
    });
}

// Note: 32-byte vectors, four in flight, on every target: on the AVX-512 machine here no variant
// measured read faster (eight 64-byte vectors in flight read about 4 % slower).
std::uint8_t or_bytes(const unsigned char* p, std::int64_t n) {
    typedef std::int32_t Bits __attribute__((vector_size(kVectorBytes < 32 ? kVectorBytes : 32)));
    constexpr int kInFlight = 4;
    constexpr auto kBytes = static_cast<std::int64_t>(sizeof(Bits));
    Bits acc[kInFlight] = {};
    std::int64_t i = 0;
    for (; i + kInFlight * kBytes <= n; i += kInFlight * kBytes) {
        for (int k = 0; k < kInFlight; ++k) {
            Bits v;
            std::memcpy(&v, p + i + k * kBytes, sizeof v);
            acc[k] |= v;
        }
    }
    for (int k = 1; k < kInFlight; ++k) acc[0] |= acc[k];
    unsigned char folded[sizeof(Bits)];
    std::memcpy(folded, &acc[0], sizeof folded);
    unsigned out = 0;
    for (const unsigned char byte : folded) out |= byte;
    for (; i < n; ++i) out |= p[i];
    return static_cast<std::uint8_t>(out);
}

void stream_bytes(unsigned char* dst, const unsigned char* src, std::int64_t n) {
    constexpr auto kBytes = static_cast<std::int64_t>(sizeof(V<float>));
    const auto misalignment = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(dst) % kBytes);
    const std::int64_t head = misalignment == 0 ? 0 : (n < kBytes - misalignment ? n : kBytes - misalignment);
    std::memcpy(dst, src, static_cast<std::size_t>(head));
    std::int64_t i = head;
    for (; i + kBytes <= n; i += kBytes) {
        V<float> v;
        std::memcpy(&v, src + i, sizeof v);
        store_stream(reinterpret_cast<float*>(dst + i), v);
    }
    std::memcpy(dst + i, src + i, static_cast<std::size_t>(n - i));
    stream_fence();
}

// Note: lanes of 64-bit labels; a compare gives -1 per hit, so the lane sums count down.
void count_labels(const std::int64_t* labels, std::int64_t n, std::int64_t classes, std::int64_t ignore,
                  std::int64_t* counted, std::int64_t* bad) {
    typedef std::int64_t Lanes __attribute__((vector_size(kVectorBytes)));
    typedef std::uint64_t Unsigned __attribute__((vector_size(kVectorBytes)));
    constexpr int L = kVectorBytes / 8;
    const Lanes ignored_label = Lanes{} + ignore;
    const Unsigned limit = Unsigned{} + static_cast<std::uint64_t>(classes);
    Lanes ignored{}, outside{};
    std::int64_t i = 0;
    for (; i + L <= n; i += L) {
        Lanes y;
        std::memcpy(&y, labels + i, sizeof y);
        const Lanes skip = y == ignored_label;
        ignored += skip;
        outside += ~skip & (reinterpret_cast<Unsigned>(y) >= limit);
    }
    std::int64_t skipped = 0, out = 0;
    for (int j = 0; j < L; ++j) {
        skipped -= ignored[j];
        out -= outside[j];
    }
    for (; i < n; ++i) {
        const bool skip = labels[i] == ignore;
        skipped += skip;
        out += !skip && static_cast<std::uint64_t>(labels[i]) >= static_cast<std::uint64_t>(classes);
    }
    *counted = n - skipped;
    *bad = out;
}

template <typename T>
const Kernels<T> kTable = {XENTCPP_STR(XENTCPP_TARGET),
                           &stats<T>,
                           &softmax_grad<T>,
                           &scaled_grad<T>,
                           &stream_fence,
                           &small_rows<T>,
                           &softcap<T>,
                           &softcap_grad<T>,
                           &widen_f16<T>,
                           &narrow_f16<T>,
                           &widen_bf16<T>,
                           &narrow_bf16<T>,
                           &columns<T>,
                           &small_family<T>,
                           &shifted<T>,
                           &bce_with_logits<T>,
                           &sum_p_log_p<T>,
                           &sum_p_log_p_over_q<T>,
                           &elementwise<T, exp_lanes<T>>,
                           &elementwise<T, log_lanes<T>>,
                           &elementwise<T, expm1_lanes<T>>,
                           &elementwise<T, log1p_lanes<T>>,
                           &elementwise<T, log1p_excess_lanes<T>>,
                           &elementwise<T, tanh_lanes<T>>,
                           &elementwise<T, exp_sum_lanes<T>>,
                           &or_bytes,
                           &stream_bytes,
                           &count_labels};

}  // namespace

const Kernels<float>& float_kernels() { return kTable<float>; }
const Kernels<double>& double_kernels() { return kTable<double>; }

}  // namespace xentcpp::simd::XENTCPP_TARGET
