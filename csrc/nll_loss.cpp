// The driver of nll_loss (xentcpp/functions.hpp): PyTorch's negative log-likelihood of
// log-probabilities, the labels checked and counted by the label pass (labels.hpp) first.
#include <algorithm>
#include <cstdint>

#include "checks.hpp"
#include "labels.hpp"
#include "sweep.hpp"
#include "xentcpp/functions.hpp"

namespace xentcpp {

using detail::check_shape;
using detail::check_weights;
using detail::require;

template <typename T>
double nll_loss(const T* log_probs, std::int64_t rows, std::int64_t classes, const std::int64_t* labels,
                const T* weight, std::int64_t ignore_index, Reduction reduction, Out<T> row_losses,
                const GradRequest<T>* request) {
    require(log_probs != nullptr && labels != nullptr, "null buffer");
    check_shape(rows, classes);
    require(reduction != Reduction::none || row_losses != nullptr || request != nullptr,
            "reduction none needs row_losses");
    require(request == nullptr || request->grad != nullptr, "grad is null");
    check_weights(weight, classes);
    const detail::Counted counted = detail::count_labels(labels, rows, classes, ignore_index, weight);
    T* grad = request ? request->grad : nullptr;
    double scale = request ? request->grad_output : 0.0;
    // A mean over nothing (every row ignored) has a zero gradient; over rows whose weights sum to
    // zero, PyTorch's: -w[y] times an infinite (or NaN) scale at each label.
    if (reduction == Reduction::mean) scale = counted.rows != 0.0 ? scale / counted.weight : 0.0;
    const T* scale_rows = request && reduction == Reduction::none ? request->grad_output_rows : nullptr;
    const double total = detail::sweep_tiles<double>(rows, classes, false, [&](std::int64_t begin, std::int64_t end) {
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
    return reduction == Reduction::mean ? total / counted.weight : total;
}

template double nll_loss<float>(const float*, std::int64_t, std::int64_t, const std::int64_t*, const float*,
                                std::int64_t, Reduction, float*, const GradRequest<float>*);
template double nll_loss<double>(const double*, std::int64_t, std::int64_t, const std::int64_t*, const double*,
                                 std::int64_t, Reduction, double*, const GradRequest<double>*);

}  // namespace xentcpp
