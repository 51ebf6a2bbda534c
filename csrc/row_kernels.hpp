// Per-row kernels: the loss of one row and, optionally, its gradient (which may replace the row:
// every element is read before it is written, and x[y] is read for the loss before any write).
// Logits rows run on the SIMD kernels; probability rows (from_logits = false) need no softmax and
// stay scalar: one read for the loss, one for the gradient.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "simd/kernels.hpp"

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

// The spec of rows of `classes` classes with these class weights (nullptr: all ones) and label
// smoothing; the weights' total in double, in class order (the probability clamp left at [0, 1]).
template <typename T>
RowSpec<T> weighted_spec(std::int64_t classes, const T* weight, double smoothing) {
    RowSpec<T> spec;
    spec.classes = classes;
    spec.weight = weight;
    spec.smoothing = smoothing;
    spec.weight_total = static_cast<double>(classes);
    if (weight) {
        spec.weight_total = 0.0;
        for (std::int64_t c = 0; c < classes; ++c) spec.weight_total += static_cast<double>(weight[c]);
    }
    return spec;
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <typename T>
void fill(T* out, std::int64_t n, T value) {
    for (std::int64_t c = 0; c < n; ++c) out[c] = value;
}

// Logits rows are read through the SIMD kernels (simd/kernels.hpp) in three steps, so that a long
// row can be cut into segments handled by different threads:
//   1. statistics of each segment (max, sum of exponentials, target sums), merged in segment order;
//   2. the row loss from the merged statistics (scalars; reads x[y] before any gradient write);
//   3. the gradient of each segment, then the one-hot correction at y.

// The per-class multipliers of the statistics: v = w (index targets) or w * t' (probability targets).
// x and t point at the segment [begin, begin + len) of the row (its first element); weights are indexed
// by class. exp_out, maxima: optional scratch for the stored exponentials of the segment, and pending:
// another row's deferred gradient to write meanwhile (Kernels::stats).
template <typename T>
simd::SpanStats<T> segment_stats(const simd::Kernels<T>& kernels, const RowSpec<T>& spec, const T* x, const T* t,
                               std::int64_t begin, std::int64_t len, T* exp_out = nullptr, T* maxima = nullptr,
                               const simd::ScaledGrad<T>* pending = nullptr) {
    simd::StatsRequest<T> request;
    request.v = {spec.weight ? spec.weight + begin : nullptr, t, static_cast<T>(1.0 - spec.smoothing),
                 static_cast<T>(spec.smooth_coef())};
    request.with_dot = t != nullptr || spec.smoothing != 0.0;
    request.exps = exp_out;
    request.maxima = maxima;
    request.pending = pending;
    return kernels.stats(x, len, request);
}

// Row loss from its statistics; y < 0 means a probability target, else x_y is the logit at y.
// log_sum = stats.log_sum(), computed once per row by the caller.
template <typename T>
double logits_row_loss(const RowSpec<T>& spec, const simd::SpanStats<T>& stats, double log_sum, T x_y,
                       std::int64_t y) {
    if (stats.max == -std::numeric_limits<T>::infinity()) return kNaN;  // every logit -inf: no softmax
    if (std::isnan(log_sum)) return kNaN;
    if (y < 0) return stats.mass * log_sum - stats.dot;  // sum_c w t' (lse - x), shifted by the max
    // A term whose coefficient is zero is not evaluated: 0 * inf would be NaN.
    const double nll_coef = (1.0 - spec.smoothing) * spec.w(y);
    const double smooth_coef = spec.smooth_coef();
    double loss = 0.0;
    if (nll_coef != 0.0) loss += nll_coef * (log_sum - static_cast<double>(x_y - stats.max));
    if (smooth_coef != 0.0) loss += smooth_coef * (spec.weight_total * log_sum - stats.dot);
    return loss;
}

// The gradient's entry at a class-index target y, in double from the row's statistics:
//   scale (nll_coef (p_y - 1) + smooth_coef (W p_y - w[y])) + p_extra p_y,
// with p_y - 1 = -(s - e_y) / s, where s - e_y, the exponentials of the other classes, is summed
// apart from y's own exp(0) = 1 when y holds the max (SpanStats): a confident row's -r / (1 + r)
// keeps its relative precision instead of rounding to 0 with p_y.
template <typename T>
double target_grad(const RowSpec<T>& spec, const simd::SpanStats<T>& stats, T x_y, std::int64_t y, double scale,
                   double p_extra) {
    const double sum = stats.sum();
    const bool at_max = x_y == stats.max;
    const double e_y = at_max ? 1.0 : std::exp(static_cast<double>(x_y) - static_cast<double>(stats.max));
    const double others = at_max ? (stats.at_max - 1.0) + stats.below_max : sum - e_y;
    const double p_y = e_y / sum;
    const double nll_coef = (1.0 - spec.smoothing) * spec.w(y);
    const double smooth_coef = spec.smooth_coef();
    double grad = (scale * smooth_coef * spec.weight_total + p_extra) * p_y - scale * smooth_coef * spec.w(y);
    if (nll_coef != 0.0) grad -= scale * nll_coef * (others / sum);
    return grad;
}

// The scratch where segment_stats keeps a segment's exponentials and block maxima (exp_out and maxima),
// for its gradient.
template <typename T>
struct Stored {
    T* exps = nullptr;
    T* maxima = nullptr;
};

// What the gradient of every segment of a row shares: its statistics and the factors of its terms.
// Probability target: grad = scale (p sum_c w t' - w t'); class index y: grad = scale (p (nll_coef +
// smooth_coef W) - smooth_coef w), with `target` (target_grad) at y. p_extra adds to the softmax's
// coefficient (the z-loss term).
template <typename T>
struct RowGradient {
    const RowSpec<T>* spec = nullptr;
    simd::SpanStats<T> stats;
    double log_sum = 0.0;  // stats.log_sum()
    std::int64_t y = -1;   // the class index, or -1 for a probability target
    double target = 0.0;   // the entry at y
    double scale = 0.0;
    double p_extra = 0.0;

    // The coefficients of the segment [begin, begin + len), whose probability targets are t.
    simd::GradTerms<T> terms(std::int64_t begin, std::int64_t len, const T* t) const {
        const double nll_coef = y < 0 ? 0.0 : (1.0 - spec->smoothing) * spec->w(y);
        simd::GradTerms<T> out;
        out.p_coef = static_cast<T>(
            (y < 0 ? scale * stats.mass : scale * (nll_coef + spec->smooth_coef() * spec->weight_total)) + p_extra);
        out.v_coef = static_cast<T>(y < 0 ? scale : scale * spec->smooth_coef());
        out.v = {spec->weight ? spec->weight + begin : nullptr, y < 0 ? t : nullptr,
                 static_cast<T>(y < 0 ? 1.0 - spec->smoothing : 1.0), static_cast<T>(y < 0 ? spec->smooth_coef() : 0.0)};
        out.target_at = y >= begin && y < begin + len ? y - begin : -1;
        out.target_grad = target;
        return out;
    }
};

// Gradient of the segment [begin, begin + len) of a row into out (the segment's first element); x and t
// point at the segment. With `stored` (what segment_stats kept for this segment), the softmax comes from
// the kept exponentials instead of a second exp per element; and with `defer` too, the gradient is
// not written but described there, for the next row's segment_stats to write (returns true then).
template <typename T>
bool logits_segment_grad(const simd::Kernels<T>& kernels, const RowGradient<T>& row, const T* x, const T* t,
                       std::int64_t begin, std::int64_t len, T* out, bool stream, Stored<T> stored = {},
                       simd::ScaledGrad<T>* defer = nullptr) {
    if (row.stats.max == -std::numeric_limits<T>::infinity()) {
        fill(out, len, std::numeric_limits<T>::quiet_NaN());
        return false;
    }
    const simd::GradTerms<T> terms = row.terms(begin, len, t);
    if (!stored.exps) {
        kernels.softmax_grad({x, len, row.stats.max, static_cast<T>(row.log_sum), terms, out, stream});
        return false;
    }
    const simd::ScaledGrad<T> grad{stored.exps, stored.maxima, len, row.stats.max, row.stats.sum(), terms, out, stream};
    if (defer) {
        *defer = grad;
        return true;
    }
    kernels.scaled_grad(grad);
    return false;
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
