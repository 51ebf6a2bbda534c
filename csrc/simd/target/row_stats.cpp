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

// The multipliers v of a span (Multipliers) as vectors: kWeight and kProbs say which parts there are.
template <typename T, bool kWeight, bool kProbs>
struct MultiplierLanes {
    MultiplierLanes() = default;
    explicit MultiplierLanes(const Multipliers<T>& v)
        : weight(v.weight), probs(v.probs), keep(splat(v.keep)), spread(splat(v.spread)) {}

    // Those of the span's part starting `start` elements further on.
    MultiplierLanes from(std::int64_t start) const {
        MultiplierLanes out = *this;
        out.weight = weight ? weight + start : nullptr;
        out.probs = probs ? probs + start : nullptr;
        return out;
    }

    // v of lanes [c, c + lanes) (or only the first `valid` of them, the rest 0).
    XENTCPP_INLINE V<T> operator()(std::int64_t c, std::int64_t valid) const {
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

    const T* weight = nullptr;
    const T* probs = nullptr;
    V<T> keep{}, spread{};
};

// Calls fn(std::integral_constant<bool, kV>, ...kWeight, ...kProbs): the copy of a kernel for the
// parts of v that there are (kV: v is used at all).
template <typename T, typename Fn>
XENTCPP_INLINE auto with_multipliers(bool used, const Multipliers<T>& v, const Fn& fn) {
    using Yes = std::true_type;
    using No = std::false_type;
    if (!used) return fn(No{}, No{}, No{});
    if (v.weight && v.probs) return fn(Yes{}, Yes{}, Yes{});
    if (v.weight) return fn(Yes{}, Yes{}, No{});
    if (v.probs) return fn(Yes{}, No{}, Yes{});
    return fn(Yes{}, No{}, No{});
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
// that stats stored, with the target's entry (see store_gradient).
template <typename T, bool kV, bool kWeight, bool kProbs>
struct GradBlock {
    GradBlock() = default;
    GradBlock(const ScaledGrad<T>& g, std::int64_t start, std::int64_t length)
        : out(g.out + start),
          len(length),
          head(stream_head(g.out + start, length, g.stream)),
          e(g.e + start),
          v(MultiplierLanes<T, kWeight, kProbs>(g.terms.v).from(start)),
          target_at(g.terms.target_at >= start && g.terms.target_at < start + length ? g.terms.target_at - start : -1),
          target_grad(g.terms.target_grad),
          carry(g.carry),
          vv(splat(g.terms.v_coef)) {
        const T m = g.maxima[start / kBlock];
        const double scale = m == g.shift ? 1.0 : std::exp(static_cast<double>(m) - static_cast<double>(g.shift));
        factor = splat(static_cast<T>(static_cast<double>(g.terms.p_coef) * scale / g.sum));
    }

    XENTCPP_INLINE V<T> operator()(std::int64_t c, std::int64_t valid) const {
        constexpr int L = Vec<T>::lanes;
        V<T> g = factor * (valid == L ? load(e + c) : load_partial(e + c, valid, T(0)));
        // Note: explicit fused multiply-adds, so that the gradient has the same bits written late
        // (inlined into block_stats) or at once (scaled_grad).
        if constexpr (kV) g = mul_add<T>(-vv, v(c, valid), g);
        return with_target<T>(g, c, valid, target_at, target_grad);
    }

    // Everything but the vectors [head, next) already streamed (stream_rest).
    void finish(std::int64_t next) const { stream_rest(out, len, head, next, carry, *this); }

    T* out = nullptr;
    std::int64_t len = 0;
    std::int64_t head = 0;
    const T* e = nullptr;
    MultiplierLanes<T, kWeight, kProbs> v;
    std::int64_t target_at = -1;
    double target_grad = 0.0;
    Carry<T>* carry = nullptr;
    V<T> factor{}, vv{};
};

// Statistics of the block x[0, n) whose max is known; in the same loop, the max of the next block
// next[0, next_n) (next_n <= n) and, with kPending, the vectors of `pending` (a block of another
// row's gradient, of n elements).
// Note: software pipelining. The next block's loads go to memory while this block's exponentials are
// computed (from L1), so memory streams all the time instead of waiting for a separate max pass; and
// the previous row's streamed stores drain beside the arithmetic: after it, they stalled the core on
// its write-combining buffers and the two phases added up.
template <typename T, bool kDot, bool kWeight, bool kProbs, bool kStore, bool kPending>
SpanStats<T> block_stats(const T* x, std::int64_t n, T max, const MultiplierLanes<T, kWeight, kProbs>& v,
                         const T* next, std::int64_t next_n, T& next_max, T* exp_out,
                         const GradBlock<T, kDot, kWeight, kProbs> pending) {
    constexpr int L = Vec<T>::lanes;
    SpanStats<T> out;
    out.max = max;
    const V<T> shift = splat(max == kMinusInf<T> ? T(0) : max);
    // Note: the sums in two levels, 16 vectors a run, then the runs: a lane's chain of additions
    // is at most 16 + kBlock / (16 lanes) long instead of kBlock / lanes (1 024 for doubles on the
    // baseline, whose rounding reached 200 eps in a row's sum of 131 072 exps).
    std::uint32_t nonzero = 0;  // lanes passed whose z is not 0 (the others hold the max)
    V<T> below{}, dot{}, mass{}, run_below{}, run_dot{}, run_mass{};
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
        run_below = add_unless_zero<T>(run_below, z, e, nonzero);
        if constexpr (kStore) {
            if (valid == L) store(exp_out + c, e);
            else store_partial(exp_out + c, valid, e);
        }
        if constexpr (kDot) {
            const V<T> vc = v(c, valid);
            run_dot += vc != 0 ? vc * z : splat(T(0));  // a class of zero multiplier adds nothing, even at -inf
            run_mass += vc;
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
    // Every vector passed L lanes, a partial one too (its lanes past n hold -inf: not 0).
    out.at_max = static_cast<double>((n + L - 1) / L * L - static_cast<std::int64_t>(nonzero));
    out.below_max = reduce_sum(below);
    if constexpr (kDot) {
        out.dot = reduce_sum(dot);
        out.mass = reduce_sum(mass);
    }
    return out;
}

template <typename T, bool kDot, bool kWeight, bool kProbs, bool kStore, bool kPending>
SpanStats<T> span_stats(const T* x, std::int64_t n, const StatsRequest<T>& request) {
    using Pending = GradBlock<T, kDot, kWeight, kProbs>;
    const MultiplierLanes<T, kWeight, kProbs> v(request.v);
    const auto length = [&](std::int64_t start) { return n - start < kBlock ? n - start : kBlock; };
    SpanStats<T> total;
    T max = block_max(x, length(0));
    for (std::int64_t start = 0; start < n; start += kBlock) {
        const std::int64_t next = start + kBlock;
        const std::int64_t next_len = next < n ? length(next) : 0;
        T next_max = kMinusInf<T>;
        if constexpr (kStore) request.maxima[start / kBlock] = max;
        const SpanStats<T> block = block_stats<T, kDot, kWeight, kProbs, kStore, kPending>(
            x + start, length(start), max, v.from(start), x + next, next_len, next_max,
            kStore ? request.exps + start : nullptr, kPending ? Pending(*request.pending, start, length(start)) : Pending());
        total = start == 0 ? block : merge(total, block);
        max = next_max;
    }
    return total;
}

template <typename T>
void scaled_grad(const ScaledGrad<T>& grad);

template <typename T>
SpanStats<T> stats(const T* x, std::int64_t n, const StatsRequest<T>& request) {
    // The pending gradient shares the statistics' variant: v_coef != 0 where the dot is computed,
    // with the same weights and probabilities (one call's rows). Otherwise it is written first.
    const ScaledGrad<T>* pending = request.pending;
    if (pending && (!request.exps || (pending->terms.v_coef != T(0)) != request.with_dot ||
                    (pending->terms.v.weight != nullptr) != (request.v.weight != nullptr) ||
                    (pending->terms.v.probs != nullptr) != (request.v.probs != nullptr))) {
        scaled_grad(*pending);
        pending = nullptr;
    }
    return with_multipliers(request.with_dot, request.v, [&](auto dot, auto weight, auto probs) {
        constexpr bool kDot = decltype(dot)::value, kWeight = decltype(weight)::value, kProbs = decltype(probs)::value;
        if (pending) return span_stats<T, kDot, kWeight, kProbs, true, true>(x, n, request);
        StatsRequest<T> plain = request;
        plain.pending = nullptr;
        if (request.exps) return span_stats<T, kDot, kWeight, kProbs, true, false>(x, n, plain);
        return span_stats<T, kDot, kWeight, kProbs, false, false>(x, n, plain);
    });
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
void softmax_grad_impl(const SoftmaxGrad<T>& grad) {
    constexpr int L = Vec<T>::lanes;
    const GradTerms<T>& terms = grad.terms;
    const V<T> vshift = splat(grad.shift), vlog = splat(grad.log_sum), vp = splat(terms.p_coef), vv = splat(terms.v_coef);
    const MultiplierLanes<T, kWeight, kProbs> v(terms.v);
    const T* x = grad.x;
    store_gradient(grad.out, grad.n, grad.stream && grad.out != x, terms.target_at, terms.target_grad,
                   [&](std::int64_t c, std::int64_t valid) {
                       const V<T> xs = valid == L ? load(x + c) : load_partial(x + c, valid, kMinusInf<T>);
                       V<T> g = vp * exp<true>((xs - vshift) - vlog);  // the max and the log-sum subtracted separately
                       // Note: an explicit fused multiply-add, as GradBlock's: the same bits whether or not
                       // the compiler inlines the multipliers (it decides per copy under fp-contract).
                       if constexpr (kV) g = mul_add<T>(-vv, v(c, valid), g);
                       return g;
                   });
}

template <typename T>
void softmax_grad(const SoftmaxGrad<T>& grad) {
    with_multipliers(grad.terms.v_coef != T(0), grad.terms.v, [&](auto used, auto weight, auto probs) {
        softmax_grad_impl<T, decltype(used)::value, decltype(weight)::value, decltype(probs)::value>(grad);
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
    with_multipliers(grad.terms.v_coef != T(0), grad.terms.v, [&](auto used, auto weight, auto probs) {
        scaled_grad_impl<T, decltype(used)::value, decltype(weight)::value, decltype(probs)::value>(grad);
    });
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
