// What the row driver applies to logits before the kernels read them, and its inverse on their
// gradient: logit soft-capping (Kernels::softcap, softcap_grad) and half-precision storage
// (widen_f16, narrow_f16, widen_bf16, narrow_bf16), for one SIMD target.
#include <cstdint>
#include <cstring>

#include "../half_bits.hpp"
#include "common.hpp"
#include "families.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

template <typename T>
void softcap(const T* x, std::int64_t n, T cap, T* out) {
    constexpr int L = Vec<T>::lanes;
    const auto capped = [cap](V<T> v) { return cap * tanh<T>(v / cap); };
    std::int64_t c = 0;
    for (; c + L <= n; c += L) store(out + c, capped(load(x + c)));
    if (c < n) store_partial(out + c, n - c, capped(load_partial(x + c, n - c, T(0))));
}

template <typename T>
void softcap_grad(const T* g, const T* capped, std::int64_t n, T cap, T* out) {
    const T inverse = T(1) / cap;
    for (std::int64_t c = 0; c < n; ++c) {
        const T t = capped[c] * inverse;  // tanh(x / cap)
        out[c] = g[c] * (T(1) - t * t);
    }
}

// Note: _Float16 conversions compile to vcvtph2ps/vcvtps2ph where the target has F16C, and to
// libgcc's exact software conversions on the baseline. Compilers without _Float16 here (Clang 14)
// take the portable conversions of half_bits.hpp, which give the same bits.
template <typename T>
void widen_f16(const std::uint16_t* in, std::int64_t n, T* out) {
    for (std::int64_t c = 0; c < n; ++c) {
#if defined(__FLT16_MAX__)
        _Float16 h;
        std::memcpy(&h, in + c, sizeof h);
        out[c] = static_cast<T>(static_cast<float>(h));
#else
        out[c] = static_cast<T>(half_bits_to_float(in[c]));
#endif
    }
}

template <typename T>
void narrow_f16(const T* in, std::int64_t n, std::uint16_t* out) {
    for (std::int64_t c = 0; c < n; ++c) {
#if defined(__FLT16_MAX__)
        const _Float16 h = static_cast<_Float16>(in[c]);  // one rounding, also from double
        std::memcpy(out + c, &h, sizeof h);
#else
        out[c] = double_to_half_bits(static_cast<double>(in[c]));
#endif
    }
}

// bfloat16 is the high half of a float.
template <typename T>
void widen_bf16(const std::uint16_t* in, std::int64_t n, T* out) {
    for (std::int64_t c = 0; c < n; ++c) {
        const std::uint32_t bits = static_cast<std::uint32_t>(in[c]) << 16;
        float f;
        std::memcpy(&f, &bits, sizeof f);
        out[c] = static_cast<T>(f);
    }
}

template <typename T>
void narrow_bf16(const T* in, std::int64_t n, std::uint16_t* out) {
    for (std::int64_t c = 0; c < n; ++c) {
        const float f = static_cast<float>(in[c]);  // double input: rounded twice, within an ulp of bfloat16
        std::uint32_t bits;
        std::memcpy(&bits, &f, sizeof bits);
        const std::uint32_t rounded = bits + 0x7FFFu + ((bits >> 16) & 1u);  // to nearest, ties to even
        const bool nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
        out[c] = static_cast<std::uint16_t>(nan ? (bits >> 16) | 0x0040u : rounded >> 16);  // NaN stays quiet NaN
    }
}

}  // namespace

template <typename T>
void add_conversions(Kernels<T>& k) {
    k.softcap = &softcap<T>;
    k.softcap_grad = &softcap_grad<T>;
    k.widen_f16 = &widen_f16<T>;
    k.narrow_f16 = &narrow_f16<T>;
    k.widen_bf16 = &widen_bf16<T>;
    k.narrow_bf16 = &narrow_bf16<T>;
}

template void add_conversions<float>(Kernels<float>&);
template void add_conversions<double>(Kernels<double>&);

}  // namespace xentcpp::simd::XENTCPP_TARGET
