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
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "fork_guard.hpp"
#include "row_kernels.hpp"
#include "simd/kernels.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace xentcpp {
namespace {

using detail::RowSpec;

constexpr std::int64_t kBlockElements = std::int64_t{1} << 15;     // ~128 KiB of float logits: L2-resident
constexpr std::int64_t kParallelElements = std::int64_t{1} << 16;  // below this, fork/join costs more
constexpr std::int64_t kChunk = kBlockElements;
constexpr std::int64_t kScratch = kChunk + kChunk / simd::kBlock;  // one chunk's exps and block maxima
constexpr std::int64_t kStreamBytes = std::int64_t{32} << 20;  // about the size of the last-level cache  // a long row is cut in chunks of this many classes

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
    // A weight is a class's importance: NaN or a negative one is refused (PyTorch takes them silently).
    for (std::int64_t c = 0; options.weight != nullptr && c < problem.classes; ++c) {
        require(options.weight[c] >= T(0), "weight must be >= 0 for every class (no NaN, no negative weight)");
    }
}

// Checks every label and returns the mean's denominator: the summed weight of the rows that count.
// In fixed blocks of rows (in parallel, summed in block order); a bad label is reported for the
// first bad row, whatever the threads, before any output is written.
template <typename T>
double label_denominator(const Problem<T>& problem, const Options<T>& options) {
    if (problem.labels == nullptr) return static_cast<double>(problem.rows);
    constexpr std::int64_t kLabelBlock = std::int64_t{1} << 16;
    const std::int64_t blocks = (problem.rows + kLabelBlock - 1) / kLabelBlock;
    std::vector<double> sums(static_cast<std::size_t>(blocks), 0.0);
    std::vector<std::int64_t> first_bad(static_cast<std::size_t>(blocks), -1);
#pragma omp parallel for schedule(static) if (blocks > 1)
    for (std::int64_t b = 0; b < blocks; ++b) {
        double sum = 0.0;
        const std::int64_t end = std::min(problem.rows, (b + 1) * kLabelBlock);
        for (std::int64_t i = b * kLabelBlock; i < end; ++i) {
            const std::int64_t y = problem.labels[i];
            if (y == options.ignore_index) continue;
            if (y < 0 || y >= problem.classes) {
                first_bad[static_cast<std::size_t>(b)] = i;
                break;
            }
            sum += options.weight ? static_cast<double>(options.weight[y]) : 1.0;
        }
        sums[static_cast<std::size_t>(b)] = sum;
    }
    double total = 0.0;
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t i = first_bad[static_cast<std::size_t>(b)];
        if (i >= 0) {
            throw std::out_of_range("target[" + std::to_string(i) + "] = " + std::to_string(problem.labels[i]) +
                                    " is out of range: expected 0 <= label < " + std::to_string(problem.classes) +
                                    " or ignore_index (" + std::to_string(options.ignore_index) + ")");
        }
        total += sums[static_cast<std::size_t>(b)];
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

int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

std::int64_t thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

// Sum of block(begin, end) over blocks of rows, in an order fixed by the shape (see 3. above). Blocks
// go to threads unless `rows_split` says each row is itself split across them (same sum either way).
template <typename BlockFn>
double sweep_blocks(std::int64_t rows, std::int64_t classes, bool rows_split, const BlockFn& block) {
    const std::int64_t rows_per_block = std::max<std::int64_t>(1, kBlockElements / classes);
    const std::int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
    std::vector<double> block_sums(static_cast<std::size_t>(blocks), 0.0);
    const bool parallel = !rows_split && blocks > 1 && rows * classes >= kParallelElements;
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t b = 0; b < blocks; ++b) {
        block_sums[static_cast<std::size_t>(b)] = block(b * rows_per_block, std::min(rows, (b + 1) * rows_per_block));
    }
    double total = 0.0;
    for (const double s : block_sums) total += s;
    return total;
}

