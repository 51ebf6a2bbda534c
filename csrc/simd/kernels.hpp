// The table of SIMD kernels, one per target (filled by name from the families of csrc/simd/target/),
// the one in use chosen once per process (the best target the CPU runs, or the one XENTCPP_SIMD
// names), and the types the kernels share with their callers: the exact merge of partial row
// statistics among them.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace xentcpp::simd {

// Statistics of a span of logits x with per-class multipliers v (see Kernels::stats):
//   max = max x (NaN skipped); the sum of exp(x - max) in two parts: at_max, how many elements equal
//   the max (each adds exp(0) = 1), and below_max, the sum over the others; dot = sum_{v != 0}
//   v (x - max), mass = sum v.
// Note: the 1s are counted apart so that log(sum) = log1p((at_max - 1) + below_max) keeps full
// relative precision when the max dominates: added to 1 in a float lane, a term below 6e-8 vanishes
// (and in double below 1e-16), and the loss of a confident row, log(1 + r), with it.
// A span whose every logit is -inf has max = -inf, and the sums computed with shift 0 instead:
// at_max = 0, below_max = 0 (or NaN if the span holds a NaN) and dot = -inf where some v > 0.
template <typename T>
struct SpanStats {
    T max = -std::numeric_limits<T>::infinity();
    double at_max = 0.0;
    double below_max = 0.0;
    double dot = 0.0;
    double mass = 0.0;

    double sum() const { return at_max + below_max; }
    // log(sum), exact to the last bits of below_max when the max dominates (at_max = 1).
    // Note: log of the sum where it is at least 2 (ties at the max, or a row that is not confident),
    // which costs less than log1p and loses nothing there.
    double log_sum() const {
        const double excess = (at_max - 1.0) + below_max;
        return excess >= 1.0 ? std::log(at_max + below_max) : std::log1p(excess);
    }
};

// Merges the statistics of two adjacent spans: the same formula joins blocks within a row, segments
// of a row split across threads, or rows split across machines. Exact up to rounding. A span whose
// max is below the merged one turns all its terms, the 1s included, into terms below the max.
template <typename T>
SpanStats<T> merge(const SpanStats<T>& a, const SpanStats<T>& b) {
    constexpr T minus_inf = -std::numeric_limits<T>::infinity();
    SpanStats<T> out;
    out.max = a.max > b.max ? a.max : b.max;
    out.mass = a.mass + b.mass;
    if (out.max == minus_inf) {  // both spans fully masked: nothing to rescale
        out.below_max = a.below_max + b.below_max;
        out.dot = a.dot + b.dot;
        return out;
    }
    const auto rescaled = [&](const SpanStats<T>& s) {
        out.dot += s.dot;
        if (s.max == out.max) {
            out.at_max += s.at_max;
            out.below_max += s.below_max;
            return;
        }
        const double shift = static_cast<double>(s.max) - static_cast<double>(out.max);  // < 0, or -inf
        out.below_max += s.sum() * std::exp(shift);  // a masked span: 0 * 0, or NaN * 0 = NaN
        if (s.mass != 0.0) out.dot += shift * s.mass;
    };
    rescaled(a);
    rescaled(b);
    return out;
}

// A run of consecutive rows with few classes (<= kSmallClasses) and class-index targets, for
// Kernels::small_rows. Options as in xentcpp::Options; labels are already checked.
inline constexpr std::int64_t kSmallClasses = 32;

template <typename T>
struct SmallRows {
    const T* x = nullptr;  // rows × classes
    std::int64_t rows = 0;
    std::int64_t classes = 0;
    const std::int64_t* labels = nullptr;
    std::int64_t ignore_index = -100;
    const T* weight = nullptr;
    double smoothing = 0.0;
    double weight_total = 0.0;        // sum of the weights (classes when unweighted)
    const T* scale_rows = nullptr;    // per-row gradient scale (of both terms), or
    double scale = 0.0;               // one scale for every row (of the cross-entropy term)
    double z_loss = 0.0;              // λ of the z-loss term λ lse^2
    double z_scale = 0.0;             // its gradient scale when scale_rows is null
    T* row_losses = nullptr;          // optional: cross-entropy plus z-loss
    T* row_z_losses = nullptr;        // optional: the z-loss term alone
    T* grad = nullptr;                // optional; may be x
    const std::uint8_t* row_mask = nullptr;  // optional: rows whose entry is 0 count as ignored
};

