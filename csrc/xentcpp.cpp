// The driver: checks a call, validates the labels, sweeps the rows in fixed blocks and reduces.
//
// 1. Check sizes and options (std::invalid_argument), then every label (std::out_of_range), before
//    any output is written: an error never leaves a half-written gradient, even in place.
// 2. The label pass also yields the mean's denominator, which scales the gradient in the same sweep.
// 3. Rows are cut into blocks whose size depends on the class count only; each block sums its row
//    losses in double and the block sums are added in block order, so the result is the same for any
//    number of OpenMP threads.
#include "xentcpp/xentcpp.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "row_kernels.hpp"

namespace xentcpp {
namespace {

using detail::RowSpec;

constexpr std::int64_t kBlockElements = std::int64_t{1} << 15;     // ~128 KiB of float logits: L2-resident
constexpr std::int64_t kParallelElements = std::int64_t{1} << 16;  // below this, fork/join costs more

void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("xentcpp: ") + what);
}

template <typename T>
void check_call(const Problem<T>& problem, const Options<T>& options) {
    require(problem.input != nullptr, "input is null");
    require(problem.rows >= 0, "rows must be >= 0");
    require(problem.classes >= 1, "classes must be >= 1 (the class axis is empty)");
    require(problem.rows <= std::numeric_limits<std::int64_t>::max() / problem.classes,
            "rows * classes overflows a 64-bit index");
    require((problem.labels != nullptr) != (problem.probs != nullptr),
            "exactly one of labels and probs must be given");
    require(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0,
            "label_smoothing must be in [0, 1]");
    require(options.from_logits || (options.epsilon >= 0.0 && options.epsilon < 0.5),
            "epsilon must be in [0, 0.5)");
    require(options.reduction == Reduction::none || options.reduction == Reduction::sum ||
                options.reduction == Reduction::mean,
            "unknown reduction");
}

// Checks every label and returns the mean's denominator: the summed weight of the rows that count.
template <typename T>
double label_denominator(const Problem<T>& problem, const Options<T>& options) {
    if (problem.labels == nullptr) return static_cast<double>(problem.rows);
    double total = 0.0;
    for (std::int64_t i = 0; i < problem.rows; ++i) {
        const std::int64_t y = problem.labels[i];
        if (y == options.ignore_index) continue;
        if (y < 0 || y >= problem.classes) {
            throw std::out_of_range("xentcpp: target[" + std::to_string(i) + "] = " + std::to_string(y) +
                                    " is out of range: expected 0 <= label < " +
                                    std::to_string(problem.classes) + " or ignore_index (" +
                                    std::to_string(options.ignore_index) + ")");
        }
        total += options.weight ? static_cast<double>(options.weight[y]) : 1.0;
    }
    return total;
}

template <typename T>
RowSpec<T> make_spec(const Problem<T>& problem, const Options<T>& options) {
    RowSpec<T> spec;
    spec.classes = problem.classes;
    spec.weight = options.weight;
    spec.smoothing = options.label_smoothing;
    spec.weight_total = static_cast<double>(problem.classes);
    if (options.weight) {
        spec.weight_total = 0.0;
        for (std::int64_t c = 0; c < problem.classes; ++c) spec.weight_total += static_cast<double>(options.weight[c]);
    }
    spec.clip_lo = static_cast<T>(options.epsilon);
    spec.clip_hi = static_cast<T>(1.0 - options.epsilon);
    return spec;
}

// Sum of row(i) over all rows, in an order fixed by the shape (see 3. above).
template <typename RowFn>
double sweep_rows(std::int64_t rows, std::int64_t classes, const RowFn& row) {
    const std::int64_t rows_per_block = std::max<std::int64_t>(1, kBlockElements / classes);
    const std::int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
    std::vector<double> block_sums(static_cast<std::size_t>(blocks), 0.0);
    const bool parallel = blocks > 1 && rows * classes >= kParallelElements;
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t end = std::min(rows, (b + 1) * rows_per_block);
        double sum = 0.0;
        for (std::int64_t i = b * rows_per_block; i < end; ++i) sum += row(i);
        block_sums[static_cast<std::size_t>(b)] = sum;
    }
    double total = 0.0;
    for (const double s : block_sums) total += s;
    return total;
}

}  // namespace

template <typename T>
double compute(const Problem<T>& problem, const Options<T>& options, T* row_losses, const GradRequest<T>* request) {
    check_call(problem, options);
    require(request == nullptr || request->grad != nullptr, "grad is null");
    const double denominator = label_denominator(problem, options);
    const RowSpec<T> spec = make_spec(problem, options);
    const std::int64_t n = problem.classes;

    T* const grad = request ? request->grad : nullptr;
    const T* const grad_output_rows =
        (request && options.reduction == Reduction::none) ? request->grad_output_rows : nullptr;
    double uniform_scale = request ? request->grad_output : 0.0;
    // Mean over nothing (all rows ignored, or zero total weight): the loss is NaN, the gradient zero.
    if (options.reduction == Reduction::mean) uniform_scale = denominator != 0.0 ? uniform_scale / denominator : 0.0;

    const auto row = [&](std::int64_t i) -> double {
        const T* x = problem.input + i * n;
        T* g = grad ? grad + i * n : nullptr;
        const double scale = grad_output_rows ? static_cast<double>(grad_output_rows[i]) : uniform_scale;
        double loss = 0.0;
        if (problem.labels) {
            const std::int64_t y = problem.labels[i];
            if (y == options.ignore_index) {
                if (g) detail::fill(g, n, T(0));
            } else if (options.from_logits) {
                loss = detail::logits_row_label(x, y, spec, g, scale);
            } else {
                loss = detail::probs_row_label(x, y, spec, g, scale);
            }
        } else {
            const T* t = problem.probs + i * n;
            loss = options.from_logits ? detail::logits_row_probs(x, t, spec, g, scale)
                                       : detail::probs_row_probs(x, t, spec, g, scale);
        }
        if (row_losses) row_losses[i] = static_cast<T>(loss);
        return loss;
    };
    const double total = sweep_rows(problem.rows, n, row);
    return options.reduction == Reduction::mean ? total / denominator : total;
}

template <typename T>
double loss(const Problem<T>& problem, const Options<T>& options, T* row_losses) {
    require(options.reduction != Reduction::none || row_losses != nullptr, "reduction none needs row_losses");
    return compute<T>(problem, options, row_losses, nullptr);
}

template <typename T>
void grad(const Problem<T>& problem, const Options<T>& options, const GradRequest<T>& request) {
    compute<T>(problem, options, nullptr, &request);
}

template <typename T>
double value_and_grad(const Problem<T>& problem, const Options<T>& options, T* row_losses, T* grad) {
    require(options.reduction != Reduction::none || row_losses != nullptr, "reduction none needs row_losses");
    require(grad != nullptr, "grad is null");
    GradRequest<T> request;
    request.grad = grad;
    return compute<T>(problem, options, row_losses, &request);
}

#define XENTCPP_INSTANTIATE(T)                                                             \
    template double compute<T>(const Problem<T>&, const Options<T>&, T*, const GradRequest<T>*); \
    template double loss<T>(const Problem<T>&, const Options<T>&, T*);                     \
    template void grad<T>(const Problem<T>&, const Options<T>&, const GradRequest<T>&);    \
    template double value_and_grad<T>(const Problem<T>&, const Options<T>&, T*, T*);

XENTCPP_INSTANTIATE(float)
XENTCPP_INSTANTIATE(double)

}  // namespace xentcpp
