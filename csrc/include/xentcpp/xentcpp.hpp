// xentcpp: fused, numerically stable softmax cross-entropy over contiguous buffers.
//
// The C++ API of the kernels. Plain pointers and sizes, no Python, no allocation visible to the caller.
// Every buffer is C-contiguous: `input` and `probs` are rows × classes, row-major.
//
// Row loss (class-index target y, smoothing a, weights w, C classes, lse = logsumexp(x)):
//     (1 - a) * w[y] * (lse - x[y])  +  (a / C) * sum_c w[c] * (lse - x[c])
// with lse - x[y] = log1p(sum_{c != y} exp(x[c] - x[y])) kept to full relative precision when y
// holds the max (a confident row: the sum of the other terms never meets the max's 1 in a rounded
// addition), and the gradient's entry at y, p_y - 1 = -(s - e_y) / s, likewise.
// Row loss (probability target t, smoothed t' = (1 - a) * t + a / C):
//     sum_c w[c] * t'[c] * (lse - x[c])          (a term with t'[c] == 0 contributes 0)
// With `from_logits = false` the input holds probabilities q and `lse - x[c]` becomes
// `-log(clamp(q[c], eps, 1 - eps))`.
//
// Options on logits rows: `softcap` c > 0 replaces every logit by c * tanh(x / c) first (Gemma 2;
// the gradient flows through the tanh); `z_loss` λ > 0 adds λ * lse^2 per counted row (PaLM), not
// class-weighted, zero for ignored rows, and for `mean` divided by the number of counted rows.
//
// Storage types: float and double are computed in their own precision; float16 and bfloat16 are
// read into float inside the kernels (block by block, never as a whole copy), accumulated in float
// and double, and the gradient is rounded back to the input's type. Per-row losses, weights and
// per-row upstream gradients are in the compute type (compute_t).
//
// Reductions follow torch.nn.functional.cross_entropy: `mean` divides by the sum of w[y] over the
// rows that are not ignored (class-index targets) or by the number of rows (probability targets),
// masked rows left out. Class weights may be negative (any finite value); when the counted rows'
// weights sum to zero, `mean` gives PyTorch's results: the loss is +-inf or NaN (each of the
// cross-entropy and smoothing sums divided by that zero), and in each counted row the gradient's
// target entry is NaN and the others +-inf (NaN where they are 0), the whole row NaN with label
// smoothing or a zero weight at the target. When every row is ignored, the loss is NaN and the
// gradient 0. Sums run in double, in an order fixed by the shape alone, so results do not depend
// on threads.
//
// Errors are reported by exceptions, before anything is written:
//     std::invalid_argument  inconsistent sizes, null buffers, options out of range;
//     std::out_of_range      a label outside [0, classes) that is not ignore_index.
#pragma once

#include <cstdint>
#include <limits>

