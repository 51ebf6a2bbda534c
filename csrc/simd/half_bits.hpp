// IEEE binary16 conversions on bit patterns, in portable C++: the fallback for compilers without
// _Float16 on the target (Clang 14 on x86-64, used for the fuzz build). Exact widening; narrowing
// rounds once to nearest, ties to even (a float or double argument alike); NaN stays a quiet NaN.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace xentcpp::simd {

inline float half_bits_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
    std::uint32_t bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13);  // inf, or NaN with its payload
    } else if (exponent == 0) {
        const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // zero or subnormal: exact
        std::memcpy(&bits, &magnitude, sizeof bits);
        bits |= sign;
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // rebias 15 -> 127
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

inline std::uint16_t double_to_half_bits(double x) {
    const std::uint16_t sign = std::signbit(x) ? 0x8000u : 0u;
    if (std::isnan(x)) return static_cast<std::uint16_t>(sign | 0x7E00u);
    const double a = std::fabs(x);
    if (a >= 65520.0) return static_cast<std::uint16_t>(sign | 0x7C00u);  // 65504 + half an ulp, and inf: inf
    // Note: std::nearbyint rounds to nearest even in the default rounding mode; the scalings by
    // powers of two are exact, so this is the only rounding.
    if (a < 0x1p-14) {  // subnormal (or zero) half: units of 2^-24; 1024 units is the smallest normal
        return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(a * 0x1p24)));
    }
    int e = 0;
    std::frexp(a, &e);  // a in [2^(e-1), 2^e)
    int exponent = e - 1;
    double units = std::nearbyint(std::ldexp(a, 10 - exponent));  // in [1024, 2048]
    if (units == 2048.0) {
        units = 1024.0;
        ++exponent;
    }
    return static_cast<std::uint16_t>(sign | ((exponent + 15) << 10) | (static_cast<int>(units) - 1024));
}

}  // namespace xentcpp::simd
