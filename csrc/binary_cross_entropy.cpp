// The driver of binary_cross_entropy_with_logits (xentcpp/functions.hpp): PyTorch's multi-label loss,
// per element, on the binary kernel; a tile of rows is one span when no per-class weight splits it.
#include <cstdint>

#include "checks.hpp"
#include "simd/kernels.hpp"
#include "sweep.hpp"
#include "xentcpp/functions.hpp"

namespace xentcpp {

using detail::check_shape;
using detail::require;

template <typename T>
double binary_cross_entropy_with_logits(const T* x, const T* t, std::int64_t rows, std::int64_t classes,
                                        const T* weight, const T* class_weight, const T* pos_weight,
                                        Reduction reduction, Out<T> losses, const GradRequest<T>* request) {
    require(x != nullptr && t != nullptr, "null buffer");
    check_shape(rows, classes);
    require(reduction != Reduction::none || losses != nullptr || request != nullptr, "reduction none needs losses");
    require(request == nullptr || request->grad != nullptr, "grad is null");
    const simd::Kernels<T>& k = simd::kernels<T>();
    const double elements = static_cast<double>(rows) * static_cast<double>(classes);
    T* grad = request ? request->grad : nullptr;
    double scale = request ? request->grad_output : 0.0;
    if (reduction == Reduction::mean) scale = elements != 0.0 ? scale / elements : 0.0;
    const T* scales = request && reduction == Reduction::none ? request->grad_output_rows : nullptr;
    const auto at = [](auto* p, std::int64_t offset) { return p ? p + offset : nullptr; };
    const bool per_class = class_weight != nullptr || pos_weight != nullptr;
    const double total = detail::sweep_tiles<double>(rows, classes, false, [&](std::int64_t begin, std::int64_t end) {
        if (!per_class) {  // one span: no per-row calls for few classes
            const std::int64_t offset = begin * classes, n = (end - begin) * classes;
            return k.bce_with_logits(x + offset, t + offset, n, at(weight, offset), nullptr, nullptr, at(losses, offset),
                                     at(grad, offset), static_cast<T>(scale), at(scales, offset));
        }
        double sum = 0.0;
        for (std::int64_t r = begin; r < end; ++r) {
            const std::int64_t offset = r * classes;
            sum += k.bce_with_logits(x + offset, t + offset, classes, at(weight, offset), class_weight, pos_weight,
                                     at(losses, offset), at(grad, offset), static_cast<T>(scale), at(scales, offset));
        }
        return sum;
    });
    return reduction == Reduction::mean ? total / elements : total;
}

template double binary_cross_entropy_with_logits<float>(const float*, const float*, std::int64_t, std::int64_t,
                                                        const float*, const float*, const float*, Reduction, float*,
                                                        const GradRequest<float>*);
template double binary_cross_entropy_with_logits<double>(const double*, const double*, std::int64_t, std::int64_t,
                                                         const double*, const double*, const double*, Reduction,
                                                         double*, const GradRequest<double>*);

}  // namespace xentcpp
