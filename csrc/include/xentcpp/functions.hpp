// xentcpp: the neighbours of cross-entropy, over contiguous buffers, on the same SIMD kernels.
//
// Layouts: `Rows` is rows × classes, C-contiguous (the class axis last). `Columns` is
// outer × classes × inner, C-contiguous, the class axis in the middle (any axis of an N-d array:
// outer and inner are the products of the dimensions before and after it); inner = 1 is `Rows`.
// Errors as in xentcpp.hpp: std::invalid_argument for sizes and options, std::out_of_range for labels.
#pragma once

#include <cstdint>

#include "xentcpp/xentcpp.hpp"

namespace xentcpp {

struct Columns {
    std::int64_t outer = 0;
    std::int64_t classes = 0;
    std::int64_t inner = 1;
};

// logsumexp along the class axis: out has outer × inner entries. A slice of all -inf gives -inf;
// NaN gives NaN; +inf (and no NaN) gives +inf, as in SciPy and PyTorch.
template <typename T>
void logsumexp(const T* x, const Columns& layout, T* out);

// softmax and log_softmax along the class axis: out has x's layout and may be x. A slice of all -inf
// gives NaN (no distribution), as 0/0.
template <typename T>
void softmax(const T* x, const Columns& layout, T* out);
template <typename T>
void log_softmax(const T* x, const Columns& layout, T* out);

// PyTorch's nll_loss on log-probabilities (rows × classes) with class indices:
//   row loss = -w[y] * log_probs[y]; mean divides by the summed w[y] of the rows not ignored.
// Returns the reduced loss (for none: the plain sum); per-row losses into row_losses when not null
// (required for none); the gradient (times the upstream gradient, as in GradRequest) when `request`
// is not null: zero except -scale * w[y] at each row's label.
template <typename T>
double nll_loss(const T* log_probs, std::int64_t rows, std::int64_t classes, const std::int64_t* labels,
                const T* weight, std::int64_t ignore_index, Reduction reduction, Out<T> row_losses,
                const GradRequest<T>* request);

// PyTorch's binary_cross_entropy_with_logits on rows × classes logits x and targets t (t in [0, 1]):
//   loss = w * ((1 - t) x + (1 + (pw - 1) t) log(1 + exp(-x))), stable for any x.
// `weight`: per element (rows × classes) or null; `class_weight`, `pos_weight`: per class or null.
// mean divides by the number of elements. `losses`: per element (required for none). The gradient
// when `request` is not null (grad_output_rows then holds one upstream value per element).
template <typename T>
double binary_cross_entropy_with_logits(const T* x, const T* t, std::int64_t rows, std::int64_t classes,
                                        const T* weight, const T* class_weight, const T* pos_weight,
                                        Reduction reduction, Out<T> losses, const GradRequest<T>* request);

// Information measures of each row (rows × classes, used as given), in nats:
//   entropy:  H(p) = -sum_c p log p        (0 log 0 = 0)
//   kl_div:   KL(p || q) = sum_c p log(p / q)   (0 where p = 0; +inf where q = 0 < p)
template <typename T>
void entropy(const T* p, std::int64_t rows, std::int64_t classes, T* out);
template <typename T>
void kl_div(const T* p, const T* q, std::int64_t rows, std::int64_t classes, T* out);

}  // namespace xentcpp
