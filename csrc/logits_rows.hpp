// Logits rows of more than a few classes: each row's statistics, loss and gradient, on the kernels of
// simd/target/row_stats.cpp. The pieces, each fixed for a whole call:
//   RowSegments   a row is read in segments of kSegment classes, whose statistics merge in segment order;
//                 when the rows are too few to share out among the threads, each row's segments are
//                 shared out instead (the same arithmetic);
//   Stage         half-precision or soft-capped logits are converted segment by segment (stage.hpp);
//   KeptExps      with a gradient to write and rows of at most kKeptSegments segments, the exponentials
//                 stay in a scratch (not in the gradient, whose lines would be read for ownership)
//                 and the gradient reuses them;
//   LateWrites    a gradient larger than the caches is streamed, and written one row late, from inside
//                 the next row's statistics loop (StatsRequest::pending), so that its stores drain
//                 beside the arithmetic; the last row's by finish().
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "row_kernels.hpp"
#include "simd/kernels.hpp"
#include "stage.hpp"
#include "threads.hpp"
#include "xentcpp/xentcpp.hpp"

namespace xentcpp::detail {

inline constexpr std::int64_t kSegment = std::int64_t{1} << 15;  // classes per segment: ~128 KiB of floats
inline constexpr std::int64_t kKeptSegments = 4;  // rows of up to 131 072 classes keep their exps (two rows: 1 MiB)
// Gradients from this size on are streamed. 16 MiB, not the last-level cache's 32: written one row
// late, 4 096 x 1 000 doubles (31 MiB) took 1.28-1.49 ms streamed against 1.60-1.67.
inline constexpr std::int64_t kStreamBytes = std::int64_t{16} << 20;

// The segments of a row of `classes` classes, and whether a row's segments are shared out among threads.
struct RowSegments {
    RowSegments(std::int64_t n, bool shared_out) : classes(n), count((n + kSegment - 1) / kSegment), shared(shared_out) {}

    std::int64_t begin(std::int64_t k) const { return k * kSegment; }
    std::int64_t length(std::int64_t k) const { return std::min(kSegment, classes - k * kSegment); }

    // f(k) for every segment: shared out among the threads, or in order on this one.
    // Note: a plain branch, not `omp parallel if (shared)`: a serial region still costs about a
    // microsecond per row.
    template <typename F>
    void each(const F& f) const {
        if (shared) {
#pragma omp parallel for schedule(static)
            for (std::int64_t k = 0; k < count; ++k) f(k);
        } else {
            for (std::int64_t k = 0; k < count; ++k) f(k);
        }
    }

    const std::int64_t classes;
    const std::int64_t count;
    const bool shared;
};

// The scratch for kept exponentials: per segment, its exponentials (one segment, rounded up to whole
// cache lines, or kSegment) and then its block maxima. One row's per thread (two when gradients are
// written one row late: the row being read and the row being written), or the one a shared row's
// segments fill together. Empty when nothing is kept.
template <typename T>
class KeptExps {
public:
    KeptExps(const RowSegments& segments, bool keep, int slots_per_thread)
        : segments_(segments),
          exps_(segments.count == 1 ? (segments.classes + 15) / 16 * 16 : kSegment),
          stride_(exps_ + kSegment / simd::kBlock),
          slots_(slots_per_thread),
          scratch_(keep ? sz((segments.shared ? 1 : max_threads() * slots_per_thread) * segments.count * stride_) : 0) {}

    bool active() const { return !scratch_.empty(); }

    // Segment 0's scratch of this thread's `slot`, or of the shared row.
    Stored<T> row(std::int64_t slot) {
        T* base = scratch_.data() + (segments_.shared ? 0 : (thread_index() * slots_ + slot) * segments_.count * stride_);
        return {base, base + exps_};
    }

    // Segment k's part of a row's scratch.
    Stored<T> segment(Stored<T> row, std::int64_t k) const {
        return {row.exps + k * stride_, row.maxima + k * stride_};
    }

private:
    const RowSegments& segments_;
    const std::int64_t exps_;
    const std::int64_t stride_;
    const int slots_;
    std::vector<T> scratch_;
};

// Gradients written one row late: per thread, the last row's gradient (one ScaledGrad per segment), not
// yet written, which of the two scratch slots the next row uses, and the partial vector that ends the
// rows written so far (simd::Carry). Empty when gradients are written at once.
template <typename T>
class LateWrites {
public:
    explicit LateWrites(bool active) : threads_(active ? sz(max_threads()) : 0) {}

