// Cross-entropy from shards of classes (xentcpp/partials.hpp), on the row kernels of the whole-row
// path (row_kernels.hpp), so that a merged row has the same formula and precision:
//
// 1. row_partials: per row, the shard's SpanStats from one read (detail::segment_stats, as for a segment
//    of a long row) and x_y when the target falls in the shard. Labels are checked first.
// 2. merge_partials: simd::merge, the join of two segments of one row, on the records.
// 3. loss_from_partials: detail::logits_row_loss of each merged record; sums in double per fixed
//    tile of rows, the tiles added in order (results do not depend on the threads).
// 4. grad_from_partials: detail::logits_segment_grad of the shard from the row's merged record, the
//    target's entry from detail::target_grad (in double).
#include "xentcpp/partials.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "checks.hpp"
#include "labels.hpp"
#include "row_kernels.hpp"
#include "simd/kernels.hpp"
#include "sweep.hpp"

namespace xentcpp {
namespace {

using detail::require;

constexpr double kInf = std::numeric_limits<double>::infinity();
// What a row of records costs next to a row of logits, for the sweep's tiles: records are cheap (a
// log1p each), so tiles of 4 096 rows, and threads from 8 192 rows on.
constexpr std::int64_t kRecordCost = 8;

RowPartial empty_record(std::int64_t width) { return RowPartial{-kInf, 0.0, 0.0, 0.0, 0.0, 0.0, width, 0}; }

template <typename T>
simd::SpanStats<T> stats_of(const RowPartial& p) {
    simd::SpanStats<T> s;
    s.max = static_cast<T>(p.max);
    s.at_max = p.at_max;
    s.below_max = p.below_max;
    s.dot = p.dot;
    s.mass = p.mass;
    return s;
}

template <typename T>
RowPartial record_of(const simd::SpanStats<T>& s, std::int64_t classes) {
    return RowPartial{static_cast<double>(s.max), s.at_max, s.below_max, s.dot, s.mass, 0.0, classes, 0};
}

template <typename T>
detail::RowSpec<T> spec_of(std::int64_t classes, const PartialOptions<T>& options) {
    return detail::weighted_spec(classes, options.weight, options.label_smoothing);
}

template <typename T>
void check_options(const PartialOptions<T>& options, std::int64_t classes) {
    require(classes >= 1, "classes must be >= 1 (the class axis is empty)");
    require(options.label_smoothing >= 0.0 && options.label_smoothing <= 1.0, "label_smoothing must be in [0, 1]");
    require(options.z_loss >= 0.0 && std::isfinite(options.z_loss), "z_loss must be finite and >= 0");
    // The cap is applied in the compute type (as in xentcpp.cpp's check_call).
    const auto cap = static_cast<T>(options.softcap);
    require(options.softcap == 0.0 || (cap > 0 && std::isfinite(cap)),
            "softcap must be finite and > 0 in the compute type (0: none)");
    detail::check_weights(options.weight, classes);
}

// Checks sizes and options, then every label (std::out_of_range for the first bad row), before
// anything is written.
template <typename T>
void check_shard(const ClassShard<T>& shard, const PartialOptions<T>& options) {
    require(shard.logits != nullptr, "logits is null");
    require(shard.rows >= 0, "rows must be >= 0");
    check_options(options, shard.classes);
    require(shard.width >= 1, "width must be >= 1 (the shard holds no class)");
    require(shard.class_start >= 0 && shard.width <= shard.classes - shard.class_start,
            "the shard's classes [class_start, class_start + width) must lie in [0, classes)");
    require(shard.rows <= std::numeric_limits<std::int64_t>::max() / shard.width,
            "rows * width overflows a 64-bit index");
    require((shard.labels != nullptr) != (shard.probs != nullptr), "exactly one of labels and probs must be given");
    if (shard.labels) {
        detail::count_labels(shard.labels, shard.rows, shard.classes, options.ignore_index, options.weight,
                             shard.row_mask);
    }
}

// Whether row i counts: not masked, and (class indices) not ignored.
bool counts(std::int64_t i, const std::int64_t* labels, const std::uint8_t* row_mask, std::int64_t ignore_index) {
    return (row_mask == nullptr || row_mask[i] != 0) && (labels == nullptr || labels[i] != ignore_index);
}

// Every counted row's merged record must cover its C classes, and its target once.
void check_coverage(const RowPartial* partials, std::int64_t rows, std::int64_t classes, const std::int64_t* labels,
                    const std::uint8_t* row_mask, std::int64_t ignore_index) {
    for (std::int64_t i = 0; i < rows; ++i) {
        if (!counts(i, labels, row_mask, ignore_index)) continue;
        const RowPartial& p = partials[i];
        if (p.classes != classes || (labels != nullptr && p.targets != 1)) {
            throw std::invalid_argument(
                "xentcpp: partials[" + std::to_string(i) + "] cover " + std::to_string(p.classes) + " of the " +
                std::to_string(classes) + " classes" +
                (labels ? " and the target class " + std::to_string(p.targets) + " times" : std::string()) +
                ": merge the partials of every shard of the classes, each once");
        }
    }
}

// Per-thread scratch for soft-capped rows: the capped logits, and the gradient before the cap's chain rule.
template <typename T>
T* scratch(std::int64_t which, std::int64_t n) {
    thread_local std::vector<T> buffer;
    if (buffer.size() < static_cast<std::size_t>(2 * n)) buffer.resize(static_cast<std::size_t>(2 * n));
    return buffer.data() + which * n;
}

// v / +0 as IEEE division gives it (+-inf, NaN for 0 and NaN), or NaN when `nan` (xentcpp.hpp's
// mean over weights summing to zero).
template <typename T>
T over_zero(T v, bool nan) {
    if (nan || v == T(0) || std::isnan(v)) return std::numeric_limits<T>::quiet_NaN();
    return std::copysign(std::numeric_limits<T>::infinity(), v);
}

}  // namespace

template <typename T>
void row_partials(const ClassShard<T>& shard, const PartialOptions<T>& options, RowPartial* out) {
    check_shard(shard, options);
    require(out != nullptr, "out is null");
    const simd::Kernels<T>& kernels = simd::kernels<T>();
    const detail::RowSpec<T> spec = spec_of(shard.classes, options);
    const std::int64_t n = shard.width, begin = shard.class_start;
    const auto cap = static_cast<T>(options.softcap);
    const auto row = [&](std::int64_t i) {
        if (!counts(i, shard.labels, shard.row_mask, options.ignore_index)) return empty_record(n);
        const T* x = shard.logits + i * n;
        if (cap != T(0)) {
            T* capped = scratch<T>(0, n);
            kernels.softcap(x, n, cap, capped);
            x = capped;
        }
        const T* t = shard.probs ? shard.probs + i * n : nullptr;
        RowPartial record = record_of(detail::segment_stats(kernels, spec, x, t, begin, n), n);
        const std::int64_t y = shard.labels ? shard.labels[i] : -1;
        if (y >= begin && y < begin + n) {
            record.target_logit = static_cast<double>(x[y - begin]);
            record.targets = 1;
        }
        return record;
    };
    detail::sweep_tiles<int>(shard.rows, n, false, [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t i = lo; i < hi; ++i) out[i] = row(i);
        return 0;
    });
}

