// Cross-entropy of few classes with class-index targets (Kernels::small_rows), for one SIMD target:
// lanes own rows (lane_groups.hpp).
#include <cstdint>
#include <cstring>

#include "families.hpp"
#include "lane_groups.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

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
    // Note: the target's exponential (for the gradient's target entry) is picked in the class loop
    // for up to 8 classes, one blend a class, and recomputed from its shift after the loop beyond
    // them, one exp a group (value_and_grad of 2 classes, AVX-512: 1.73 ns an element instead of 1.87).
    constexpr bool kPickExp = kN > 0 && kN <= 8;
    V<T> dot{}, target_shift{}, target_weight{}, target_e = splat(T(1));  // no target: e_y = exp(0)
    if (a.weight == nullptr && smooth_coef == 0.0) {  // the common case, without the per-class tests
        for (std::int64_t c = 0; c < n; ++c) {
            const V<T> z = col[c] - m;
            col[c] = pick_target<T>(label, static_cast<T>(c), z, exp_sum(z), target_shift, kPickExp ? &target_e : nullptr);
        }
        target_weight = splat(T(1));
    } else {
        for (std::int64_t c = 0; c < n; ++c) {
            const V<T> z = col[c] - m;
            const V<T> e = exp_sum(z);
            const auto hit = label == static_cast<T>(c);
            col[c] = hit ? e - T(1) : e;
            target_shift = hit ? z : target_shift;
            if constexpr (kPickExp) target_e = hit ? e : target_e;
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
    const V<T> e_y = kPickExp ? target_e : exp_sum(target_shift);
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
    XENTCPP_UNROLL
    for (int g = 0; g < 2; ++g) {
        load_columns<T>(a.x + (r0 + g * L) * n, n, col[g]);
        label[g] = group_labels(a, r0 + g * L, L);
        m[g] = splat(kMinusInf<T>);
    }
    XENTCPP_UNROLL
    for (std::int64_t c = 0; c < n; ++c) {
        XENTCPP_UNROLL
        for (int g = 0; g < 2; ++g) m[g] = max_skip_nan(m[g], col[g][c]);
    }
    XENTCPP_UNROLL
    for (std::int64_t c = 0; c < n; ++c) {
        XENTCPP_UNROLL
        for (int g = 0; g < 2; ++g) {
            const V<T> z = col[g][c] - m[g];
            col[g][c] = pick_target<T>(label[g], static_cast<T>(c), z, exp_sum(z), target_shift[g]);
        }
    }
    XENTCPP_UNROLL
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
    // The pair only for class counts known at compile time, whose loops it unrolls (a run-time count
    // would unroll 32 times over: minutes of compilation under the sanitizers, for nothing).
    if constexpr (kN > 0) {
        if (a.grad == nullptr && a.weight == nullptr && a.smoothing == 0.0 && a.z_loss == 0.0) {
            for (; r0 + 2 * L <= a.rows; r0 += 2 * L) {
                prefetch(r0, 2 * group_bytes);
                V<T> loss[2];
                plain_pair<T, kN>(a, r0, loss);
                total += __builtin_convertvector(loss[0], WideDouble<T>);  // in group order, as below
                total += __builtin_convertvector(loss[1], WideDouble<T>);
            }
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

template <typename T>
LossSums small_rows(const SmallRows<T>& a) {
    return with_class_count(a.classes, [&](auto count) { return small_rows_n<T, decltype(count)::value>(a); });
}

}  // namespace

template <typename T>
void add_few_classes(Kernels<T>& k) {
    k.small_rows = &small_rows<T>;
}

template void add_few_classes<float>(Kernels<float>&);
template void add_few_classes<double>(Kernels<double>&);

}  // namespace xentcpp::simd::XENTCPP_TARGET
