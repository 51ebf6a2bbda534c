// Per-row kernels: the loss of one row and, optionally, its gradient.
//
// Logits rows (from_logits = true), per row x of C classes:
//   1. m = max_c x[c]                                    (read 1)
//   2. s = sum_c exp(x[c] - m), with the target sums    (read 2; s >= 1 since the max term is exp(0))
//   3. loss from log(s) and the shifted target logits   (scalars)
//   4. grad[c] = scale * (p[c] * a - b[c]), p[c] = exp((x[c] - m) - log s)   (read 3 + write)
// Probability rows (from_logits = false) need no softmax: one read for the loss, one for the gradient.
//
// Every row function returns the row loss in double and writes `grad` only when it is not null.
// `grad` may alias `x`: each element is read before it is overwritten, and x[y] is read in step 2.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace xentcpp::detail {

// What every row of one call shares: the class count and how the target is smoothed and weighted.
template <typename T>
struct RowSpec {
    std::int64_t classes = 0;
    const T* weight = nullptr;   // nullptr: all ones
    double smoothing = 0.0;      // label smoothing a
    double weight_total = 0.0;   // sum of the weights (C when unweighted)
    T clip_lo = T(0);            // probability clamp for from_logits = false
    T clip_hi = T(1);

    double w(std::int64_t c) const { return weight ? static_cast<double>(weight[c]) : 1.0; }
    double smooth_coef() const { return smoothing / static_cast<double>(classes); }
};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Max of a row. NaNs are skipped here; they reach the loss through exp(NaN - m) in the sum.
template <typename T>
T row_max(const T* x, std::int64_t n) {
    T m = -std::numeric_limits<T>::infinity();
    for (std::int64_t c = 0; c < n; ++c) m = x[c] > m ? x[c] : m;
    return m;
}

template <typename T>
void fill(T* out, std::int64_t n, T value) {
    for (std::int64_t c = 0; c < n; ++c) out[c] = value;
}

// Note: a row whose every logit is -inf has no softmax; it is NaN explicitly (as PyTorch), instead
// of through -inf - (-inf).
template <typename T>
double all_masked_row(std::int64_t n, T* grad) {
    if (grad) fill(grad, n, std::numeric_limits<T>::quiet_NaN());
    return kNaN;
}

// Logits row, class-index target y (not ignored).
template <typename T>
double logits_row_label(const T* x, std::int64_t y, const RowSpec<T>& spec, T* grad, double scale) {
    const std::int64_t n = spec.classes;
    const T m = row_max(x, n);
    if (m == -std::numeric_limits<T>::infinity()) return all_masked_row(n, grad);

    const double nll_coef = (1.0 - spec.smoothing) * spec.w(y);
    const double smooth_coef = spec.smooth_coef();
    double sum = 0.0;
    double weighted_shift = 0.0;  // sum_c w[c] * (x[c] - m), for the smoothing term
    for (std::int64_t c = 0; c < n; ++c) {
        const T z = x[c] - m;
        sum += static_cast<double>(std::exp(z));
        // A class of zero weight adds nothing, even where it is masked (0 * -inf).
        if (smooth_coef != 0.0 && spec.w(c) != 0.0) weighted_shift += spec.w(c) * static_cast<double>(z);
    }
    const double log_sum = std::log(sum);
    const double target_shift = static_cast<double>(x[y] - m);

    // A term whose coefficient is zero is not evaluated: 0 * inf would be NaN.
    double loss = 0.0;
    if (nll_coef != 0.0) loss += nll_coef * (log_sum - target_shift);
    if (smooth_coef != 0.0) loss += smooth_coef * (spec.weight_total * log_sum - weighted_shift);
    if (std::isnan(log_sum)) loss = kNaN;

    if (grad) {
        // grad[c] = scale * (p[c] * (nll_coef + smooth_coef * W) - smooth_coef * w[c]) - [c == y] * scale * nll_coef
        const T p_coef = static_cast<T>(scale * (nll_coef + smooth_coef * spec.weight_total));
        const double w_coef = scale * smooth_coef;
        const T shift = static_cast<T>(log_sum);
        for (std::int64_t c = 0; c < n; ++c) {
            const T p = std::exp((x[c] - m) - shift);
            grad[c] = p_coef * p - static_cast<T>(w_coef * spec.w(c));
        }
        grad[y] -= static_cast<T>(scale * nll_coef);
    }
    return loss;
}

