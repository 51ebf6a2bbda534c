// The driver: checks a call, validates the labels, sweeps the rows in fixed tiles and reduces.
//
// 1. Check sizes and options (std::invalid_argument), then every label (std::out_of_range), before
//    any output is written: an error never leaves a half-written gradient, even in place.
// 2. The label pass also yields the mean's denominator, which scales the gradient in the same sweep.
// 3. Rows are cut into tiles whose size depends on the class count only (sweep.hpp); each tile sums
//    its row losses in double and the tile sums are added in tile order, so the result is the same
//    for any number of OpenMP threads. Rows of few classes go to the lanes-own-rows kernel, the
//    others to LogitsRows (logits_rows.hpp), probabilities (from_logits = false) to row_kernels.hpp.
#include "xentcpp/xentcpp.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "checks.hpp"
#include "labels.hpp"
#include "logits_rows.hpp"
#include "row_kernels.hpp"
#include "simd/kernels.hpp"
#include "stage.hpp"
#include "sweep.hpp"

namespace xentcpp {
namespace {

using detail::Counted;
using detail::direct;
using detail::LogitsRows;
using detail::require;
using detail::RowSpec;
using detail::Stage;
using detail::sweep_tiles;

template <typename S>
void check_call(const Problem<S>& problem, const Options<compute_t<S>>& options) {
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
    require(options.z_loss >= 0.0 && std::isfinite(options.z_loss), "z_loss must be finite and >= 0");
    // The cap is applied in the compute type: 1e300 would be inf in float (and inf * tanh(0) NaN),
    // 1e-50 would be 0 (no cap at all).
    const auto cap = static_cast<compute_t<S>>(options.softcap);
    require(options.softcap == 0.0 || (cap > 0 && std::isfinite(cap)),
            "softcap must be finite and > 0 in the compute type (0: none)");
    require(options.from_logits || (options.z_loss == 0.0 && options.softcap == 0.0),
            "z_loss and softcap apply to logits (from_logits = true)");
    require(options.from_logits || std::is_same_v<S, compute_t<S>>,
            "probability inputs (from_logits = false) must be float or double");
    detail::check_weights(options.weight, problem.classes);
}

// Checks every label and counts the rows that count (labels.hpp); probability targets count every
// row that the row mask keeps.
template <typename S>
Counted count_labels(const Problem<S>& problem, const Options<compute_t<S>>& options) {
    if (problem.labels == nullptr) {
        std::int64_t kept = problem.rows;
        if (problem.row_mask) kept = std::count_if(problem.row_mask, problem.row_mask + problem.rows, [](std::uint8_t m) { return m != 0; });
        return {static_cast<double>(kept), static_cast<double>(kept)};
    }
    return detail::count_labels(problem.labels, problem.rows, problem.classes, options.ignore_index, options.weight,
                                problem.row_mask);
}

template <typename T>
RowSpec<T> make_spec(std::int64_t classes, const Options<T>& options) {
    RowSpec<T> spec = detail::weighted_spec(classes, options.weight, options.label_smoothing);
    spec.clip_lo = static_cast<T>(options.epsilon);
    spec.clip_hi = static_cast<T>(1.0 - options.epsilon);
    return spec;
}

using simd::LossSums;

// How the gradient of each row is scaled: per row (reduction none with per-row upstream gradients)
// or uniformly, the cross-entropy and z-loss terms each by their own mean's denominator.
template <typename T>
struct Scales {
    const T* rows = nullptr;
    double loss = 0.0;
    double z_loss = 0.0;

