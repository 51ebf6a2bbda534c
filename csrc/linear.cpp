// The chunk loop of linear.hpp: GEMM tiles on OpenMP threads, the fused kernel in between.
//
// 1. Check the call, every label (count_labels: the mean's denominators for the whole batch) and the
//    options (a call of `compute` on no rows), before any output is written.
// 2. For each chunk of rows (linear_chunk_rows):
//    a. logits tiles, chunk × classes_per_tile() classes each: L = input rows @ weight.T (+ bias);
//    b. `compute` on L with reduction sum (none stays none) and each term's upstream gradient divided by
//       its denominator over the whole batch: the losses, and G written over L;
//    c. backward tiles: d_input rows (a block of kHiddenTile columns, summed over every class) = G @
//       weight, and per class tile d_weight (+)= G.T @ input rows and d_bias += the column sums of G.
// 3. Reduce the chunks' totals in chunk order.
//
// Note: every GEMM tile is one BLAS call on one thread (blas::SingleThreaded), shared out by OpenMP with
// a dynamic schedule. Its bounds depend on the shape alone, so each element of every output comes from
// the same calls, in the same order, whatever the thread count: bitwise reproducible. Measured on 2
// threads against OpenBLAS's own threading of the same chunked GEMMs (4 096 x 1 024 x 32 000 in chunks
// of 512 rows, process CPU time with other work on the machine): 1.02x the CPU time of the three
// unchunked GEMMs, against 1.18x when OpenBLAS's pool ran each GEMM (its threads meet at every block
// of the summed dimension, and spin between calls while OpenMP's run the loss kernel).
//
// Note: not taken, measured: one pass over the weight per chunk instead of two, the next chunk's
// logits tile written over this chunk's G tile right after its d_weight and d_input GEMMs (d_input
// summed in 4 fixed partial sums). GEMMs alone, 1024 x 1024 x 128256 in chunks of 128, 2 threads:
// 0.99-1.05x the time of this loop (the weight's second read is not what 128-row chunks cost).
#include "xentcpp/linear.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "blas.hpp"
#include "fork_guard.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace xentcpp {
namespace {

// The d_input columns of a backward tile.
// Note: 512 rather than 256 or 1024: each such tile packs the whole chunk's logit gradient once.
// Single thread, 512 x 1024 x 128256 in chunks of 128 rows, CPU time over four alternated rounds:
// 5.00 s mean (4.84-5.10) at 512, 5.19 (5.10-5.26) at 256, 5.12 (4.96-5.30) at 1024.
constexpr std::int64_t kHiddenTile = 512;

// The classes of a logits / d_weight tile: a multiple of kStripeClasses, at most 2 048 (1 024-4 096
// made no difference beyond the noise at 128 256 classes), and small enough that a few thousand
// classes still make 8 tiles to share out. Depends on the shape alone.
std::int64_t classes_per_tile(std::int64_t classes) {
    const std::int64_t eighth = (classes + 7) / 8;
    const std::int64_t stripes = (eighth + kStripeClasses - 1) / kStripeClasses;
    return std::clamp<std::int64_t>(stripes, 1, 4) * kStripeClasses;
}

void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("xentcpp: ") + what);
}

std::size_t sz(std::int64_t i) { return static_cast<std::size_t>(i); }

int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// fn(t) for t in [0, count), shared out dynamically over the calling thread's OpenMP threads. fn must
// not throw (every size was checked before).
template <typename Fn>
void for_tiles(std::int64_t count, const Fn& fn) {
    if (count <= 1 || max_threads() == 1) {
        for (std::int64_t t = 0; t < count; ++t) fn(t);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t t = 0; t < count; ++t) fn(t);
}