// Logits row, probability target t (smoothed on the fly to t' = (1 - a) t + a / C).
template <typename T>
double logits_row_probs(const T* x, const T* t, const RowSpec<T>& spec, T* grad, double scale) {
    const std::int64_t n = spec.classes;
    const T m = row_max(x, n);
    if (m == -std::numeric_limits<T>::infinity()) return all_masked_row(n, grad);

    const double keep = 1.0 - spec.smoothing;
    const double spread = spec.smooth_coef();
    double sum = 0.0;
    double target_mass = 0.0;   // sum_c w[c] t'[c]
    double target_shift = 0.0;  // sum_c w[c] t'[c] (x[c] - m)
    for (std::int64_t c = 0; c < n; ++c) {
        const T z = x[c] - m;
        sum += static_cast<double>(std::exp(z));
        const double wt = spec.w(c) * (keep * static_cast<double>(t[c]) + spread);
        // A class with no target mass adds nothing, even where it is masked (0 * -inf).
        if (wt != 0.0) {
            target_mass += wt;
            target_shift += wt * static_cast<double>(z);
        }
    }
    const double log_sum = std::log(sum);
    const double loss = std::isnan(log_sum) ? kNaN : target_mass * log_sum - target_shift;

    if (grad) {
        const T p_coef = static_cast<T>(scale * target_mass);
        const T shift = static_cast<T>(log_sum);
        for (std::int64_t c = 0; c < n; ++c) {
            const double wt = spec.w(c) * (keep * static_cast<double>(t[c]) + spread);
            const T p = std::exp((x[c] - m) - shift);
            grad[c] = p_coef * p - static_cast<T>(scale * wt);
        }
    }
    return loss;
}

// -log(q) with q clamped to [lo, hi] as Keras does; NaN stays NaN.
template <typename T>
double neg_log_clamped(T q, const RowSpec<T>& spec) {
    const T clamped = q < spec.clip_lo ? spec.clip_lo : (q > spec.clip_hi ? spec.clip_hi : q);
    return -std::log(static_cast<double>(clamped));
}

// d(-log clamp(q))/dq times coef: -coef / q inside the clamp, 0 where the clamp applies (or coef is 0).
template <typename T>
T neg_log_clamped_grad(T q, double coef, const RowSpec<T>& spec) {
    if (coef == 0.0 || q < spec.clip_lo || q > spec.clip_hi) return T(0);
    return static_cast<T>(-coef / static_cast<double>(q));
}

// Probability row (from_logits = false), class-index target y (not ignored).
template <typename T>
double probs_row_label(const T* q, std::int64_t y, const RowSpec<T>& spec, T* grad, double scale) {
    const std::int64_t n = spec.classes;
    const double nll_coef = (1.0 - spec.smoothing) * spec.w(y);
    const double smooth_coef = spec.smooth_coef();
    double loss = 0.0;
    if (nll_coef != 0.0) loss += nll_coef * neg_log_clamped(q[y], spec);
    if (smooth_coef != 0.0) {
        for (std::int64_t c = 0; c < n; ++c) {
            if (spec.w(c) != 0.0) loss += smooth_coef * spec.w(c) * neg_log_clamped(q[c], spec);
        }
    }
    if (grad) {
        const T q_y = q[y];  // read before the loop below may overwrite it in place
        for (std::int64_t c = 0; c < n; ++c) grad[c] = neg_log_clamped_grad(q[c], scale * smooth_coef * spec.w(c), spec);
        grad[y] = static_cast<T>(grad[y] + neg_log_clamped_grad(q_y, scale * nll_coef, spec));
    }
    return loss;
}

// Probability row (from_logits = false), probability target t.
template <typename T>
double probs_row_probs(const T* q, const T* t, const RowSpec<T>& spec, T* grad, double scale) {
    const std::int64_t n = spec.classes;
    const double keep = 1.0 - spec.smoothing;
    const double spread = spec.smooth_coef();
    double loss = 0.0;
    for (std::int64_t c = 0; c < n; ++c) {
        const double wt = spec.w(c) * (keep * static_cast<double>(t[c]) + spread);
        if (wt != 0.0) loss += wt * neg_log_clamped(q[c], spec);
    }
    if (grad) {
        for (std::int64_t c = 0; c < n; ++c) {
            const double wt = spec.w(c) * (keep * static_cast<double>(t[c]) + spread);
            grad[c] = neg_log_clamped_grad(q[c], scale * wt, spec);
        }
    }
    return loss;
}

}  // namespace xentcpp::detail
