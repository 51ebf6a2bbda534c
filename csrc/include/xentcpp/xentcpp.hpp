// xentcpp: fused, numerically stable softmax cross-entropy over contiguous buffers.
//
// The C++ API of the kernels. Plain pointers and sizes, no Python, no allocation visible to the caller.
// Every buffer is C-contiguous: `input` and `probs` are rows × classes, row-major.
//
// Row loss (class-index target y, smoothing a, weights w, C classes, lse = logsumexp(x)):
//     (1 - a) * w[y] * (lse - x[y])  +  (a / C) * sum_c w[c] * (lse - x[c])
// Row loss (probability target t, smoothed t' = (1 - a) * t + a / C):
//     sum_c w[c] * t'[c] * (lse - x[c])          (a term with t'[c] == 0 contributes 0)
// With `from_logits = false` the input holds probabilities q and `lse - x[c]` becomes
// `-log(clamp(q[c], eps, 1 - eps))`.
//
// Reductions follow torch.nn.functional.cross_entropy: `mean` divides by the sum of w[y] over the
// rows that are not ignored (class-index targets) or by the number of rows (probability targets).
// Sums run in double, in an order fixed by the shape alone, so results do not depend on threads.
//
// Errors are reported by exceptions, before anything is written:
//     std::invalid_argument  inconsistent sizes, null buffers, options out of range;
//     std::out_of_range      a label outside [0, classes) that is not ignore_index.
#pragma once

#include <cstdint>

namespace xentcpp {

enum class Reduction : std::int8_t { none, sum, mean };

// T in a position that does not take part in deduction, so nullptr can be passed for an output.
template <typename T>
struct NonDeduced { using type = T; };
template <typename T>
using Out = typename NonDeduced<T>::type*;

// What is compared: logits (or probabilities) and exactly one kind of target.
template <typename T>
struct Problem {
    const T* input = nullptr;              // rows × classes
    std::int64_t rows = 0;
    std::int64_t classes = 0;
    const std::int64_t* labels = nullptr;  // class-index targets: `rows` entries, or
    const T* probs = nullptr;              // probability targets: rows × classes
};

template <typename T>
struct Options {
    const T* weight = nullptr;             // `classes` entries, or nullptr for all ones
    std::int64_t ignore_index = -100;      // rows with this label add nothing (class-index targets)
    double label_smoothing = 0.0;          // in [0, 1]
    Reduction reduction = Reduction::mean;
    bool from_logits = true;               // false: input rows are probabilities
    double epsilon = 1e-7;                 // clamp of probabilities when from_logits is false, in [0, 0.5)
};

// Where the gradient goes. `grad` (rows × classes) may be `problem.input` itself: the gradient then
// replaces the logits row by row. It must not overlap `probs`, `weight` or `grad_output_rows`.
template <typename T>
struct GradRequest {
    T* grad = nullptr;
    double grad_output = 1.0;              // upstream gradient of a reduced (sum/mean) loss, or a
    const T* grad_output_rows = nullptr;   // per-row upstream gradient (`rows` entries, reduction none)
};

// The general entry point behind the three below: returns the loss (reduced; for none the plain sum),
// writes per-row losses to `row_losses` when it is not null, and the gradient when `request` is not null.
template <typename T>
double compute(const Problem<T>& problem, const Options<T>& options, Out<T> row_losses,
               const GradRequest<T>* request);

// The loss. Returns the reduced value (for none: the plain sum). Per-row losses go to `row_losses`
// whenever it is not null; reduction none requires it.
template <typename T>
double loss(const Problem<T>& problem, const Options<T>& options, Out<T> row_losses);

// The gradient of the loss with respect to `input`, times the upstream gradient.
template <typename T>
void grad(const Problem<T>& problem, const Options<T>& options, const GradRequest<T>& request);

// Loss and gradient in one sweep over the rows (the gradient of the loss itself: upstream 1).
// Returns what `loss` returns; `row_losses` as for `loss`.
template <typename T>
double value_and_grad(const Problem<T>& problem, const Options<T>& options, Out<T> row_losses, Out<T> grad);

// The SIMD target the kernels run on: "avx512", "avx2" or "baseline" (portable C++), the best this
// CPU supports unless the environment variable XENTCPP_SIMD names another (read once per process;
// std::invalid_argument if it names no target, or one this build or CPU cannot run).
const char* simd_target();

// Whether this build and CPU can run the named SIMD target (tests run each one via XENTCPP_SIMD).
bool simd_target_supported(const char* name);

// Whether this build includes the named SIMD target, whether or not this CPU can run it.
bool simd_target_compiled(const char* name);

}  // namespace xentcpp