// Sums over rows of the cross-entropy term and of the z-loss term.
struct LossSums {
    double loss = 0.0;
    double z_loss = 0.0;
};

inline LossSums operator+(LossSums a, LossSums b) { return {a.loss + b.loss, a.z_loss + b.z_loss}; }

// Statistics and stored exponentials are kept per block of this many elements (L1-resident).
inline constexpr std::int64_t kBlock = 2048;

// The last, partial vector of a streamed span, held back until the span that continues it in memory
// brings the rest of the vector: both are then streamed as one vector. Written alone, a partial
// vector is a plain store, which reads its cache line from memory first (rows of 1 000 floats, half
// of them not starting on a line: 6.2 ms against 5.4 for rows of 1 008). The holder writes what is
// left (count elements at `at`) when it is done.
template <typename T>
struct Carry {
    T* at = nullptr;  // vector-aligned, or null: nothing held
    std::int64_t count = 0;
    alignas(64) T values[64 / sizeof(T)] = {};
};

// The per-class multipliers of a span, v[c] = (weight ? weight[c] : 1) * (probs ? keep * probs[c] +
// spread : 1): the class weights w of a class-index target, or w t' of a smoothed probability target
// t' = keep t + spread. weight and probs point at the span's first class.
template <typename T>
struct Multipliers {
    const T* weight = nullptr;
    const T* probs = nullptr;
    T keep = T(1);
    T spread = T(0);
};

// What Kernels::stats computes of a span besides max and the sum of exponentials.
template <typename T>
struct ScaledGrad;
template <typename T>
struct StatsRequest {
    Multipliers<T> v;
    bool with_dot = false;  // dot and mass (see SpanStats)
    // When exps is not null it receives exp(x[c] - m_b), m_b the max of c's block of kBlock elements,
    // and maxima the m_b (ceil(n / kBlock) of them): what scaled_grad needs.
    T* exps = nullptr;
    T* maxima = nullptr;
    // When not null (a gradient of n elements, from exponentials other than `exps`), it is written
    // too, one gradient vector per exponential computed: the stores of one row drain while the next
    // row's statistics are computed, instead of after them (see ScaledGrad).
    const ScaledGrad<T>* pending = nullptr;
};

// The coefficients of a span's gradient, shared by softmax_grad and scaled_grad:
//   out[c] = p_coef p[c] - v_coef v[c]  (the v term skipped when v_coef is 0),
// then out[target_at] = target_grad (target_at >= 0; -1: none): a class-index target's entry,
// computed by the row driver from the row's statistics (detail::target_grad) and set before the
// store, so that nobody reads the output back.
template <typename T>
struct GradTerms {
    T p_coef = T(0);
    T v_coef = T(0);
    Multipliers<T> v;
    std::int64_t target_at = -1;
    double target_grad = 0.0;
};

// softmax_grad's span: p[c] = exp((x[c] - shift) - log_sum), the max and the log-sum subtracted
// separately. out may be x itself. stream: write around the caches (for outputs larger than them: no
// read for ownership); ignored when out is x. The caller calls Kernels::fence() before the streamed
// data is read by another thread (once per batch of rows: a fence drains the buffers).
template <typename T>
struct SoftmaxGrad {
    const T* x = nullptr;
    std::int64_t n = 0;
    T shift = T(0);
    T log_sum = T(0);
    GradTerms<T> terms;
    T* out = nullptr;
    bool stream = false;
};

// scaled_grad's span, from the exponentials stats kept: p[c] = exp(m_b - shift) / sum * e[c], with
// sum the row's stats.sum(): one multiply-add per element instead of an exp. A value, so that it can
// wait for the next row (StatsRequest::pending). out may be e.
template <typename T>
struct ScaledGrad {
    const T* e = nullptr;       // exp(x[c] - m_b), from stats
    const T* maxima = nullptr;  // the m_b
    std::int64_t n = 0;
    T shift = T(0);  // the row's max
    double sum = 0.0;
    GradTerms<T> terms;
    T* out = nullptr;
    bool stream = false;
    Carry<T>* carry = nullptr;  // when streaming: the partial vectors at both ends go through it
};

// Which of the softmax family a kernel computes: logsumexp writes one value per slice, softmax and
// log_softmax one per element.
enum class SoftmaxOp : int { logsumexp, softmax, log_softmax };

