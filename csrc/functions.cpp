// Drivers of the functions in functions.hpp: checks, the rows shared out over OpenMP threads in fixed
// blocks (sums in block order, so results do not depend on the threads), the SIMD kernels per row.
#include "xentcpp/functions.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "blocks.hpp"
#include "labels.hpp"
#include "simd/kernels.hpp"

namespace xentcpp {
namespace {

using detail::require;

void check_shape(std::int64_t rows, std::int64_t classes, std::int64_t inner = 1) {
    require(rows >= 0 && inner >= 1, "rows must be >= 0 and inner >= 1");
    require(classes >= 1, "classes must be >= 1 (the class axis is empty)");
    require(rows <= std::numeric_limits<std::int64_t>::max() / classes / inner, "the size overflows a 64-bit index");
}

// Rows shared out in fixed blocks, their sums added in block order (blocks.hpp).
template <typename BlockFn>
double sweep(std::int64_t rows, std::int64_t row_elements, const BlockFn& block) {
    return detail::sweep_blocks<double>(rows, row_elements, false, block);
}

template <typename T>
double reduce(double total, Reduction reduction, double denominator) {
    return reduction == Reduction::mean ? total / denominator : total;
}

// A slice that holds +inf and no NaN has logsumexp +inf, as in SciPy and PyTorch; the kernels give
// NaN there (x - max is inf - inf), so a NaN result is looked at again (slice[c * stride], c < n).
template <typename T>
void mend_infinite_sum(const T* slice, std::int64_t n, std::int64_t stride, T& out) {
    if (!std::isnan(out)) return;
    bool infinite = false, nan = false;
    for (std::int64_t c = 0; c < n; ++c) {
        infinite |= slice[c * stride] == std::numeric_limits<T>::infinity();
        nan |= std::isnan(slice[c * stride]);
    }
    if (infinite && !nan) out = std::numeric_limits<T>::infinity();
}

// op as in Kernels::columns: 0 logsumexp, 1 softmax, 2 log_softmax.
template <typename T>
void softmax_family(const T* x, const Columns& layout, T* out, int op) {
    require(x != nullptr && out != nullptr, "null buffer");
    check_shape(layout.outer, layout.classes, layout.inner);
    const simd::Kernels<T>& k = simd::kernels<T>();
    const std::int64_t n = layout.classes;
    if (layout.inner > 1) {
        sweep(layout.outer, n * layout.inner, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t o = begin; o < end; ++o) {
                const std::int64_t out_stride = op == 0 ? layout.inner : n * layout.inner;
                k.columns(x + o * n * layout.inner, n, layout.inner, op, out + o * out_stride);
                for (std::int64_t i = 0; op == 0 && i < layout.inner; ++i) {
                    mend_infinite_sum(x + o * n * layout.inner + i, n, layout.inner, out[o * layout.inner + i]);
                }
            }
            return 0.0;
        });
        return;
    }
    if (n <= simd::kSmallClasses) {  // a row is shorter than a few vectors: lanes own rows
        sweep(layout.outer, n, [&](std::int64_t begin, std::int64_t end) {
            k.small_family(x + begin * n, end - begin, n, op, out + begin * (op == 0 ? 1 : n));
            for (std::int64_t r = begin; op == 0 && r < end; ++r) mend_infinite_sum(x + r * n, n, 1, out[r]);
            return 0.0;
        });
        return;
    }
    sweep(layout.outer, n, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
            const T* row = x + r * n;
            const simd::SpanStats<T> stats = k.stats(row, n, nullptr, nullptr, 1.0, 0.0, false, nullptr, nullptr, nullptr);
            const T log_sum = static_cast<T>(stats.log_sum());
            // All -inf: the sums used shift 0, so lse = -inf and the distribution is NaN (0 / 0).
            const T shift = stats.max == -std::numeric_limits<T>::infinity() ? T(0) : stats.max;
            if (op == 0) {
                out[r] = shift + log_sum;
                mend_infinite_sum(row, n, 1, out[r]);
            }
            else if (op == 1) k.softmax_grad(row, n, stats.max, log_sum, T(1), nullptr, nullptr, T(1), T(0), T(0), out + r * n, false, -1, 0.0);
            else k.shifted(row, n, stats.max, log_sum, out + r * n);
        }
        return 0.0;
    });
}

}  // namespace

template <typename T>
void logsumexp(const T* x, const Columns& layout, T* out) {
    softmax_family(x, layout, out, 0);
}

template <typename T>
void softmax(const T* x, const Columns& layout, T* out) {
    softmax_family(x, layout, out, 1);
}

template <typename T>
void log_softmax(const T* x, const Columns& layout, T* out) {
    softmax_family(x, layout, out, 2);
}