// An uninitialised, 64-byte aligned buffer (the logits are written before they are read).
// Note: not advised as huge pages. A workspace of 62.5 MiB then occupies 64 MiB (its last 2 MiB page
// whole), which with the results' own rounding took the call 2.4 MiB over its 64 MiB budget; the
// advice made no difference to the time beyond this machine's noise (single thread, 512 x 1024 x
// 128256, six runs each: backward phase 3.19-3.68 s advised, 3.30-3.64 s not).
template <typename T>
class Buffer {
public:
    explicit Buffer(std::int64_t n) {
        const std::size_t bytes = (std::max<std::size_t>(sz(n) * sizeof(T), 1) + 63) / 64 * 64;
        data_.reset(static_cast<T*>(std::aligned_alloc(64, bytes)));
        if (!data_) throw std::bad_alloc();
    }
    T* get() const { return data_.get(); }

private:
    struct Free {
        void operator()(T* p) const { std::free(p); }
    };
    std::unique_ptr<T, Free> data_;
};

template <typename T>
void check_call(const LinearProblem<T>& p, const LinearSettings& s) {
    require(p.rows >= 0, "rows must be >= 0");
    require(p.hidden >= 1, "hidden must be >= 1");
    require(p.classes >= 1, "classes must be >= 1");
    require(blas::fits(p.hidden) && blas::fits(p.classes),
            "hidden and classes must fit the BLAS's 32-bit integers (at most 2 147 483 647)");
    require(p.weight != nullptr, "weight is null");
    require(p.rows == 0 || (p.input != nullptr && p.labels != nullptr), "input or labels is null");
    require(s.chunk_rows >= 0, "chunk_rows must be >= 0 (0: from the workspace budget)");
    require(s.workspace_bytes >= 1, "workspace_bytes must be >= 1");
    require(s.filter_eps >= 0.0 && std::isfinite(s.filter_eps), "filter_eps must be finite and >= 0");
}

// What a chunk's backward tiles need.
template <typename T>
struct Backward {
    const LinearProblem<T>& p;
    const LinearGrads<T>& g;
    const T* logit_grad;           // chunk rows × classes
    const T* rows_in;              // the chunk's input rows
    T* d_input;                    // the chunk's d_input rows, or nullptr
    std::int64_t m;                // rows in the chunk
    bool first;                    // the first chunk: d_weight is written, not added to
    const std::vector<char>* kept; // filter stripes kept (all when empty)
    double* bias_sums;             // classes doubles, or nullptr

    bool keep(std::int64_t stripe) const { return kept->empty() || (*kept)[sz(stripe)] != 0; }

    // [c0, c1) cut into runs of stripes that are all kept or all skipped: fn(begin, end, kept),
    // in class order.
    template <typename Fn>
    void runs(std::int64_t c0, std::int64_t c1, const Fn& fn) const {
        for (std::int64_t c = c0; c < c1;) {
            const bool k = keep(c / kStripeClasses);
            std::int64_t end = c;
            while (end < c1 && keep(end / kStripeClasses) == k) {
                end = std::min(c1, (end / kStripeClasses + 1) * kStripeClasses);
            }
            fn(c, end, k);
            c = end;
        }
    }

    // d_input[:, h0:h1] = G @ weight[:, h0:h1], over the kept classes.
    void input_tile(std::int64_t h0, std::int64_t h1) const {
        const std::int64_t n = p.classes, h = p.hidden;
        bool written = false;
        runs(0, n, [&](std::int64_t c0, std::int64_t c1, bool kept_run) {
            if (!kept_run) return;
            blas::gemm(blas::Op::none, blas::Op::none, m, h1 - h0, c1 - c0, T(1), logit_grad + c0, n,
                       p.weight + c0 * h + h0, h, written ? T(1) : T(0), d_input + h0, h);
            written = true;
        });
        if (!written) {
            for (std::int64_t i = 0; i < m; ++i) std::fill(d_input + i * h + h0, d_input + i * h + h1, T(0));
        }
    }

    // d_weight[c0:c1] (+)= G[:, c0:c1].T @ input rows, and the column sums of G into bias_sums.
    void class_tile(std::int64_t c0, std::int64_t c1) const {
        const std::int64_t n = p.classes, h = p.hidden;
        if (g.weight) {
            runs(c0, c1, [&](std::int64_t b0, std::int64_t b1, bool kept_run) {
                if (kept_run) {
                    blas::gemm(blas::Op::transpose, blas::Op::none, b1 - b0, h, m, T(1), logit_grad + b0, n, rows_in,
                               h, first ? T(0) : T(1), g.weight + b0 * h, h);
                } else if (first) {
                    std::fill(g.weight + b0 * h, g.weight + b1 * h, T(0));
                }
            });
        }
        if (bias_sums) {
            for (std::int64_t i = 0; i < m; ++i) {
                const T* row = logit_grad + i * n;
                for (std::int64_t c = c0; c < c1; ++c) bias_sums[c] += static_cast<double>(row[c]);
            }
        }
    }
};