namespace xentcpp {

enum class Reduction : std::int8_t { none, sum, mean };

// Half-precision storage: the bit patterns of IEEE binary16 and of bfloat16 (a float's high half).
struct float16 {
    std::uint16_t bits;
};
struct bfloat16 {
    std::uint16_t bits;
};

// The type a storage type is computed in.
template <typename S>
struct ComputeType { using type = S; };
template <>
struct ComputeType<float16> { using type = float; };
template <>
struct ComputeType<bfloat16> { using type = float; };
template <typename S>
using compute_t = typename ComputeType<S>::type;

// T in a position that does not take part in deduction, so nullptr can be passed for an output.
template <typename T>
struct NonDeduced { using type = T; };
template <typename T>
using Out = typename NonDeduced<T>::type*;

// What is compared: logits (or probabilities) and exactly one kind of target, and which rows count.
template <typename S>
struct Problem {
    const S* input = nullptr;              // rows × classes
    std::int64_t rows = 0;
    std::int64_t classes = 0;
    const std::int64_t* labels = nullptr;  // class-index targets: `rows` entries, or
    const S* probs = nullptr;              // probability targets: rows × classes
    // Optional, `rows` entries: a row whose entry is 0 adds nothing to the loss, to the mean's
    // denominator or to the gradient (which is 0 there), whatever its target, as an ignored label;
    // its label is not read. For padding in soft-label training (optax's `where`).
    const std::uint8_t* row_mask = nullptr;
};

// The counts of a batch of class-index targets that a mean divides by: the rows that count (not
// ignored, not masked) and the sum of their w[y] (1 each without class weights).
struct LabelCounts {
    double rows = 0.0;
    double weight = 0.0;
};

template <typename T>
struct Options {
    const T* weight = nullptr;             // `classes` entries, or nullptr for all ones
    std::int64_t ignore_index = -100;      // rows with this label add nothing (class-index targets)
    double label_smoothing = 0.0;          // in [0, 1]
    Reduction reduction = Reduction::mean;
    bool from_logits = true;               // false: input rows are probabilities
    double epsilon = 1e-7;                 // clamp of probabilities when from_logits is false, in [0, 0.5)
    double z_loss = 0.0;                   // λ >= 0 (logits only)
    double softcap = 0.0;                  // c > 0, or 0 for none (logits only)
    // Reduction mean over a batch larger than this call's rows (a caller that splits one batch over
    // several calls, as linear.hpp's chunks do): that batch's counts (count_labels) as the mean's
    // denominators instead of this call's. The totals are then this call's share of the batch's mean,
    // and its gradient the gradient of that mean (a zero sum of weights included).
    const LabelCounts* batch_counts = nullptr;
};

// Where the gradient goes. `grad` (rows × classes) may be `problem.input` itself: the gradient then
// replaces the logits row by row. It must not overlap `probs`, `weight` or `grad_output_rows`.
template <typename S>
struct GradRequest {
    S* grad = nullptr;
    double grad_output = 1.0;                         // upstream gradient of a reduced (sum/mean) loss, or a
    const compute_t<S>* grad_output_rows = nullptr;   // per-row upstream gradient (`rows` entries, reduction none)
};

// The class-index targets of a whole batch, as `compute` counts them for a mean: the class weights are
// checked (std::invalid_argument for NaN or +-inf), then every label (std::out_of_range naming the
// first row whose label is outside [0, classes) and not ignore_index); returns the counts, added in an
// order fixed by the shape. T: float or double.
template <typename T>
LabelCounts count_labels(const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                         std::int64_t ignore_index, const T* weight);

// The reduced loss (for none: the plain sum), z-loss included, and the z-loss term on its own.
struct Totals {
    double loss = 0.0;
    double z_loss = 0.0;
};

// The general entry point behind the three below: returns the totals, writes per-row losses (z-loss
// included) to `row_losses` and per-row z-losses to `row_z_losses` when they are not null, and the
// gradient when `request` is not null. S: float, double, float16 or bfloat16.
template <typename S>
Totals compute(const Problem<S>& problem, const Options<compute_t<S>>& options, Out<compute_t<S>> row_losses,
               const GradRequest<S>* request, Out<compute_t<S>> row_z_losses = nullptr);

// The loss. Returns the reduced value (for none: the plain sum). Per-row losses go to `row_losses`
// whenever it is not null; reduction none requires it.
template <typename S>
double loss(const Problem<S>& problem, const Options<compute_t<S>>& options, Out<compute_t<S>> row_losses);

// The gradient of the loss with respect to `input`, times the upstream gradient.
template <typename S>
void grad(const Problem<S>& problem, const Options<compute_t<S>>& options, const GradRequest<S>& request);

// Loss and gradient in one sweep over the rows (the gradient of the loss itself: upstream 1).
// Returns what `loss` returns; `row_losses` as for `loss`.
template <typename S>
double value_and_grad(const Problem<S>& problem, const Options<compute_t<S>>& options, Out<compute_t<S>> row_losses,
                      Out<S> grad);

// The SIMD target the kernels run on: "avx512", "avx2" or "baseline" (portable C++), the best this
// CPU supports unless the environment variable XENTCPP_SIMD names another (read once per process;
// std::invalid_argument if it names no target, or one this build or CPU cannot run).
const char* simd_target();

// Whether this build and CPU can run the named SIMD target (tests run each one via XENTCPP_SIMD).
bool simd_target_supported(const char* name);

// Whether this build includes the named SIMD target, whether or not this CPU can run it.
bool simd_target_compiled(const char* name);

}  // namespace xentcpp
