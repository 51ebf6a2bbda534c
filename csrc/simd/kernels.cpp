// The SIMD kernels of one dispatch target. CMake compiles this file once per target (baseline,
// AVX2+FMA, AVX-512) with that target's flags and -DXENTCPP_TARGET=<name>; dispatch.cpp picks one.
//
// stats: a span is cut into blocks of kBlock elements (L1-resident). Per block:
//   1. m_b = max (one read from memory);
//   2. s_b = sum exp(x - m_b), and the v-weighted sums when asked (a re-read from L1);
// and blocks are merged exactly (simd::merge), so a row is read from memory once whatever its length.
// Note: the per-block max keeps every exp argument <= 0, so s_b >= 1 and no block can overflow.
// Lanes accumulate in T within a block (<= kBlock / lanes terms each) and blocks in double.
#include <limits>

#include "kernels.hpp"
#include "vector_math.hpp"

#define XENTCPP_STR2(x) #x
#define XENTCPP_STR(x) XENTCPP_STR2(x)

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

constexpr std::int64_t kBlock = 2048;

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
        v = (valid == L ? load(probs + c) : load_partial(probs + c, valid, T(0))) * keep + spread;
    }
    if constexpr (kWeight) {
        v = v * (valid == L ? load(weight + c) : load_partial(weight + c, valid, T(0)));
    }
    if (valid < L) v = lane_index<T>() < static_cast<T>(valid) ? v : splat(T(0));
    return v;
}

template <typename T, bool kDot, bool kWeight, bool kProbs>
SpanStats<T> block_stats(const T* x, std::int64_t n, const T* weight, const T* probs, V<T> keep, V<T> spread) {
    constexpr int L = Vec<T>::lanes;
    V<T> vmax = splat(kMinusInf<T>);
    std::int64_t c = 0;
    for (; c + L <= n; c += L) vmax = max_skip_nan(vmax, load(x + c));
    if (c < n) vmax = max_skip_nan(vmax, load_partial(x + c, n - c, kMinusInf<T>));

    SpanStats<T> out;
    out.max = reduce_max(vmax);
    const V<T> shift = splat(out.max == kMinusInf<T> ? T(0) : out.max);
    V<T> sum{}, dot{}, mass{};
    const auto accumulate = [&](V<T> z, V<T> v) {
        sum += exp(z);
        if constexpr (kDot) {
            dot += v != 0 ? v * z : splat(T(0));  // a class of zero multiplier adds nothing, even at -inf
            mass += v;
        }
    };
    for (c = 0; c + L <= n; c += L) {
        const V<T> v = kDot ? multipliers<T, kWeight, kProbs>(weight, probs, c, L, keep, spread) : V<T>{};
        accumulate(load(x + c) - shift, v);
    }
    if (c < n) {
        const V<T> v = kDot ? multipliers<T, kWeight, kProbs>(weight, probs, c, n - c, keep, spread) : V<T>{};
        accumulate(load_partial(x + c, n - c, kMinusInf<T>) - shift, v);
    }
    out.sum = reduce_sum(sum);
    if constexpr (kDot) {
        out.dot = reduce_sum(dot);
        out.mass = reduce_sum(mass);
    }
    return out;
}

template <typename T, bool kDot, bool kWeight, bool kProbs>
SpanStats<T> span_stats(const T* x, std::int64_t n, const T* weight, const T* probs, double keep, double spread) {
    const V<T> vkeep = splat(static_cast<T>(keep));
    const V<T> vspread = splat(static_cast<T>(spread));
    SpanStats<T> total;
    for (std::int64_t start = 0; start < n; start += kBlock) {
        const std::int64_t len = n - start < kBlock ? n - start : kBlock;
        const SpanStats<T> block = block_stats<T, kDot, kWeight, kProbs>(
            x + start, len, weight ? weight + start : nullptr, probs ? probs + start : nullptr, vkeep, vspread);
        total = start == 0 ? block : merge(total, block);
    }
    return total;
}

template <typename T>
SpanStats<T> stats(const T* x, std::int64_t n, const T* weight, const T* probs, double keep, double spread,
                   bool with_dot) {
    if (!with_dot) return span_stats<T, false, false, false>(x, n, nullptr, nullptr, keep, spread);
    if (weight && probs) return span_stats<T, true, true, true>(x, n, weight, probs, keep, spread);
    if (weight) return span_stats<T, true, true, false>(x, n, weight, nullptr, keep, spread);
    if (probs) return span_stats<T, true, false, true>(x, n, nullptr, probs, keep, spread);
    return span_stats<T, true, false, false>(x, n, nullptr, nullptr, keep, spread);
}

template <typename T, bool kV, bool kWeight, bool kProbs>
void softmax_grad_impl(const T* x, std::int64_t n, T shift, T log_sum, T p_coef, const T* weight, const T* probs,
                       T keep, T spread, T v_coef, T* out) {
    constexpr int L = Vec<T>::lanes;
    const V<T> vshift = splat(shift), vlog = splat(log_sum), vp = splat(p_coef), vv = splat(v_coef);
    const V<T> vkeep = splat(keep), vspread = splat(spread);
    const auto gradient = [&](V<T> xs, std::int64_t c, std::int64_t valid) {
        V<T> g = vp * exp((xs - vshift) - vlog);  // the max and the log-sum subtracted separately
        if constexpr (kV) g -= vv * multipliers<T, kWeight, kProbs>(weight, probs, c, valid, vkeep, vspread);
        return g;
    };
    std::int64_t c = 0;
    for (; c + L <= n; c += L) store(out + c, gradient(load(x + c), c, L));
    if (c < n) store_partial(out + c, n - c, gradient(load_partial(x + c, n - c, kMinusInf<T>), c, n - c));
}