// Which stripes of the chunk's logit gradient hold an entry of at least `threshold`.
template <typename T>
std::vector<char> kept_stripes(const T* logit_grad, std::int64_t m, std::int64_t classes, double threshold) {
    const std::int64_t stripes = (classes + kStripeClasses - 1) / kStripeClasses;
    std::vector<char> kept(sz(stripes), 0);
    for_tiles(stripes, [&](std::int64_t b) {
        const std::int64_t c0 = b * kStripeClasses, c1 = std::min(classes, c0 + kStripeClasses);
        const T limit = static_cast<T>(threshold);
        bool keep = false;
        for (std::int64_t i = 0; i < m && !keep; ++i) {
            const T* row = logit_grad + i * classes;
            for (std::int64_t c = c0; c < c1; ++c) keep |= !(std::fabs(row[c]) < limit);  // NaN is kept
        }
        kept[sz(b)] = keep ? 1 : 0;
    });
    return kept;
}

}  // namespace

std::int64_t linear_chunk_rows(std::int64_t rows, std::int64_t classes, std::int64_t element_bytes,
                               const LinearSettings& settings) {
    require(rows >= 0 && classes >= 1 && element_bytes >= 1, "bad sizes");
    if (settings.chunk_rows > 0) return std::min(settings.chunk_rows, std::max<std::int64_t>(rows, 1));
    const std::int64_t most = std::max<std::int64_t>(1, settings.workspace_bytes / element_bytes / classes);
    if (rows <= most) return std::max<std::int64_t>(rows, 1);
    const std::int64_t chunks = (rows + most - 1) / most;
    return (rows + chunks - 1) / chunks;
}