template <typename T>
struct Kernels {
    const char* target;

    // Statistics of the span x[0, n) (SpanStats), and what the request asks for besides.
    SpanStats<T> (*stats)(const T* x, std::int64_t n, const StatsRequest<T>& request);
    // The gradient of a span (GradTerms): from the logits, or from the exponentials stats kept.
    void (*softmax_grad)(const SoftmaxGrad<T>& grad);
    void (*scaled_grad)(const ScaledGrad<T>& grad);
    void (*fence)();

    // Loss (returned: the sum over the rows, in row order) and, when asked, per-row losses and the
    // gradient of SmallRows. Lanes own rows: each group of rows is transposed in registers.
    LossSums (*small_rows)(const SmallRows<T>& rows);

    // Logit soft-capping, out = cap * tanh(x / cap), and its chain rule, out = g * (1 - (capped / cap)^2).
    void (*softcap)(const T* x, std::int64_t n, T cap, T* out);
    void (*softcap_grad)(const T* g, const T* capped, std::int64_t n, T cap, T* out);

    // Half precision: IEEE binary16 and bfloat16 bit patterns to T (exact) and back (rounded to
    // nearest even; NaN stays NaN).
    void (*widen_f16)(const std::uint16_t* in, std::int64_t n, T* out);
    void (*narrow_f16)(const T* in, std::int64_t n, std::uint16_t* out);
    void (*widen_bf16)(const std::uint16_t* in, std::int64_t n, T* out);
    void (*narrow_bf16)(const T* in, std::int64_t n, std::uint16_t* out);

    // The softmax family along the middle axis of a classes × inner block (a class axis that is not
    // last): lanes own positions of the inner axis. logsumexp: out[inner]; softmax and log_softmax:
    // out like x (may be x).
    void (*columns)(const T* x, std::int64_t classes, std::int64_t inner, SoftmaxOp op, T* out);
    // The same over rows × classes with the class axis last and few classes (<= kSmallClasses): lanes
    // own rows, as in small_rows. logsumexp writes one value per row, the others rows × classes (out
    // may be x).
    void (*small_family)(const T* x, std::int64_t rows, std::int64_t classes, SoftmaxOp op, T* out);
    // out[c] = (x[c] - shift) - log_sum (log_softmax of a row whose statistics are known).
    void (*shifted)(const T* x, std::int64_t n, T shift, T log_sum, T* out);

    // Binary cross-entropy with logits over x[0, n), targets t, with optional per-element weights
    // `weight`, per-class `class_weight` and `pos_weight` (indexed like x: the caller passes rows):
    //   loss = w * ((1 - t) x + (1 + (pw - 1) t) softplus(-x)),
    //   grad = scale * w * ((1 + (pw - 1) t) sigmoid(x) - pw t).
    // Returns the sum of the losses; writes them to `losses` and the gradient (times `scale`, or
    // times `scales[c]` when given) to `grad` when those are not null.
    double (*bce_with_logits)(const T* x, const T* t, std::int64_t n, const T* weight, const T* class_weight,
                              const T* pos_weight, T* losses, T* grad, T scale, const T* scales);
    // sum_c p log p (0 log 0 = 0) and sum_c p log(p / q) (0 where p = 0; +inf where q = 0 < p).
    double (*sum_p_log_p)(const T* p, std::int64_t n);
    double (*sum_p_log_p_over_q)(const T* p, const T* q, std::int64_t n);

    // Of the labels[0, n): how many are not `ignore` (counted) and how many of those lie outside
    // [0, classes) (bad). The unweighted label pass (labels.hpp).
    void (*count_labels)(const std::int64_t* labels, std::int64_t n, std::int64_t classes, std::int64_t ignore,
                         std::int64_t* counted, std::int64_t* bad);
};

// The targets compiled into this build, best first, and the one in use.
enum class Target { avx512, avx2, baseline };
const char* target_name(Target target);
bool target_compiled(Target target);
bool target_supported(Target target);  // compiled and runnable on this CPU

// The kernels of the active target: the best supported one, or XENTCPP_SIMD's choice (read once;
// std::invalid_argument if it names no known target, or one this CPU cannot run).
template <typename T>
const Kernels<T>& kernels();
Target active_target();

// The kernels of a given supported target (tests run each one).
template <typename T>
const Kernels<T>& kernels_for(Target target);

}  // namespace xentcpp::simd
