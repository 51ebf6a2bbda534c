// 2^(j/16), j = 0..15, correctly rounded to double (tools/fit_exp_poly.py --double prints them;
// tests/cpp/test_vector_math.cpp checks them against long double exp2): the table of the AVX-512
// exp_sum for double lanes (vector_math.hpp), held in two registers.
#pragma once

namespace xentcpp::simd {

alignas(64) inline constexpr double kExp2Sixteenths[16] = {
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0,
};

}  // namespace xentcpp::simd
