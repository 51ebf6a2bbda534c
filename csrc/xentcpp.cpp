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
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "blocks.hpp"
#include "labels.hpp"
#include "row_kernels.hpp"
#include "simd/kernels.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace xentcpp {
namespace {

using detail::Counted;
using detail::RowSpec;

using detail::kBlockElements;
using detail::require;
using detail::sweep_blocks;
constexpr std::int64_t kChunk = kBlockElements;
constexpr std::int64_t kKeptChunks = 4;  // rows of up to 131 072 classes keep their exps (two rows: 1 MiB of floats)
// Gradients from this size on are streamed. 16 MiB, not the last-level cache's 32: written one row
// late (LogitsRows), 4 096 x 1 000 doubles (31 MiB) took 1.28-1.49 ms streamed against 1.60-1.67.
constexpr std::int64_t kStreamBytes = std::int64_t{16} << 20;

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

// Checks every label and counts the rows that count (labels.hpp); probability targets count every row.
template <typename S>
Counted count_labels(const Problem<S>& problem, const Options<compute_t<S>>& options) {
    if (problem.labels == nullptr) {
        return {static_cast<double>(problem.rows), static_cast<double>(problem.rows)};
    }
    return detail::count_labels(problem.labels, problem.rows, problem.classes, options.ignore_index, options.weight);
}

template <typename T>
RowSpec<T> make_spec(std::int64_t classes, const Options<T>& options) {
    RowSpec<T> spec;
    spec.classes = classes;
    spec.weight = options.weight;
    spec.smoothing = options.label_smoothing;
    spec.weight_total = static_cast<double>(classes);
    if (options.weight) {
        spec.weight_total = 0.0;
        for (std::int64_t c = 0; c < classes; ++c) spec.weight_total += static_cast<double>(options.weight[c]);
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

std::size_t sz(std::int64_t i) { return static_cast<std::size_t>(i); }

std::int64_t thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

using simd::LossSums;

// The caller's memory as the compute type, when it is already that type (else never called).
template <typename T, typename S>
const T* direct(const S* p) {
    if constexpr (std::is_same_v<S, T>) return p;
    else return nullptr;
}
template <typename T, typename S>
T* direct(S* p) {
    if constexpr (std::is_same_v<S, T>) return p;
    else return nullptr;
}

// Rows that the kernels cannot read as they are (half precision, or soft-capped logits) are staged:
// each chunk is converted (and capped) into a per-thread buffer of the compute type, and its gradient
// computed there, carried through the cap and rounded back. Chunks are at most kChunk elements.
template <typename S>
class Stage {
public:
    using T = compute_t<S>;

    Stage(const simd::Kernels<T>& kernels, double softcap)
        : kernels_(kernels), cap_(static_cast<T>(softcap)), active_(!std::is_same_v<S, T> || softcap != 0.0),
          buffers_(active_ ? static_cast<std::size_t>(max_threads() * 3 * kChunk) : 0) {}

    bool active() const { return active_; }

    // This thread's buffers: logits, probabilities, gradient (kChunk elements each).
    T* buffer(int which) { return buffers_.data() + (thread_index() * 3 + which) * kChunk; }

    // x[0, n) as the kernels read it: widened to T, then capped.
    void logits(const S* x, std::int64_t n, T* out) const {
        if (cap_ != T(0)) {
            if constexpr (std::is_same_v<S, T>) return kernels_.softcap(x, n, cap_, out);
        }
        widen(x, n, out);
        if (cap_ != T(0)) kernels_.softcap(out, n, cap_, out);
    }

    // Probability targets t[0, n): the caller's memory when it is T, else widened into `buffer`.
    const T* probs(const S* t, std::int64_t n, T* buffer) const {
        if (t == nullptr) return nullptr;
        if constexpr (std::is_same_v<S, T>) return t;
        widen(t, n, buffer);
        return buffer;
    }

    // The gradient g[0, n) with respect to the staged logits `capped` becomes the gradient with
    // respect to the caller's logits, in out[0, n) (g is overwritten).
    void gradient(T* g, const T* capped, std::int64_t n, S* out) const {
        if constexpr (std::is_same_v<S, T>) {
            if (cap_ != T(0)) kernels_.softcap_grad(g, capped, n, cap_, out);
            else std::copy(g, g + n, out);
        } else {
            if (cap_ != T(0)) kernels_.softcap_grad(g, capped, n, cap_, g);
            narrow(g, n, out);
        }
    }

private:
    void widen(const S* in, std::int64_t n, T* out) const {
        if constexpr (std::is_same_v<S, float16>) kernels_.widen_f16(&in->bits, n, out);
        else if constexpr (std::is_same_v<S, bfloat16>) kernels_.widen_bf16(&in->bits, n, out);
        else std::copy(in, in + n, out);
    }

    void narrow(const T* in, std::int64_t n, S* out) const {
        if constexpr (std::is_same_v<S, float16>) kernels_.narrow_f16(in, n, &out->bits);
        else if constexpr (std::is_same_v<S, bfloat16>) kernels_.narrow_bf16(in, n, &out->bits);
        else std::copy(in, in + n, out);
    }

    const simd::Kernels<T>& kernels_;
    const T cap_;
    const bool active_;
    std::vector<T> buffers_;
};

// Logits rows, read in chunks of kChunk classes whose statistics merge in chunk order. When the rows
// are too few to share out, each row's chunks are shared out instead (the same arithmetic). With a
// gradient to write and rows of at most kKeptChunks chunks, the exponentials stay in a scratch (per
// thread, or per chunk of a split row; not in the gradient, whose lines would be read for
// ownership) and the gradient reuses them. A streamed gradient is written one row late, while the
// thread's next row's statistics are computed (Kernels::stats' `pending`; two scratches per
// thread), and the last one by finish().
template <typename S>
class LogitsRows {
public:
    using T = compute_t<S>;

    LogitsRows(const Problem<S>& problem, const Options<T>& options, const RowSpec<T>& spec, S* grad)
        : kernels_(simd::kernels<T>()),
          spec_(spec),
          stage_(kernels_, options.softcap),
          n_(problem.classes),
          chunks_((n_ + kChunk - 1) / kChunk),
          // One chunk's kept exps (a multiple of 16 elements: whole cache lines), then its block maxima.
          kept_(chunks_ == 1 ? (n_ + 15) / 16 * 16 : kChunk),
          stride_(kept_ + kChunk / simd::kBlock),
          z_loss_(options.z_loss),
          split_(options.from_logits && chunks_ > 1 && problem.rows < 2 * max_threads()),
          keep_exps_(grad != nullptr && chunks_ <= kKeptChunks),
          // A gradient larger than the caches is written around them (no read for ownership).
          stream_(grad != nullptr && grad != problem.input && !stage_.active() &&
                  problem.rows * n_ * static_cast<std::int64_t>(sizeof(T)) >= kStreamBytes),
          deferred_(keep_exps_ && stream_ && !split_ ? static_cast<std::size_t>(max_threads()) : 0),
          parts_(split_ ? static_cast<std::size_t>(chunks_) : 0),
          scratch_(keep_exps_ ? static_cast<std::size_t>((split_ ? 1 : max_threads() * (deferred_.empty() ? 1 : 2)) *
                                                         chunks_ * stride_)
                              : 0) {}

    bool split() const { return split_; }

    // Called by each thread after its last row (not split): writes its deferred gradient, and makes
    // its streamed stores visible.
    void finish() {
        if (!deferred_.empty()) {
            Deferred& mine = deferred_[sz(thread_index())];
            for (std::int64_t k = 0; mine.pending && k < chunks_; ++k) kernels_.scaled_grad(mine.grads[sz(k)]);
            mine.pending = false;
            if (mine.carry.at) std::copy(mine.carry.values, mine.carry.values + mine.carry.count, mine.carry.at);
            mine.carry.at = nullptr;
        }
        if (stream_ && !split_) kernels_.fence();
    }

    // The loss terms of row x (class index y >= 0, or probability target t when y < 0) and, when g
    // is not null, its gradient: `scale` times that of the cross-entropy term plus `z_scale` times
    // that of the z-loss term.
    LossSums operator()(const S* x, const S* t, std::int64_t y, S* g, double scale, double z_scale) {
        detail::Stored<T> stored;
        T x_y = T(0);
        const simd::SpanStats<T> stats = row_stats(x, t, y, g != nullptr, stored, x_y);
        const double log_sum = std::log(stats.sum);
        LossSums loss;
        loss.loss = detail::logits_row_loss(spec_, stats, log_sum, x_y, y);
        const double lse = static_cast<double>(stats.max) + log_sum;
        if (z_loss_ != 0.0) loss.z_loss = std::isnan(loss.loss) ? detail::kNaN : z_loss_ * lse * lse;
        if (g == nullptr) return loss;

        const double p_extra = z_loss_ != 0.0 && z_scale != 0.0 ? 2.0 * z_loss_ * lse * z_scale : 0.0;
        Deferred* const later = deferred_.empty() ? nullptr : &deferred_[sz(thread_index())];
        const auto chunk_grad = [&](std::int64_t k) {
            const std::int64_t begin = k * kChunk, len = chunk_len(k);
            const detail::Stored<T> kept =
                stored.exps ? detail::Stored<T>{stored.exps + k * stride_, stored.maxima + k * stride_} : stored;
            if (!stage_.active()) {
                if (detail::logits_chunk_grad(kernels_, spec_, stats, log_sum, direct<T>(x) + begin,
                                              t ? direct<T>(t) + begin : nullptr, y, scale, p_extra, begin, len,
                                              direct<T>(g) + begin, stream_, kept, later ? &later->grads[sz(k)] : nullptr)) {
                    later->grads[sz(k)].carry = &later->carry;
                    later->pending = true;  // every chunk or none (a row of -inf writes NaN at once)
                }
                return;
            }
            // Staged: a row of one chunk is still in this thread's buffers from row_stats.
            T* xs = stage_.buffer(0);
            if (chunks_ > 1) stage_.logits(x + begin, len, xs);
            const T* ts = stage_.probs(t ? t + begin : nullptr, len, stage_.buffer(1));
            // scaled_grad may overwrite the exps it reads (the chunk's own scratch, whoever runs it).
            T* gs = stored.exps ? scratch(0) + k * stride_ : stage_.buffer(2);
            detail::logits_chunk_grad(kernels_, spec_, stats, log_sum, xs, ts, y, scale, p_extra, begin, len, gs,
                                      false, kept);
            // gs holds the one-hot term already: before the cap's chain rule and the rounding.
            stage_.gradient(gs, xs, len, g + begin);
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
            if (later && later->pending) later->slot ^= 1;
        }
        return loss;
    }

private:
    std::int64_t chunk_len(std::int64_t k) const { return std::min(kChunk, n_ - k * kChunk); }

    // Where a row's kept exponentials go: this thread's scratch `slot` (0, or 1 when gradients are
    // written one row late), or for a split row, the one scratch its chunks share.
    T* scratch(std::int64_t slot) {
        if (split_) return scratch_.data();
        return scratch_.data() + (thread_index() * (deferred_.empty() ? 1 : 2) + slot) * chunks_ * stride_;
    }

    // Statistics of chunk k; x_y receives the (staged) logit at y when y falls in the chunk.
    simd::SpanStats<T> chunk(const S* x, const S* t, std::int64_t y, std::int64_t k, T& x_y, T* exp_out = nullptr,
                             T* maxima = nullptr, const simd::ScaledGrad<T>* pending = nullptr) {
        const std::int64_t begin = k * kChunk, len = chunk_len(k);
        const T* xs = direct<T>(x) + begin;
        const T* ts = t ? direct<T>(t) + begin : nullptr;
        if (stage_.active()) {
            T* buffer = stage_.buffer(0);
            stage_.logits(x + begin, len, buffer);
            xs = buffer;
            ts = stage_.probs(t ? t + begin : nullptr, len, stage_.buffer(1));
        }
        if (y >= begin && y < begin + len) x_y = xs[y - begin];
        return detail::chunk_stats(kernels_, spec_, xs, ts, begin, len, exp_out, maxima, pending);
    }

    // The statistics of the row, merged in chunk order; with kept exponentials, `stored` points at
    // chunk 0's (chunk k's are k * stride_ further on).
    simd::SpanStats<T> row_stats(const S* x, const S* t, std::int64_t y, bool with_grad, detail::Stored<T>& stored,
                                 T& x_y) {
        T* exps = nullptr;
        Deferred* mine = deferred_.empty() ? nullptr : &deferred_[sz(thread_index())];
        if (keep_exps_ && with_grad) {
            exps = scratch(mine ? mine->slot : 0);
            stored = {exps, exps + kept_};
        }
        const bool pending = mine && mine->pending;  // written by this row's chunks, from the other scratch
        if (mine) mine->pending = false;
        const auto part = [&](std::int64_t k) {
            T* kept = exps ? exps + k * stride_ : nullptr;
            return chunk(x, t, y, k, x_y, kept, kept ? kept + kept_ : nullptr, pending ? &mine->grads[sz(k)] : nullptr);
        };
        if (split_) {
#pragma omp parallel for schedule(static)
            for (std::int64_t k = 0; k < chunks_; ++k) parts_[sz(k)] = part(k);
            simd::SpanStats<T> stats = parts_[0];
            for (std::int64_t k = 1; k < chunks_; ++k) stats = simd::merge(stats, parts_[sz(k)]);
            return stats;
        }
        simd::SpanStats<T> stats = part(0);
        for (std::int64_t k = 1; k < chunks_; ++k) stats = simd::merge(stats, part(k));
        return stats;
    }

    const simd::Kernels<T>& kernels_;
    const RowSpec<T>& spec_;
    Stage<S> stage_;
    const std::int64_t n_;
    const std::int64_t chunks_;
    const std::int64_t kept_;
    const std::int64_t stride_;
    const double z_loss_;
    const bool split_;
    const bool keep_exps_;
    const bool stream_;
    // Per thread: its last row's gradient, not yet written, which scratch the next row uses, and the
    // partial vector that ends the rows written so far.
    struct alignas(64) Deferred {
        std::array<simd::ScaledGrad<T>, kKeptChunks> grads;  // one per chunk
        bool pending = false;
        std::int64_t slot = 0;
        simd::Carry<T> carry;
    };
    std::vector<Deferred> deferred_;
    std::vector<simd::SpanStats<T>> parts_;  // chunk statistics of a split row
    std::vector<T> scratch_;                 // kept exps and block maxima: per thread (two rows), or the split row's
};

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

// Few classes and class indices: lanes own rows (simd::Kernels::small_rows), block by block. Staged
// rows are converted a block at a time (a block holds at most kBlockElements = kChunk elements).
template <typename S>
LossSums sweep_small_rows(const Problem<S>& problem, const Options<compute_t<S>>& options,
                          const RowSpec<compute_t<S>>& spec, compute_t<S>* row_losses, compute_t<S>* row_z_losses,
                          S* grad, const Scales<compute_t<S>>& scales) {
    using T = compute_t<S>;
    const std::int64_t n = problem.classes;
    const simd::Kernels<T>& kernels = simd::kernels<T>();
    Stage<S> stage(kernels, options.softcap);
    simd::SmallRows<T> rows;
    rows.classes = n;
    rows.ignore_index = options.ignore_index;
    rows.weight = options.weight;
    rows.smoothing = options.label_smoothing;
    rows.weight_total = spec.weight_total;
    rows.scale = scales.loss;
    rows.z_loss = options.z_loss;
    rows.z_scale = scales.z_loss;
    return sweep_blocks<LossSums>(problem.rows, n, false, [&](std::int64_t begin, std::int64_t end) {
        simd::SmallRows<T> block = rows;
        block.rows = end - begin;
        block.labels = problem.labels + begin;
        block.scale_rows = scales.rows ? scales.rows + begin : nullptr;
        block.row_losses = row_losses ? row_losses + begin : nullptr;
        block.row_z_losses = row_z_losses ? row_z_losses + begin : nullptr;
        const S* x = problem.input + begin * n;
        S* g = grad ? grad + begin * n : nullptr;
        if (!stage.active()) {
            block.x = direct<T>(x);
            block.grad = direct<T>(g);
            return kernels.small_rows(block);
        }
        const std::int64_t count = (end - begin) * n;
        T* xs = stage.buffer(0);
        stage.logits(x, count, xs);
        block.x = xs;
        block.grad = g ? stage.buffer(2) : nullptr;
        const LossSums sums = kernels.small_rows(block);
        if (g) stage.gradient(block.grad, xs, count, g);
        return sums;
    });
}

}  // namespace

template <typename S>
Totals compute(const Problem<S>& problem, const Options<compute_t<S>>& options, Out<compute_t<S>> row_losses,
               const GradRequest<S>* request, Out<compute_t<S>> row_z_losses) {
    using T = compute_t<S>;
    check_call(problem, options);
    require(request == nullptr || request->grad != nullptr, "grad is null");
    const Counted counted = count_labels(problem, options);
    const RowSpec<T> spec = make_spec(problem.classes, options);
    const std::int64_t n = problem.classes;

    S* const grad = request ? request->grad : nullptr;
    Scales<T> scales;
    if (request && options.reduction == Reduction::none) scales.rows = request->grad_output_rows;
    scales.loss = scales.z_loss = request ? request->grad_output : 0.0;
    if (request && !std::isnan(request->z_loss_grad_output)) scales.z_loss = request->z_loss_grad_output;
    // Mean over nothing (all rows ignored, or zero total weight): the loss is NaN, the gradient zero.
    if (options.reduction == Reduction::mean) {
        scales.loss = counted.weight != 0.0 ? scales.loss / counted.weight : 0.0;
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
            if (problem.labels) {
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
        total = sweep_blocks<LossSums>(problem.rows, n, logits_row.split(), [&](std::int64_t begin, std::int64_t end) {
            LossSums sum;
            for (std::int64_t i = begin; i < end; ++i) sum = sum + row(i);
            return sum;
        }, [&] { logits_row.finish(); });
    }
    Totals totals;
    totals.z_loss = options.reduction == Reduction::mean ? total.z_loss / counted.rows : total.z_loss;
    const double loss = options.reduction == Reduction::mean ? total.loss / counted.weight : total.loss;
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
