// Binary cross-entropy with logits (Kernels::bce_with_logits), for one SIMD target.
#include <cstdint>

#include "common.hpp"
#include "families.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

// Note: with e = exp(-|x|) in (0, 1], softplus(-x) = log1p(e) + max(-x, 0) and sigmoid(x) = 1 / (1 + e)
// (x >= 0) or e / (1 + e): no overflow for any x, full precision for |x| up to the underflow of e.
template <typename T>
double bce_with_logits(const T* x, const T* t, std::int64_t n, const T* weight, const T* class_weight,
                       const T* pos_weight, T* losses, T* grad, T scale, const T* scales) {
    constexpr int L = Vec<T>::lanes;
    double total = 0.0;
    for (std::int64_t start = 0; start < n; start += kBlock) {
        const std::int64_t len = n - start < kBlock ? n - start : kBlock;
        V<T> block_sum{};
        for (std::int64_t c = start; c < start + len; c += L) {
            const std::int64_t valid = start + len - c < L ? start + len - c : L;
            const auto at = [&](const T* p, T fill) { return valid == L ? load(p + c) : load_partial(p + c, valid, fill); };
            const auto put = [&](T* p, V<T> v) {
                if (valid == L) store(p + c, v);
                else store_partial(p + c, valid, v);
            };
            const V<T> xv = at(x, T(0)), tv = at(t, T(0));
            V<T> w = splat(T(1));
            if (weight) w = at(weight, T(0));
            if (class_weight) w = w * at(class_weight, T(0));
            const V<T> pw = pos_weight ? at(pos_weight, T(1)) : splat(T(1));
            const V<T> magnitude = xv < T(0) ? -xv : xv;
            const V<T> e = exp(-magnitude);
            const V<T> coef = T(1) + (pw - T(1)) * tv;
            const V<T> softplus = log1p<T>(e) + (xv < T(0) ? -xv : splat(T(0)));
            V<T> loss = w * ((T(1) - tv) * xv + coef * softplus);
            if (valid < L) loss = lane_index<T>() < static_cast<T>(valid) ? loss : splat(T(0));
            block_sum += loss;
            if (losses) put(losses, loss);
            if (grad) {
                const V<T> sigmoid = (xv >= T(0) ? splat(T(1)) : e) / (T(1) + e);
                const V<T> s = scales ? at(scales, T(0)) : splat(scale);
                put(grad, s * w * (coef * sigmoid - pw * tv));
            }
        }
        total += reduce_sum(block_sum);
    }
    return total;
}

}  // namespace

template <typename T>
void add_binary(Kernels<T>& k) {
    k.bce_with_logits = &bce_with_logits<T>;
}

template void add_binary<float>(Kernels<float>&);
template void add_binary<double>(Kernels<double>&);

}  // namespace xentcpp::simd::XENTCPP_TARGET