template <typename T>
void softmax_grad(const T* x, std::int64_t n, T shift, T log_sum, T p_coef, const T* weight, const T* probs, T keep,
                  T spread, T v_coef, T* out) {
    const auto run = [&](auto impl) { impl(x, n, shift, log_sum, p_coef, weight, probs, keep, spread, v_coef, out); };
    if (v_coef == T(0)) return run(softmax_grad_impl<T, false, false, false>);
    if (weight && probs) return run(softmax_grad_impl<T, true, true, true>);
    if (weight) return run(softmax_grad_impl<T, true, true, false>);
    if (probs) return run(softmax_grad_impl<T, true, false, true>);
    return run(softmax_grad_impl<T, true, false, false>);
}

// One group of up to `lanes` rows starting at r0: lane j owns row r0 + j.
//   1. transpose the group into buf (class-major), padding missing rows with 0;
//   2. m = max over classes, s = sum exp(x - m), d = sum_c w_c (x_c - m) (smoothing only), per lane;
//   3. loss per lane from log s (vector log), x[y] - m and d, as the per-row kernel does;
//   4. gradient per class into buf, then transposed back into the rows.
template <typename T>
double small_group(const SmallRows<T>& a, std::int64_t r0, std::int64_t valid) {
    constexpr int L = Vec<T>::lanes;
    const std::int64_t n = a.classes;
    alignas(64) T buf[kSmallClasses * L];
    for (std::int64_t j = 0; j < valid; ++j) {
        const T* row = a.x + (r0 + j) * n;
        for (std::int64_t c = 0; c < n; ++c) buf[c * L + j] = row[c];
    }
    for (std::int64_t j = valid; j < L; ++j) {
        for (std::int64_t c = 0; c < n; ++c) buf[c * L + j] = T(0);
    }

    const double smooth_coef = a.smoothing / static_cast<double>(n);
    const auto w = [&](std::int64_t c) { return a.weight ? a.weight[c] : T(1); };
    V<T> m = splat(kMinusInf<T>);
    for (std::int64_t c = 0; c < n; ++c) m = max_skip_nan(m, load(buf + c * L));
    V<T> sum{}, dot{};
    for (std::int64_t c = 0; c < n; ++c) {
        const V<T> z = load(buf + c * L) - m;
        sum += exp(z);
        if (smooth_coef != 0.0 && w(c) != T(0)) dot += w(c) * z;  // zero weight adds nothing, even at -inf
    }
    const V<T> log_sum = log(sum);

    // Per-lane target terms: x[y] - m, (1 - a) w[y], the gradient scale, and whether the row counts.
    V<T> target_shift{}, nll_coef{}, scale{};
    typename Vec<T>::bits counts{};
    for (std::int64_t j = 0; j < valid; ++j) {
        const std::int64_t y = a.labels[r0 + j];
        if (y == a.ignore_index) continue;
        counts[j] = -1;
        target_shift[j] = buf[y * L + j] - m[j];
        nll_coef[j] = static_cast<T>((1.0 - a.smoothing) * static_cast<double>(w(y)));
        scale[j] = a.scale_rows ? a.scale_rows[r0 + j] : static_cast<T>(a.scale);
    }
    V<T> loss = nll_coef != 0 ? nll_coef * (log_sum - target_shift) : splat(T(0));  // 0 * inf is not NaN here
    if (smooth_coef != 0.0) loss += static_cast<T>(smooth_coef) * (static_cast<T>(a.weight_total) * log_sum - dot);
    loss = log_sum != log_sum ? log_sum : loss;  // NaN in the row: NaN loss
    loss = counts != 0 ? loss : splat(T(0));

    double total = 0.0;
    for (std::int64_t j = 0; j < valid; ++j) {
        total += static_cast<double>(loss[j]);
        if (a.row_losses) a.row_losses[r0 + j] = loss[j];
    }
    if (a.grad == nullptr) return total;

    const V<T> p_coef = scale * (nll_coef + static_cast<T>(smooth_coef * a.weight_total));
    const V<T> v_coef = scale * static_cast<T>(smooth_coef);
    const V<T> onehot_coef = scale * nll_coef;
    V<T> labels{};
    for (std::int64_t j = 0; j < valid; ++j) labels[j] = static_cast<T>(a.labels[r0 + j]);
    for (std::int64_t c = 0; c < n; ++c) {
        V<T> g = p_coef * exp((load(buf + c * L) - m) - log_sum) - v_coef * w(c);
        g = labels == static_cast<T>(c) ? g - onehot_coef : g;
        store(buf + c * L, counts != 0 ? g : splat(T(0)));
    }
    for (std::int64_t j = 0; j < valid; ++j) {
        T* row = a.grad + (r0 + j) * n;
        for (std::int64_t c = 0; c < n; ++c) row[c] = buf[c * L + j];
    }
    return total;
}

template <typename T>
double small_rows(const SmallRows<T>& a) {
    constexpr int L = Vec<T>::lanes;
    double total = 0.0;
    for (std::int64_t r0 = 0; r0 < a.rows; r0 += L) total += small_group(a, r0, a.rows - r0 < L ? a.rows - r0 : L);
    return total;
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
V<T> log_lanes(V<T> x) { return log(x); }

template <typename T>
const Kernels<T> kTable = {XENTCPP_STR(XENTCPP_TARGET), &stats<T>, &softmax_grad<T>, &small_rows<T>,
                           &elementwise<T, exp_lanes<T>>, &elementwise<T, log_lanes<T>>};

}  // namespace

const Kernels<float>& float_kernels() { return kTable<float>; }
const Kernels<double>& double_kernels() { return kTable<double>; }

}  // namespace xentcpp::simd::XENTCPP_TARGET