void merge_partials(const RowPartial* a, const RowPartial* b, std::int64_t rows, RowPartial* out) {
    require(rows >= 0, "rows must be >= 0");
    require(rows == 0 || (a != nullptr && b != nullptr && out != nullptr), "null buffer");
    for (std::int64_t i = 0; i < rows; ++i) {
        // Note: merge<double> gives the bits merge<float> would for records of float rows: the max is
        // compared and subtracted in double either way.
        RowPartial merged = record_of(simd::merge(stats_of<double>(a[i]), stats_of<double>(b[i])), a[i].classes + b[i].classes);
        merged.targets = a[i].targets + b[i].targets;
        merged.target_logit = a[i].targets != 0 ? a[i].target_logit : b[i].target_logit;
        out[i] = merged;
    }
}

PartialSums count_targets(const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                          std::int64_t ignore_index, const double* weight, const std::uint8_t* row_mask) {
    require(labels != nullptr || rows == 0, "labels is null");
    require(rows >= 0, "rows must be >= 0");
    require(classes >= 1, "classes must be >= 1 (the class axis is empty)");
    detail::check_weights(weight, classes);
    const detail::Counted counted = detail::count_labels(labels, rows, classes, ignore_index, weight, row_mask);
    PartialSums sums;
    sums.weight = counted.weight;
    sums.rows = counted.rows;
    return sums;
}

