// Drivers of the softmax family (xentcpp/functions.hpp): logsumexp, softmax and log_softmax along the
// class axis of an outer × classes × inner block, on the kernels of the softmax family (lanes own the
// inner positions of a middle axis, or the rows of few classes) and the row statistics otherwise.
#include <cmath>
#include <cstdint>
#include <limits>

#include "checks.hpp"
#include "simd/kernels.hpp"
#include "sweep.hpp"
#include "xentcpp/functions.hpp"

namespace xentcpp {
namespace {

using detail::check_shape;
using detail::require;

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

template <typename T>
void softmax_family(const T* x, const Columns& layout, T* out, simd::SoftmaxOp op) {
    require(x != nullptr && out != nullptr, "null buffer");
    check_shape(layout.outer, layout.classes, layout.inner);
    const simd::Kernels<T>& k = simd::kernels<T>();
    const std::int64_t n = layout.classes;
    const bool reduces = op == simd::SoftmaxOp::logsumexp;  // one value per slice
    if (layout.inner > 1) {
        detail::sweep_tiles<double>(layout.outer, n * layout.inner, false, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t o = begin; o < end; ++o) {
                const std::int64_t out_stride = reduces ? layout.inner : n * layout.inner;
                k.columns(x + o * n * layout.inner, n, layout.inner, op, out + o * out_stride);
                for (std::int64_t i = 0; reduces && i < layout.inner; ++i) {
                    mend_infinite_sum(x + o * n * layout.inner + i, n, layout.inner, out[o * layout.inner + i]);
                }
            }
            return 0.0;
        });
        return;
    }
    if (n <= simd::kSmallClasses) {  // a row is shorter than a few vectors: lanes own rows
        detail::sweep_tiles<double>(layout.outer, n, false, [&](std::int64_t begin, std::int64_t end) {
            k.small_family(x + begin * n, end - begin, n, op, out + begin * (reduces ? 1 : n));
            for (std::int64_t r = begin; reduces && r < end; ++r) mend_infinite_sum(x + r * n, n, 1, out[r]);
            return 0.0;
        });
        return;
    }
    detail::sweep_tiles<double>(layout.outer, n, false, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
            const T* row = x + r * n;
            const simd::SpanStats<T> stats = k.stats(row, n, simd::StatsRequest<T>{});
            const T log_sum = static_cast<T>(stats.log_sum());
            // All -inf: the sums used shift 0, so lse = -inf and the distribution is NaN (0 / 0).
            const T shift = stats.max == -std::numeric_limits<T>::infinity() ? T(0) : stats.max;
            if (reduces) {
                out[r] = shift + log_sum;
                mend_infinite_sum(row, n, 1, out[r]);
            } else if (op == simd::SoftmaxOp::softmax) {
                simd::SoftmaxGrad<T> probabilities{row, n, stats.max, log_sum, {}, out + r * n, false};
                probabilities.terms.p_coef = T(1);  // softmax_grad with no target: p itself
                k.softmax_grad(probabilities);
            } else {
                k.shifted(row, n, stats.max, log_sum, out + r * n);
            }
        }
        return 0.0;
    });
}

}  // namespace

template <typename T>
void logsumexp(const T* x, const Columns& layout, T* out) {
    softmax_family(x, layout, out, simd::SoftmaxOp::logsumexp);
}

template <typename T>
void softmax(const T* x, const Columns& layout, T* out) {
    softmax_family(x, layout, out, simd::SoftmaxOp::softmax);
}

template <typename T>
void log_softmax(const T* x, const Columns& layout, T* out) {
    softmax_family(x, layout, out, simd::SoftmaxOp::log_softmax);
}

#define XENTCPP_INSTANTIATE(T)                                    \
    template void logsumexp<T>(const T*, const Columns&, T*);   \
    template void softmax<T>(const T*, const Columns&, T*);     \
    template void log_softmax<T>(const T*, const Columns&, T*);

XENTCPP_INSTANTIATE(float)
XENTCPP_INSTANTIATE(double)

}  // namespace xentcpp