    double loss_at(std::int64_t i) const { return rows ? static_cast<double>(rows[i]) : loss; }
    double z_loss_at(std::int64_t i) const { return rows ? static_cast<double>(rows[i]) : z_loss; }
};

// Few classes and class indices: lanes own rows (simd::Kernels::small_rows), tile by tile. Staged
// rows are converted a tile at a time (a tile holds at most kTileElements elements).
template <typename S>
LossSums sweep_small_rows(const Problem<S>& problem, const Options<compute_t<S>>& options,
                          const RowSpec<compute_t<S>>& spec, compute_t<S>* row_losses, compute_t<S>* row_z_losses,
                          S* grad, const Scales<compute_t<S>>& scales) {
    using T = compute_t<S>;
    const std::int64_t n = problem.classes;
    const simd::Kernels<T>& kernels = simd::kernels<T>();
    Stage<S> stage(kernels, options.softcap, detail::kTileElements);
    simd::SmallRows<T> rows;
    rows.classes = n;
    rows.ignore_index = options.ignore_index;
    rows.weight = options.weight;
    rows.smoothing = options.label_smoothing;
    rows.weight_total = spec.weight_total;
    rows.scale = scales.loss;
    rows.z_loss = options.z_loss;
    rows.z_scale = scales.z_loss;
    rows.row_mask = problem.row_mask;
    return sweep_tiles<LossSums>(problem.rows, n, false, [&](std::int64_t begin, std::int64_t end) {
        simd::SmallRows<T> tile = rows;
        tile.rows = end - begin;
        tile.labels = problem.labels + begin;
        tile.row_mask = rows.row_mask ? rows.row_mask + begin : nullptr;
        tile.scale_rows = scales.rows ? scales.rows + begin : nullptr;
        tile.row_losses = row_losses ? row_losses + begin : nullptr;
        tile.row_z_losses = row_z_losses ? row_z_losses + begin : nullptr;
        const S* x = problem.input + begin * n;
        S* g = grad ? grad + begin * n : nullptr;
        if (!stage.active()) {
            tile.x = direct<T>(x);
            tile.grad = direct<T>(g);
            return kernels.small_rows(tile);
        }
        const std::int64_t count = (end - begin) * n;
        T* xs = stage.buffer(Stage<S>::logits_buffer);
        stage.logits(x, count, xs);
        tile.x = xs;
        tile.grad = g ? stage.buffer(Stage<S>::gradient_buffer) : nullptr;
        const LossSums sums = kernels.small_rows(tile);
        if (g) stage.gradient(tile.grad, xs, count, g);
        return sums;
    });
}

// v / +0 as IEEE division gives it (+-inf, NaN for 0 and NaN), or NaN when `nan`; on the bit
// patterns for half precision.
template <typename S>
S over_zero(S v, bool nan) {
    if constexpr (std::is_floating_point_v<S>) {
        if (nan || v == S(0) || std::isnan(v)) return std::numeric_limits<S>::quiet_NaN();
        return std::copysign(std::numeric_limits<S>::infinity(), v);
    } else {
        constexpr bool kBinary16 = std::is_same_v<S, float16>;
        constexpr std::uint16_t kInf = kBinary16 ? 0x7C00 : 0x7F80, kQuietNaN = kBinary16 ? 0x7E00 : 0x7FC0;
        const auto magnitude = static_cast<std::uint16_t>(v.bits & 0x7FFF);
        if (nan || magnitude == 0 || magnitude > kInf) return S{kQuietNaN};
        return S{static_cast<std::uint16_t>((v.bits & 0x8000) | kInf)};
    }
}

// PyTorch's "mean" of rows whose weights sum to zero divides each of its two sums by that zero, the
// cross-entropy term's and (with smoothing) the smoothing term's: (1 - a) N / 0 + a S / 0, so that
// +inf and -inf make NaN, and so does (1 - a) = 0 times an infinite N. `total` is the call's sum
// (1 - a) N + a S; with smoothing, N and S are summed again on their own (a degenerate call: no
// speed is at stake), without z-loss (its mean divides by the rows, not the weights).
template <typename S>
double zero_weight_mean_loss(const Problem<S>& problem, const Options<compute_t<S>>& options, double total) {
    constexpr double zero = 0.0;
    const double a = options.label_smoothing;
    if (a == 0.0) return total / zero;
    Options<compute_t<S>> part = options;
    part.reduction = Reduction::sum;
    part.z_loss = 0.0;
    part.label_smoothing = 0.0;
    const double nll = compute<S>(problem, part, nullptr, nullptr).loss;
    part.label_smoothing = 1.0;
    const double smooth = compute<S>(problem, part, nullptr, nullptr).loss;
    return (1.0 - a) * (nll / zero) + a * (smooth / zero);
}

// The gradient of that mean, from the gradient of the sum already in `grad`: PyTorch's log-softmax
// backward of a one-hot gradient of -w[y] / 0 gives, in each counted row, NaN at the target (inf -
// inf) and the sum's gradient over +0 elsewhere (+-inf, NaN where it is 0); with smoothing every
// entry meets an inf - inf, and a zero weight at the target gives 0 / 0: the whole row is NaN.
template <typename S>
void zero_weight_mean_gradient(const Problem<S>& problem, const Options<compute_t<S>>& options, S* grad) {
    const std::int64_t n = problem.classes;
    for (std::int64_t i = 0; i < problem.rows; ++i) {
        const std::int64_t y = problem.labels[i];
        if ((problem.row_mask && problem.row_mask[i] == 0) || y == options.ignore_index) continue;
        const bool all_nan = options.label_smoothing != 0.0 || (options.weight && options.weight[y] == 0);
        S* g = grad + i * n;
        for (std::int64_t c = 0; c < n; ++c) g[c] = over_zero(g[c], all_nan || c == y);
    }
}

}  // namespace

template <typename S>
Totals compute(const Problem<S>& problem, const Options<compute_t<S>>& options, Out<compute_t<S>> row_losses,
               const GradRequest<S>* request, Out<compute_t<S>> row_z_losses) {
    using T = compute_t<S>;
    check_call(problem, options);
    require(request == nullptr || request->grad != nullptr, "grad is null");
    const Counted own = count_labels(problem, options);  // every label checked, before anything is written
    // The mean's denominators: this call's counts, or those of the batch it is a part of.
    const Counted counted = options.batch_counts ? Counted{options.batch_counts->weight, options.batch_counts->rows} : own;
    const RowSpec<T> spec = make_spec(problem.classes, options);
    const std::int64_t n = problem.classes;

    S* const grad = request ? request->grad : nullptr;
    Scales<T> scales;
    if (request && options.reduction == Reduction::none) scales.rows = request->grad_output_rows;
    scales.loss = scales.z_loss = request ? request->grad_output : 0.0;
    // Mean over nothing (every row ignored): the loss is NaN, the gradient zero. Counted rows whose
    // weights sum to zero: the gradient of the sum, divided by that zero afterwards (PyTorch's pattern).
    const bool zero_weight_mean = options.reduction == Reduction::mean && counted.rows != 0.0 && counted.weight == 0.0;
    if (options.reduction == Reduction::mean) {
        if (counted.rows == 0.0) scales.loss = 0.0;
        else if (!zero_weight_mean) scales.loss /= counted.weight;
        scales.z_loss = counted.rows != 0.0 ? scales.z_loss / counted.rows : 0.0;
    }

    LossSums total;
    if (options.from_logits && problem.labels && n <= simd::kSmallClasses) {
        total = sweep_small_rows(problem, options, spec, row_losses, row_z_losses, grad, scales);
    } else {
        LogitsRows<S> logits_row(problem, options, spec, options.from_logits ? grad : nullptr);
        const auto row = [&](std::int64_t i) -> LossSums {
            const S* x = problem.input + i * n;
            S* g = grad ? grad + i * n : nullptr;
            const double scale = scales.loss_at(i);
            LossSums loss;
            if (problem.row_mask && problem.row_mask[i] == 0) {
                if (g) std::memset(static_cast<void*>(g), 0, static_cast<std::size_t>(n) * sizeof(S));  // +0 in every type
            } else if (problem.labels) {
                const std::int64_t y = problem.labels[i];
                if (y == options.ignore_index) {
                    if (g) std::memset(static_cast<void*>(g), 0, static_cast<std::size_t>(n) * sizeof(S));  // +0 in every type
                } else if (options.from_logits) {
                    loss = logits_row(x, nullptr, y, g, scale, scales.z_loss_at(i));
                } else {
                    loss.loss = detail::probs_row_label(direct<T>(x), y, spec, direct<T>(g), scale);
                }
            } else {
                const S* t = problem.probs + i * n;
                if (options.from_logits) loss = logits_row(x, t, -1, g, scale, scales.z_loss_at(i));
                else loss.loss = detail::probs_row_probs(direct<T>(x), direct<T>(t), spec, direct<T>(g), scale);
            }
            if (row_losses) row_losses[i] = static_cast<T>(loss.loss + loss.z_loss);
            if (row_z_losses) row_z_losses[i] = static_cast<T>(loss.z_loss);
            return loss;
        };
        total = sweep_tiles<LossSums>(problem.rows, n, logits_row.shares_segments(), [&](std::int64_t begin, std::int64_t end) {
            LossSums sum;
            for (std::int64_t i = begin; i < end; ++i) sum = sum + row(i);
            return sum;
        }, [&] { logits_row.finish(); });
    }
    Totals totals;
    totals.z_loss = options.reduction == Reduction::mean ? total.z_loss / counted.rows : total.z_loss;
    double loss = options.reduction == Reduction::mean ? total.loss / counted.weight : total.loss;
    if (zero_weight_mean) {
        loss = zero_weight_mean_loss(problem, options, total.loss);
        if (grad) zero_weight_mean_gradient(problem, options, grad);
    }
    totals.loss = options.z_loss != 0.0 ? loss + totals.z_loss : loss;
    return totals;
}

template <typename T>
LabelCounts count_labels(const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                         std::int64_t ignore_index, const T* weight) {
    require(rows >= 0 && classes >= 1, "count_labels needs rows >= 0 and classes >= 1");
    require(labels != nullptr || rows == 0, "labels is null");
    detail::check_weights(weight, classes);
    const Counted counted = detail::count_labels(labels, rows, classes, ignore_index, weight);
    return {counted.rows, counted.weight};
}

template LabelCounts count_labels<float>(const std::int64_t*, std::int64_t, std::int64_t, std::int64_t, const float*);
template LabelCounts count_labels<double>(const std::int64_t*, std::int64_t, std::int64_t, std::int64_t,
                                          const double*);

template <typename S>
double loss(const Problem<S>& problem, const Options<compute_t<S>>& options, Out<compute_t<S>> row_losses) {
    require(options.reduction != Reduction::none || row_losses != nullptr, "reduction none needs row_losses");
    return compute<S>(problem, options, row_losses, nullptr).loss;
}

template <typename S>
void grad(const Problem<S>& problem, const Options<compute_t<S>>& options, const GradRequest<S>& request) {
    compute<S>(problem, options, nullptr, &request);
}

template <typename S>
double value_and_grad(const Problem<S>& problem, const Options<compute_t<S>>& options, Out<compute_t<S>> row_losses,
                      Out<S> grad) {
    require(options.reduction != Reduction::none || row_losses != nullptr, "reduction none needs row_losses");
    require(grad != nullptr, "grad is null");
    GradRequest<S> request;
    request.grad = grad;
    return compute<S>(problem, options, row_losses, &request).loss;
}

#define XENTCPP_INSTANTIATE(S)                                                                                     \
    template Totals compute<S>(const Problem<S>&, const Options<compute_t<S>>&, compute_t<S>*, const GradRequest<S>*, \
                               compute_t<S>*);                                                                     \
    template double loss<S>(const Problem<S>&, const Options<compute_t<S>>&, compute_t<S>*);                      \
    template void grad<S>(const Problem<S>&, const Options<compute_t<S>>&, const GradRequest<S>&);                \
    template double value_and_grad<S>(const Problem<S>&, const Options<compute_t<S>>&, compute_t<S>*, S*);

XENTCPP_INSTANTIATE(float)
XENTCPP_INSTANTIATE(double)
XENTCPP_INSTANTIATE(float16)
XENTCPP_INSTANTIATE(bfloat16)

}  // namespace xentcpp
