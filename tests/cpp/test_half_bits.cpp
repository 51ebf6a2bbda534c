// The portable binary16 conversions (csrc/simd/half_bits.hpp, used where the compiler has no _Float16)
// over every half value, and the midpoints between neighbours, where rounding decides: ties go to
// the even neighbour, a hair either side goes to the nearer one. Where the compiler has _Float16,
// they must also give its bits, as must every SIMD target's widen_f16/narrow_f16.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "simd/half_bits.hpp"
#include "simd/kernels.hpp"

namespace {

using xentcpp::simd::double_to_half_bits;
using xentcpp::simd::half_bits_to_float;

bool is_nan_bits(std::uint16_t h) { return (h & 0x7C00u) == 0x7C00u && (h & 0x3FFu) != 0; }

// Every finite half, positive and negative, with its value.
std::vector<std::uint16_t> finite_halves() {
    std::vector<std::uint16_t> out;
    for (std::uint32_t h = 0; h < 0x10000u; ++h) {
        if ((h & 0x7C00u) != 0x7C00u) out.push_back(static_cast<std::uint16_t>(h));
    }
    return out;
}

TEST(HalfBits, WideningIsExactAndRoundTrips) {
    for (std::uint32_t bits = 0; bits < 0x10000u; ++bits) {
        const auto h = static_cast<std::uint16_t>(bits);
        const float f = half_bits_to_float(h);
        if (is_nan_bits(h)) {
            EXPECT_TRUE(std::isnan(f));
            EXPECT_TRUE(is_nan_bits(double_to_half_bits(f)));
            continue;
        }
        // The value from the definition: (-1)^s 2^(e - 15) (1 + m / 1024), or 2^-14 m / 1024 when e = 0.
        const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
        const double magnitude = e == 0x1F ? INFINITY : e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
        EXPECT_EQ(static_cast<double>(f), (h & 0x8000u) ? -magnitude : magnitude) << std::hex << h;
        EXPECT_EQ(double_to_half_bits(f), h) << std::hex << h;  // signed zeros included
    }
}

TEST(HalfBits, NarrowingRoundsToNearestEven) {
    for (const std::uint16_t h : finite_halves()) {
        if ((h & 0x7FFFu) == 0x7BFFu) continue;  // 65504: its upper neighbour is inf (below)
        const auto next = static_cast<std::uint16_t>(h + 1);  // the neighbour away from zero
        const double a = half_bits_to_float(h), b = half_bits_to_float(next);
        const double mid = (a + b) / 2;  // exact in double
        const std::uint16_t even = (h & 1u) == 0 ? h : next;
        EXPECT_EQ(double_to_half_bits(mid), even) << std::hex << h;
        EXPECT_EQ(double_to_half_bits(std::nextafter(mid, a)), h) << std::hex << h;
        EXPECT_EQ(double_to_half_bits(std::nextafter(mid, b)), next) << std::hex << h;
    }
    EXPECT_EQ(double_to_half_bits(65519.99), 0x7BFFu);  // below 65504 + half an ulp: the largest half
    EXPECT_EQ(double_to_half_bits(65520.0), 0x7C00u);   // the tie goes to the even "next": inf
    EXPECT_EQ(double_to_half_bits(-1e300), 0xFC00u);
    EXPECT_EQ(double_to_half_bits(-INFINITY), 0xFC00u);
    EXPECT_EQ(double_to_half_bits(0x1p-26), 0u);  // a quarter of the smallest subnormal
}

// The kernels of every target, and _Float16 where the compiler has it, give the same bits.
TEST(HalfBits, KernelsAndFloat16AgreeWithThePortableConversions) {
    std::vector<std::uint16_t> halves = finite_halves();
    std::vector<double> values;
    for (const std::uint16_t h : halves) {
        const double a = half_bits_to_float(h), b = half_bits_to_float(static_cast<std::uint16_t>(h + 1));
        values.push_back(a);
        if (std::isfinite(b)) values.push_back((a + b) / 2);
    }
    std::vector<float> as_float(values.begin(), values.end());  // the midpoints are floats too
    std::vector<std::uint16_t> expected(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) expected[i] = double_to_half_bits(values[i]);
#if defined(__FLT16_MAX__)
    for (std::size_t i = 0; i < values.size(); ++i) {
        const _Float16 h = static_cast<_Float16>(values[i]);
        std::uint16_t bits;
        std::memcpy(&bits, &h, sizeof bits);
        ASSERT_EQ(bits, expected[i]) << values[i];
    }
#endif
    for (const auto t : {xentcpp::simd::Target::avx512, xentcpp::simd::Target::avx2, xentcpp::simd::Target::baseline}) {
        if (!xentcpp::simd::target_supported(t)) continue;
        const auto n = static_cast<std::int64_t>(values.size());
        std::vector<std::uint16_t> from_double(values.size()), from_float(values.size());
        xentcpp::simd::kernels_for<double>(t).narrow_f16(values.data(), n, from_double.data());
        xentcpp::simd::kernels_for<float>(t).narrow_f16(as_float.data(), n, from_float.data());
        EXPECT_EQ(from_double, expected) << xentcpp::simd::target_name(t);
        EXPECT_EQ(from_float, expected) << xentcpp::simd::target_name(t);
        std::vector<float> widened(halves.size());
        xentcpp::simd::kernels_for<float>(t).widen_f16(halves.data(), static_cast<std::int64_t>(halves.size()),
                                                       widened.data());
        for (std::size_t i = 0; i < halves.size(); ++i) ASSERT_EQ(widened[i], half_bits_to_float(halves[i]));
    }
}

}  // namespace
