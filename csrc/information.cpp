// The drivers of the information measures (xentcpp/functions.hpp): entropy and Kullback-Leibler
// divergence, one row at a time on the information kernels.
#include <cstdint>

#include "checks.hpp"
#include "simd/kernels.hpp"
#include "sweep.hpp"
#include "xentcpp/functions.hpp"

namespace xentcpp {

using detail::check_shape;
using detail::require;

template <typename T>
void entropy(const T* p, std::int64_t rows, std::int64_t classes, T* out) {
    require(p != nullptr && out != nullptr, "null buffer");
    check_shape(rows, classes);
    const simd::Kernels<T>& k = simd::kernels<T>();
    detail::sweep_tiles<double>(rows, classes, false, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) out[r] = static_cast<T>(-k.sum_p_log_p(p + r * classes, classes));
        return 0.0;
    });
}

template <typename T>
void kl_div(const T* p, const T* q, std::int64_t rows, std::int64_t classes, T* out) {
    require(p != nullptr && q != nullptr && out != nullptr, "null buffer");
    check_shape(rows, classes);
    const simd::Kernels<T>& k = simd::kernels<T>();
    detail::sweep_tiles<double>(rows, classes, false, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
            out[r] = static_cast<T>(k.sum_p_log_p_over_q(p + r * classes, q + r * classes, classes));
        }
        return 0.0;
    });
}

template void entropy<float>(const float*, std::int64_t, std::int64_t, float*);
template void entropy<double>(const double*, std::int64_t, std::int64_t, double*);
template void kl_div<float>(const float*, const float*, std::int64_t, std::int64_t, float*);
template void kl_div<double>(const double*, const double*, std::int64_t, std::int64_t, double*);

}  // namespace xentcpp