PartialSums loss_from_partials(const RowPartial* partials, std::int64_t rows, std::int64_t classes,
                               const std::int64_t* labels, const std::uint8_t* row_mask,
                               const PartialOptions<double>& options, double* row_losses, double* row_z_losses) {
    require(partials != nullptr || rows == 0, "partials is null");
    require(rows >= 0, "rows must be >= 0");
    check_options(options, classes);
    PartialSums counted;
    if (labels) {
        counted = count_targets(labels, rows, classes, options.ignore_index, options.weight, row_mask);
    } else {
        std::int64_t kept = rows;
        for (std::int64_t i = 0; row_mask && i < rows; ++i) kept -= row_mask[i] == 0;
        counted.weight = counted.rows = static_cast<double>(kept);
    }
    check_coverage(partials, rows, classes, labels, row_mask, options.ignore_index);

    const detail::RowSpec<double> spec = spec_of(classes, options);
    detail::RowSpec<double> nll_spec = spec, smooth_spec = spec;  // the terms PyTorch's zero-weight mean divides apart
    nll_spec.smoothing = 0.0;
    smooth_spec.smoothing = 1.0;
    const auto row = [&](std::int64_t i) {
        PartialSums sums;
        if (counts(i, labels, row_mask, options.ignore_index)) {
            const RowPartial& p = partials[i];
            const simd::SpanStats<double> stats = stats_of<double>(p);
            const double log_sum = stats.log_sum();
            const std::int64_t y = labels ? labels[i] : -1;
            sums.loss = detail::logits_row_loss(spec, stats, log_sum, p.target_logit, y);
            const double lse = stats.max + log_sum;
            if (options.z_loss != 0.0) sums.z_loss = std::isnan(sums.loss) ? detail::kNaN : options.z_loss * lse * lse;
            if (y >= 0) {
                sums.nll = detail::logits_row_loss(nll_spec, stats, log_sum, p.target_logit, y);
                if (options.label_smoothing != 0.0) {
                    sums.smooth = detail::logits_row_loss(smooth_spec, stats, log_sum, p.target_logit, y);
                }
            }
        }
        if (row_losses) row_losses[i] = sums.loss + sums.z_loss;
        if (row_z_losses) row_z_losses[i] = sums.z_loss;
        return sums;
    };
    PartialSums total = detail::sweep_tiles<PartialSums>(rows, kRecordCost, false, [&](std::int64_t lo, std::int64_t hi) {
        PartialSums sum;
        for (std::int64_t i = lo; i < hi; ++i) sum = sum + row(i);
        return sum;
    });
    total.weight = counted.weight;
    total.rows = counted.rows;
    return total;
}

template <typename T>
void grad_from_partials(const ClassShard<T>& shard, const RowPartial* partials, const PartialOptions<T>& options,
                        const PartialScales& scales, T* grad) {
    check_shard(shard, options);
    require(grad != nullptr, "grad is null");
    require(partials != nullptr || shard.rows == 0, "partials is null");
    check_coverage(partials, shard.rows, shard.classes, shard.labels, shard.row_mask, options.ignore_index);
    const simd::Kernels<T>& kernels = simd::kernels<T>();
    const detail::RowSpec<T> spec = spec_of(shard.classes, options);
    const std::int64_t n = shard.width, begin = shard.class_start;
    const auto cap = static_cast<T>(options.softcap);
    const auto row = [&](std::int64_t i) {
        T* g = grad + i * n;
        if (!counts(i, shard.labels, shard.row_mask, options.ignore_index)) {
            std::memset(static_cast<void*>(g), 0, static_cast<std::size_t>(n) * sizeof(T));
            return;
        }
        const RowPartial& p = partials[i];
        const simd::SpanStats<T> stats = stats_of<T>(p);
        const double log_sum = stats.log_sum();
        const double lse = static_cast<double>(stats.max) + log_sum;
        const double scale = scales.scale_rows ? scales.scale_rows[i] : scales.scale;
        const double z_scale = scales.scale_rows ? scales.scale_rows[i] : scales.z_scale;
        const double p_extra = options.z_loss != 0.0 && z_scale != 0.0 ? 2.0 * options.z_loss * lse * z_scale : 0.0;
        const std::int64_t y = shard.labels ? shard.labels[i] : -1;
        const T x_y = static_cast<T>(p.target_logit);
        const double target = y >= begin && y < begin + n ? detail::target_grad(spec, stats, x_y, y, scale, p_extra) : 0.0;
        const T* x = shard.logits + i * n;
        T* out = g;
        if (cap != T(0)) {  // the capped logits staged (read before g, which may be x, is written)
            T* capped = scratch<T>(0, n);
            kernels.softcap(x, n, cap, capped);
            x = capped;
            out = scratch<T>(1, n);
        }
        const T* t = shard.probs ? shard.probs + i * n : nullptr;
        const detail::RowGradient<T> gradient{&spec, stats, log_sum, y, target, scale, p_extra};
        detail::logits_segment_grad(kernels, gradient, x, t, begin, n, out, false);
        if (cap != T(0)) kernels.softcap_grad(out, x, n, cap, g);
        if (scales.zero_weight_mean && y >= 0) {
            const bool all_nan = options.label_smoothing != 0.0 || (options.weight && options.weight[y] == T(0));
            for (std::int64_t c = 0; c < n; ++c) g[c] = over_zero(g[c], all_nan || begin + c == y);
        }
    };
    detail::sweep_tiles<int>(shard.rows, n, false, [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t i = lo; i < hi; ++i) row(i);
        return 0;
    });
}

#define XENTCPP_INSTANTIATE_PARTIALS(T)                                                                      \
    template void row_partials<T>(const ClassShard<T>&, const PartialOptions<T>&, RowPartial*);              \
    template void grad_from_partials<T>(const ClassShard<T>&, const RowPartial*, const PartialOptions<T>&, \
                                        const PartialScales&, T*);

XENTCPP_INSTANTIATE_PARTIALS(float)
XENTCPP_INSTANTIATE_PARTIALS(double)

}  // namespace xentcpp