// Logits rows, read in chunks of kChunk classes whose statistics merge in chunk order. When the rows
// are too few to share out, each row's chunks are shared out instead (the same arithmetic). With a
// gradient to write and a row of one chunk, the exponentials stay in a per-thread, L2-sized scratch
// (not in the gradient, whose lines would be read for ownership) and the gradient reuses them.
template <typename T>
class LogitsRows {
public:
    // from_logits false: no row is read here, nothing is split or kept (probability inputs).
    LogitsRows(const Problem<T>& problem, const Options<T>& options, const RowSpec<T>& spec, T* grad)
        : kernels_(simd::kernels<T>()),
          spec_(spec),
          n_(problem.classes),
          chunks_((n_ + kChunk - 1) / kChunk),
          split_(options.from_logits && chunks_ > 1 && problem.rows < 2 * max_threads()),
          keep_exps_(options.from_logits && grad != nullptr && chunks_ == 1),
          // A gradient larger than the caches is written around them (no read for ownership).
          stream_(options.from_logits && grad != nullptr && grad != problem.input &&
                  problem.rows * n_ * static_cast<std::int64_t>(sizeof(T)) >= kStreamBytes),
          parts_(split_ ? static_cast<std::size_t>(chunks_) : 0),
          scratch_(keep_exps_ ? static_cast<std::size_t>(max_threads() * kScratch) : 0) {}

    bool split() const { return split_; }

    // Called once per block of rows (not split): makes the block's streamed stores visible.
    void end_block() const {
        if (stream_ && !split_) kernels_.fence();
    }

    // The loss of row x (class index y >= 0, or probability target t when y < 0) and, when g is not
    // null, its gradient times scale.
    double operator()(const T* x, const T* t, std::int64_t y, T* g, double scale) {
        detail::Stored<T> stored;
        const simd::SpanStats<T> stats = row_stats(x, t, g != nullptr, stored);
        const double log_sum = std::log(stats.sum);
        const double loss = detail::logits_row_loss(spec_, stats, log_sum, x, y);
        if (g) {
            const auto chunk_grad = [&](std::int64_t k) {
                detail::logits_chunk_grad(kernels_, spec_, stats, log_sum, x, t, y, scale, k * kChunk, chunk_len(k), g,
                                          stream_, stored);
            };
            // Note: a plain branch, not `omp parallel if (split)`: a serial region still costs about a
            // microsecond per row.
            if (split_) {
#pragma omp parallel for schedule(static)
                for (std::int64_t k = 0; k < chunks_; ++k) {
                    chunk_grad(k);
                    if (stream_) kernels_.fence();
                }
            } else {
                for (std::int64_t k = 0; k < chunks_; ++k) chunk_grad(k);
            }
            if (y >= 0) detail::onehot_correction(spec_, y, scale, g);
        }
        return loss;
    }

private:
    std::int64_t chunk_len(std::int64_t k) const { return std::min(kChunk, n_ - k * kChunk); }

    simd::SpanStats<T> row_stats(const T* x, const T* t, bool with_grad, detail::Stored<T>& stored) {
        if (split_) {
#pragma omp parallel for schedule(static)
            for (std::int64_t k = 0; k < chunks_; ++k) {
                parts_[static_cast<std::size_t>(k)] = detail::chunk_stats(kernels_, spec_, x, t, k * kChunk, chunk_len(k));
            }
            simd::SpanStats<T> stats = parts_[0];
            for (std::int64_t k = 1; k < chunks_; ++k) stats = simd::merge(stats, parts_[static_cast<std::size_t>(k)]);
            return stats;
        }
        if (keep_exps_ && with_grad) {
            T* exps = scratch_.data() + thread_index() * kScratch;
            stored = {exps, exps + kChunk};
            return detail::chunk_stats(kernels_, spec_, x, t, 0, n_, exps, exps + kChunk);
        }
        simd::SpanStats<T> stats = detail::chunk_stats(kernels_, spec_, x, t, 0, chunk_len(0));
        for (std::int64_t k = 1; k < chunks_; ++k) {
            stats = simd::merge(stats, detail::chunk_stats(kernels_, spec_, x, t, k * kChunk, chunk_len(k)));
        }
        return stats;
    }

