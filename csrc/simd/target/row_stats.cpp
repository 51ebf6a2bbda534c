// Cross-entropy statistics and gradient of logits rows (Kernels::stats, softmax_grad, scaled_grad,
// fence), for one SIMD target: CMake compiles csrc/simd/target/*.cpp once per target (baseline,
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

#include "common.hpp"
#include "families.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

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

}  // namespace

template <typename T>
void add_row_stats(Kernels<T>& k) {
    k.stats = &stats<T>;
    k.softmax_grad = &softmax_grad<T>;
    k.scaled_grad = &scaled_grad<T>;
    k.fence = &stream_fence;
}

template void add_row_stats<float>(Kernels<float>&);
template void add_row_stats<double>(Kernels<double>&);

}  // namespace xentcpp::simd::XENTCPP_TARGET