template <typename T>
double nll_loss(const T* log_probs, std::int64_t rows, std::int64_t classes, const std::int64_t* labels,
                const T* weight, std::int64_t ignore_index, Reduction reduction, Out<T> row_losses,
                const GradRequest<T>* request) {
    require(log_probs != nullptr && labels != nullptr, "null buffer");
    check_shape(rows, classes);
    require(reduction != Reduction::none || row_losses != nullptr || request != nullptr,
            "reduction none needs row_losses");
    require(request == nullptr || request->grad != nullptr, "grad is null");
    detail::check_weights(weight, classes);
    const detail::Counted counted = detail::count_labels(labels, rows, classes, ignore_index, weight);
    T* grad = request ? request->grad : nullptr;
    double scale = request ? request->grad_output : 0.0;
    // A mean over nothing (every row ignored) has a zero gradient; over rows whose weights sum to
    // zero, PyTorch's: -w[y] times an infinite (or NaN) scale at each label.
    if (reduction == Reduction::mean) scale = counted.rows != 0.0 ? scale / counted.weight : 0.0;
    const T* scale_rows = request && reduction == Reduction::none ? request->grad_output_rows : nullptr;
    const double total = sweep(rows, classes, [&](std::int64_t begin, std::int64_t end) {
        double sum = 0.0;
        for (std::int64_t i = begin; i < end; ++i) {
            const std::int64_t y = labels[i];
            const bool counts = y != ignore_index;
            const double w = counts ? (weight ? static_cast<double>(weight[y]) : 1.0) : 0.0;
            // A zero weight contributes 0, even where the log-probability is -inf.
            const double loss = w != 0.0 ? -w * static_cast<double>(log_probs[i * classes + y]) : 0.0;
            if (row_losses) row_losses[i] = static_cast<T>(loss);
            sum += loss;
            if (grad) {
                T* g = grad + i * classes;  // may be log_probs itself: the label's entry was read above
                std::fill(g, g + classes, T(0));
                if (counts) g[y] = static_cast<T>(-w * (scale_rows ? static_cast<double>(scale_rows[i]) : scale));
            }
        }
        return sum;
    });
    return reduce<T>(total, reduction, counted.weight);
}

template <typename T>
double binary_cross_entropy_with_logits(const T* x, const T* t, std::int64_t rows, std::int64_t classes,
                                        const T* weight, const T* class_weight, const T* pos_weight,
                                        Reduction reduction, Out<T> losses, const GradRequest<T>* request) {
    require(x != nullptr && t != nullptr, "null buffer");
    check_shape(rows, classes);
    require(reduction != Reduction::none || losses != nullptr || request != nullptr, "reduction none needs losses");
    require(request == nullptr || request->grad != nullptr, "grad is null");
    const simd::Kernels<T>& k = simd::kernels<T>();
    const double elements = static_cast<double>(rows) * static_cast<double>(classes);
    T* grad = request ? request->grad : nullptr;
    double scale = request ? request->grad_output : 0.0;
    if (reduction == Reduction::mean) scale = elements != 0.0 ? scale / elements : 0.0;
    const T* scales = request && reduction == Reduction::none ? request->grad_output_rows : nullptr;
    const auto at = [](auto* p, std::int64_t offset) { return p ? p + offset : nullptr; };
    const bool per_class = class_weight != nullptr || pos_weight != nullptr;
    const double total = sweep(rows, classes, [&](std::int64_t begin, std::int64_t end) {
        if (!per_class) {  // one span: no per-row calls for few classes
            const std::int64_t offset = begin * classes, n = (end - begin) * classes;
            return k.bce_with_logits(x + offset, t + offset, n, at(weight, offset), nullptr, nullptr, at(losses, offset),
                                     at(grad, offset), static_cast<T>(scale), at(scales, offset));
        }
        double sum = 0.0;
        for (std::int64_t r = begin; r < end; ++r) {
            const std::int64_t offset = r * classes;
            sum += k.bce_with_logits(x + offset, t + offset, classes, at(weight, offset), class_weight, pos_weight,
                                     at(losses, offset), at(grad, offset), static_cast<T>(scale), at(scales, offset));
        }
        return sum;
    });
    return reduce<T>(total, reduction, elements);
}

template <typename T>
void entropy(const T* p, std::int64_t rows, std::int64_t classes, T* out) {
    require(p != nullptr && out != nullptr, "null buffer");
    check_shape(rows, classes);
    const simd::Kernels<T>& k = simd::kernels<T>();
    sweep(rows, classes, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) out[r] = static_cast<T>(-k.sum_p_log_p(p + r * classes, classes));
        return 0.0;
    });
}

template <typename T>
void kl_div(const T* p, const T* q, std::int64_t rows, std::int64_t classes, T* out) {
    require(p != nullptr && q != nullptr && out != nullptr, "null buffer");
    check_shape(rows, classes);
    const simd::Kernels<T>& k = simd::kernels<T>();
    sweep(rows, classes, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
            out[r] = static_cast<T>(k.sum_p_log_p_over_q(p + r * classes, q + r * classes, classes));
        }
        return 0.0;
    });
}

#define XENTCPP_INSTANTIATE_FUNCTIONS(T)                                                                           \
    template void logsumexp<T>(const T*, const Columns&, T*);                                                    \
    template void softmax<T>(const T*, const Columns&, T*);                                                      \
    template void log_softmax<T>(const T*, const Columns&, T*);                                                  \
    template double nll_loss<T>(const T*, std::int64_t, std::int64_t, const std::int64_t*, const T*, std::int64_t, \
                                Reduction, T*, const GradRequest<T>*);                                           \
    template double binary_cross_entropy_with_logits<T>(const T*, const T*, std::int64_t, std::int64_t, const T*,  \
                                                        const T*, const T*, Reduction, T*, const GradRequest<T>*); \
    template void entropy<T>(const T*, std::int64_t, std::int64_t, T*);                                          \
    template void kl_div<T>(const T*, const T*, std::int64_t, std::int64_t, T*);

XENTCPP_INSTANTIATE_FUNCTIONS(float)
XENTCPP_INSTANTIATE_FUNCTIONS(double)

}  // namespace xentcpp