    const simd::Kernels<T>& kernels_;
    const RowSpec<T>& spec_;
    const std::int64_t n_;
    const std::int64_t chunks_;
    const bool split_;
    const bool keep_exps_;
    const bool stream_;
    std::vector<simd::SpanStats<T>> parts_;  // chunk statistics of a split row
    std::vector<T> scratch_;                 // per thread: one chunk's exponentials and block maxima
};

// Few classes and class indices: lanes own rows (simd::Kernels::small_rows), block by block.
template <typename T>
double sweep_small_rows(const Problem<T>& problem, const Options<T>& options, const RowSpec<T>& spec,
                        T* row_losses, T* grad, const T* grad_output_rows, double uniform_scale) {
    const std::int64_t n = problem.classes;
    simd::SmallRows<T> rows;
    rows.classes = n;
    rows.ignore_index = options.ignore_index;
    rows.weight = options.weight;
    rows.smoothing = options.label_smoothing;
    rows.weight_total = spec.weight_total;
    rows.scale = uniform_scale;
    const simd::Kernels<T>& kernels = simd::kernels<T>();
    return sweep_blocks(problem.rows, n, false, [&](std::int64_t begin, std::int64_t end) {
        simd::SmallRows<T> block = rows;
        block.x = problem.input + begin * n;
        block.rows = end - begin;
        block.labels = problem.labels + begin;
        block.scale_rows = grad_output_rows ? grad_output_rows + begin : nullptr;
        block.row_losses = row_losses ? row_losses + begin : nullptr;
        block.grad = grad ? grad + begin * n : nullptr;
        return kernels.small_rows(block);
    });
}

}  // namespace

template <typename T>
double compute(const Problem<T>& problem, const Options<T>& options, Out<T> row_losses, const GradRequest<T>* request) {
    check_call(problem, options);
    require(request == nullptr || request->grad != nullptr, "grad is null");
    detail::install_fork_guard();  // before the first parallel region: a forked child must not hang
    const double denominator = label_denominator(problem, options);
    const RowSpec<T> spec = make_spec(problem, options);
    const std::int64_t n = problem.classes;

    T* const grad = request ? request->grad : nullptr;
    const T* const grad_output_rows =
        (request && options.reduction == Reduction::none) ? request->grad_output_rows : nullptr;
    double uniform_scale = request ? request->grad_output : 0.0;
    // Mean over nothing (all rows ignored, or zero total weight): the loss is NaN, the gradient zero.
    if (options.reduction == Reduction::mean) uniform_scale = denominator != 0.0 ? uniform_scale / denominator : 0.0;

    double total = 0.0;
    if (options.from_logits && problem.labels && n <= simd::kSmallClasses) {
        total = sweep_small_rows(problem, options, spec, row_losses, grad, grad_output_rows, uniform_scale);
    } else {
        LogitsRows<T> logits_row(problem, options, spec, grad);
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
                    loss = logits_row(x, nullptr, y, g, scale);
                } else {
                    loss = detail::probs_row_label(x, y, spec, g, scale);
                }
            } else {
                const T* t = problem.probs + i * n;
                loss = options.from_logits ? logits_row(x, t, -1, g, scale)
                                           : detail::probs_row_probs(x, t, spec, g, scale);
            }
            if (row_losses) row_losses[i] = static_cast<T>(loss);
            return loss;
        };
        total = sweep_blocks(problem.rows, n, logits_row.split(), [&](std::int64_t begin, std::int64_t end) {
            double sum = 0.0;
            for (std::int64_t i = begin; i < end; ++i) sum += row(i);
            logits_row.end_block();
            return sum;
        });
    }
    return options.reduction == Reduction::mean ? total / denominator : total;
}

template <typename T>
double loss(const Problem<T>& problem, const Options<T>& options, Out<T> row_losses) {
    require(options.reduction != Reduction::none || row_losses != nullptr, "reduction none needs row_losses");
    return compute<T>(problem, options, row_losses, nullptr);
}

template <typename T>
void grad(const Problem<T>& problem, const Options<T>& options, const GradRequest<T>& request) {
    compute<T>(problem, options, nullptr, &request);
}

template <typename T>
double value_and_grad(const Problem<T>& problem, const Options<T>& options, Out<T> row_losses, Out<T> grad) {
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