    bool active() const { return !threads_.empty(); }

    struct alignas(64) Thread {
        std::array<simd::ScaledGrad<T>, kKeptSegments> grads;  // one per segment
        bool pending = false;
        std::int64_t slot = 0;
        simd::Carry<T> carry;
    };

    Thread* mine() { return threads_.empty() ? nullptr : &threads_[sz(thread_index())]; }

    // This thread's last row's gradient, and what it held back of the rows before.
    void flush(const simd::Kernels<T>& kernels, std::int64_t segments) {
        Thread* t = mine();
        if (!t) return;
        for (std::int64_t k = 0; t->pending && k < segments; ++k) kernels.scaled_grad(t->grads[sz(k)]);
        t->pending = false;
        if (t->carry.at) std::copy(t->carry.values, t->carry.values + t->carry.count, t->carry.at);
        t->carry.at = nullptr;
    }

private:
    std::vector<Thread> threads_;
};

template <typename S>
class LogitsRows {
public:
    using T = compute_t<S>;

    LogitsRows(const Problem<S>& problem, const Options<T>& options, const RowSpec<T>& spec, S* grad)
        : kernels_(simd::kernels<T>()),
          spec_(spec),
          z_loss_(options.z_loss),
          stage_(kernels_, options.softcap, kSegment),
          segments_(problem.classes, options.from_logits && problem.classes > kSegment && problem.rows < 2 * max_threads()),
          // A gradient larger than the caches is written around them (no read for ownership).
          stream_(grad != nullptr && grad != problem.input && !stage_.active() &&
                  problem.rows * problem.classes * static_cast<std::int64_t>(sizeof(T)) >= kStreamBytes),
          late_(grad != nullptr && segments_.count <= kKeptSegments && stream_ && !segments_.shared),
          kept_(segments_, grad != nullptr && segments_.count <= kKeptSegments, late_.active() ? 2 : 1),
          parts_(segments_.shared ? sz(segments_.count) : 0) {}

    bool shares_segments() const { return segments_.shared; }

    // Called by each thread after its last row (rows not shared out): writes its late gradient, and
    // makes its streamed stores visible.
    void finish() {
        late_.flush(kernels_, segments_.count);
        if (stream_ && !segments_.shared) kernels_.fence();
    }

    // The loss terms of row x (class index y >= 0, or probability target t when y < 0) and, when g
    // is not null, its gradient: `scale` times that of the cross-entropy term plus `z_scale` times
    // that of the z-loss term.
    simd::LossSums operator()(const S* x, const S* t, std::int64_t y, S* g, double scale, double z_scale) {
        Stored<T> stored;
        T x_y = T(0);
        RowGradient<T> row;
        row.spec = &spec_;
        row.y = y;
        row.scale = scale;
        row.stats = statistics(x, t, y, g != nullptr, stored, x_y);
        row.log_sum = row.stats.log_sum();
        simd::LossSums loss;
        loss.loss = logits_row_loss(spec_, row.stats, row.log_sum, x_y, y);
        const double lse = static_cast<double>(row.stats.max) + row.log_sum;
        if (z_loss_ != 0.0) loss.z_loss = std::isnan(loss.loss) ? kNaN : z_loss_ * lse * lse;
        if (g == nullptr) return loss;

        row.p_extra = z_loss_ != 0.0 && z_scale != 0.0 ? 2.0 * z_loss_ * lse * z_scale : 0.0;
        row.target = y >= 0 ? target_grad(spec_, row.stats, x_y, y, scale, row.p_extra) : 0.0;
        if (stage_.active()) {
            segments_.each([&](std::int64_t k) { staged_gradient(row, x, t, g, stored, k); });
            return loss;
        }
        typename LateWrites<T>::Thread* const late = late_.mine();
        segments_.each([&](std::int64_t k) {
            const std::int64_t begin = segments_.begin(k), len = segments_.length(k);
            const Stored<T> kept = stored.exps ? kept_.segment(stored, k) : stored;
            if (logits_segment_grad(kernels_, row, direct<T>(x) + begin, t ? direct<T>(t) + begin : nullptr, begin, len,
                                  direct<T>(g) + begin, stream_, kept, late ? &late->grads[sz(k)] : nullptr)) {
                late->grads[sz(k)].carry = &late->carry;
                late->pending = true;  // every segment or none (a row of -inf writes NaN at once)
            }
            if (stream_ && segments_.shared) kernels_.fence();
        });
        if (late && late->pending) late->slot ^= 1;
        return loss;
    }

private:
    // Segment k of a staged row: converted again (a row of one segment is still in this thread's buffer
    // from `statistics`), its gradient computed in a buffer, carried through the cap and rounded back.
    void staged_gradient(const RowGradient<T>& row, const S* x, const S* t, S* g, Stored<T> stored, std::int64_t k) {
        const std::int64_t begin = segments_.begin(k), len = segments_.length(k);
        T* xs = stage_.buffer(Stage<S>::logits_buffer);
        if (segments_.count > 1) stage_.logits(x + begin, len, xs);
        const T* ts = stage_.probs(t ? t + begin : nullptr, len, stage_.buffer(Stage<S>::probs_buffer));
        const Stored<T> kept = stored.exps ? kept_.segment(stored, k) : stored;
        // Over the segment's own exponentials, which scaled_grad reads vector by vector before it writes them.
        T* gs = kept.exps ? kept.exps : stage_.buffer(Stage<S>::gradient_buffer);
        logits_segment_grad(kernels_, row, xs, ts, begin, len, gs, false, kept);
        // gs holds the target's entry already: before the cap's chain rule and the rounding.
        stage_.gradient(gs, xs, len, g + begin);
    }