template <typename T>
Totals linear_cross_entropy(const LinearProblem<T>& p, const Options<T>& options, const LinearSettings& settings,
                            Out<T> row_losses, const LinearGrads<T>* grads, Out<T> row_z_losses) {
    check_call(p, settings);
    require(options.from_logits, "linear_cross_entropy takes logits (from_logits = true)");
    const std::int64_t n = p.classes, h = p.hidden;
    const LabelCounts counted = count_labels(p.labels, p.rows, n, options.ignore_index, options.weight);
    Options<T> chunk_options = options;  // a mean divides by the whole batch's counts (each chunk's share)
    chunk_options.batch_counts = &counted;
    {  // the options, checked by the core on no rows
        const T x = T(0);
        const std::int64_t y = 0;
        Problem<T> none;
        none.input = &x;
        none.classes = n;
        none.labels = &y;
        compute<T>(none, chunk_options, nullptr, nullptr);
    }
    const std::int64_t chunk = linear_chunk_rows(p.rows, n, sizeof(T), settings);
    require(blas::fits(chunk), "chunk_rows must fit the BLAS's 32-bit integers");
    require(chunk <= std::numeric_limits<std::int64_t>::max() / n / static_cast<std::int64_t>(sizeof(T)),
            "chunk_rows * classes overflows");

    GradRequest<T> request;
    request.grad_output = grads ? grads->grad_output : 0.0;
    const bool backward = grads && (grads->input || grads->weight || grads->bias);
    // The logit gradient's scale: the upstream gradient, over the summed w[y] for a mean (none at all
    // over a zero sum, whose gradient is inf and NaN: nothing is filtered out).
    const double denominator = options.reduction == Reduction::mean ? counted.weight : 1.0;
    const double filter_scale = denominator != 0.0 ? std::fabs(request.grad_output / denominator)
                                                   : std::numeric_limits<double>::infinity();

    detail::install_fork_guard();
    const blas::SingleThreaded one_blas_thread;
    Buffer<T> logits(chunk * n);
    std::vector<double> bias_sums(grads && grads->bias ? sz(n) : 0, 0.0);
    if (grads && grads->weight && p.rows == 0) std::fill(grads->weight, grads->weight + n * h, T(0));

    const std::int64_t tile = classes_per_tile(n);
    const std::int64_t class_tiles = (n + tile - 1) / tile;
    const std::int64_t hidden_tiles = (h + kHiddenTile - 1) / kHiddenTile;
    double loss_sum = 0.0, z_sum = 0.0;
    for (std::int64_t r0 = 0; r0 < p.rows; r0 += chunk) {
        const std::int64_t m = std::min(chunk, p.rows - r0);
        const T* rows_in = p.input + r0 * h;
        T* const l = logits.get();
        for_tiles(class_tiles, [&](std::int64_t t) {
            const std::int64_t c0 = t * tile, c1 = std::min(n, c0 + tile);
            if (p.bias) {
                for (std::int64_t i = 0; i < m; ++i) std::copy(p.bias + c0, p.bias + c1, l + i * n + c0);
            }
            blas::gemm(blas::Op::none, blas::Op::transpose, m, c1 - c0, h, T(1), rows_in, h, p.weight + c0 * h, h,
                       p.bias ? T(1) : T(0), l + c0, n);
        });

        Problem<T> part;
        part.input = l;
        part.rows = m;
        part.classes = n;
        part.labels = p.labels + r0;
        GradRequest<T> chunk_request = request;
        chunk_request.grad = l;
        if (grads && grads->grad_output_rows && options.reduction == Reduction::none) {
            chunk_request.grad_output_rows = grads->grad_output_rows + r0;
        }
        const Totals sums = compute<T>(part, chunk_options, row_losses ? row_losses + r0 : nullptr,
                                       backward ? &chunk_request : nullptr, row_z_losses ? row_z_losses + r0 : nullptr);
        loss_sum += sums.loss;
        z_sum += sums.z_loss;
        if (!backward) continue;

        std::vector<char> kept;
        if (settings.filter_eps > 0.0) {
            double scale = filter_scale;
            if (chunk_request.grad_output_rows) {
                scale = 0.0;
                for (std::int64_t i = 0; i < m; ++i) {
                    scale = std::max(scale, std::fabs(static_cast<double>(chunk_request.grad_output_rows[i])));
                }
            }
            kept = kept_stripes(l, m, n, settings.filter_eps * scale);
        }
        const Backward<T> work{p,     *grads, l,     rows_in, grads->input ? grads->input + r0 * h : nullptr,
                               m,     r0 == 0, &kept, bias_sums.empty() ? nullptr : bias_sums.data()};
        const std::int64_t input_tasks = grads->input ? hidden_tiles : 0;
        const std::int64_t class_tasks = grads->weight || grads->bias ? class_tiles : 0;
        // d_input tiles first: they are the longest (every class summed), so the dynamic schedule ends evenly.
        for_tiles(input_tasks + class_tasks, [&](std::int64_t task) {
            if (task < input_tasks) {
                work.input_tile(task * kHiddenTile, std::min(h, (task + 1) * kHiddenTile));
            } else {
                const std::int64_t c0 = (task - input_tasks) * tile;
                work.class_tile(c0, std::min(n, c0 + tile));
            }
        });
    }
    if (grads && grads->bias) {
        for (std::int64_t c = 0; c < n; ++c) grads->bias[c] = static_cast<T>(bias_sums[sz(c)]);
    }

    Totals totals;  // the chunks' shares, added in chunk order (for a mean, each one over the batch's counts)
    totals.loss = loss_sum;
    totals.z_loss = z_sum;
    if (p.rows == 0 && options.reduction == Reduction::mean) {  // a mean over no rows, as compute's: 0 / 0
        totals.loss = totals.z_loss = std::numeric_limits<double>::quiet_NaN();
    }
    return totals;
}

template Totals linear_cross_entropy<float>(const LinearProblem<float>&, const Options<float>&, const LinearSettings&,
                                            float*, const LinearGrads<float>*, float*);
template Totals linear_cross_entropy<double>(const LinearProblem<double>&, const Options<double>&,
                                             const LinearSettings&, double*, const LinearGrads<double>*, double*);

}  // namespace xentcpp