    // Statistics of segment k; x_y receives the (staged) logit at y when y falls in the segment.
    simd::SpanStats<T> segment_statistics(const S* x, const S* t, std::int64_t y, std::int64_t k, T& x_y,
                                        Stored<T> kept, const simd::ScaledGrad<T>* pending) {
        const std::int64_t begin = segments_.begin(k), len = segments_.length(k);
        const T* xs = direct<T>(x) + begin;
        const T* ts = t ? direct<T>(t) + begin : nullptr;
        if (stage_.active()) {
            T* buffer = stage_.buffer(Stage<S>::logits_buffer);
            stage_.logits(x + begin, len, buffer);
            xs = buffer;
            ts = stage_.probs(t ? t + begin : nullptr, len, stage_.buffer(Stage<S>::probs_buffer));
        }
        if (y >= begin && y < begin + len) x_y = xs[y - begin];
        return segment_stats(kernels_, spec_, xs, ts, begin, len, kept.exps, kept.maxima, pending);
    }

    // The statistics of the row, merged in segment order; with kept exponentials, `stored` points at
    // segment 0's. With gradients written late, the previous row's gradient is written meanwhile, from
    // the other slot's scratch.
    simd::SpanStats<T> statistics(const S* x, const S* t, std::int64_t y, bool with_grad, Stored<T>& stored, T& x_y) {
        typename LateWrites<T>::Thread* const late = late_.mine();
        if (kept_.active() && with_grad) stored = kept_.row(late ? late->slot : 0);
        const bool pending = late && late->pending;
        if (late) late->pending = false;
        const auto part = [&](std::int64_t k) {
            const Stored<T> kept = stored.exps ? kept_.segment(stored, k) : Stored<T>{};
            return segment_statistics(x, t, y, k, x_y, kept, pending ? &late->grads[sz(k)] : nullptr);
        };
        if (segments_.shared) {
            segments_.each([&](std::int64_t k) { parts_[sz(k)] = part(k); });
            simd::SpanStats<T> stats = parts_[0];
            for (std::int64_t k = 1; k < segments_.count; ++k) stats = simd::merge(stats, parts_[sz(k)]);
            return stats;
        }
        simd::SpanStats<T> stats = part(0);
        for (std::int64_t k = 1; k < segments_.count; ++k) stats = simd::merge(stats, part(k));
        return stats;
    }

    const simd::Kernels<T>& kernels_;
    const RowSpec<T>& spec_;
    const double z_loss_;
    Stage<S> stage_;
    const RowSegments segments_;
    const bool stream_;
    LateWrites<T> late_;
    KeptExps<T> kept_;
    std::vector<simd::SpanStats<T>> parts_;  // segment statistics of a shared row
};

}  // namespace xentcpp::detail
