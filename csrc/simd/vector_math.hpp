// Vector exp and log for the kernels, written here (no libm call in a hot loop).
//
// exp: x = n ln2 + r with n = round(x log2 e) (the 1.5 * 2^mantissa_bits trick), r by Cody-Waite
// with ln2 split so that n * ln2_hi is exact even without FMA, exp(r) by a polynomial on
// [-ln2/2, ln2/2], and 2^n built in the exponent bits. Float: degree 6, coefficients fitted for
// minimal relative error by tools/fit_exp_poly.py (3.1e-9 before rounding); double: degree 11, fitted
// the same way in 160-bit arithmetic (tools/fit_exp_poly.py --double-exp: 3.6e-18, 1.1e-17 once the
// coefficients are rounded to double; two FMAs fewer than the Taylor series of degree 13 it replaces).
// log: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = log1p(f) = 2 atanh(s), f = m - 1,
// s = f / (2 + f), |s| <= 0.1716, by its odd series (truncation 2.2e-9 for float, 1e-17 for double).
//
// expm1, log1p and tanh build on them (below), with the forms that keep full relative precision
// near 0, where exp(x) - 1 and log(1 + x) would cancel.
//
// Errors are measured against double/long double libm over the whole input range by
// tests/cpp/test_vector_math.cpp, which holds the bounds stated below. With AVX-512, exp uses the
// same reduction and polynomial, but rounds and scales by 2^n with vrndscale/vscalef: the same
// bounds, over the whole range (no early overflow, gradual underflow down to the last subnormal).
#pragma once

#include "exp_table.hpp"
#include "vec.hpp"

#include <initializer_list>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace xentcpp::simd::XENTCPP_TARGET {

// exp<true>: for x <= 0 (or NaN), as x minus a max is: the clamp against overflow is skipped, with
// the same results; one instruction less in the hottest loops.
#if defined(__AVX512F__)
// Note: AVX-512 has round-to-integer and scale-by-2^n instructions (vrndscaleps, vscalefps), which
// replace the bit tricks below, handle the whole range (gradual underflow, exact overflow) and cost
// two thirds of the time.
template <bool kNonPositive = false>
inline V<float> exp(V<float> x) {
    __m512 v = _mm512_max_ps(_mm512_set1_ps(-104.0f), reinterpret_cast<__m512>(x));  // NaN stays NaN
    if constexpr (!kNonPositive) v = _mm512_min_ps(_mm512_set1_ps(89.0f), v);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), v);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.3814613e-3f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3687100e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1668388e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666521e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.9999994e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return reinterpret_cast<V<float>>(_mm512_scalef_ps(p, n));
}

template <bool kNonPositive = false>
inline V<double> exp(V<double> x) {
    __m512d v = _mm512_max_pd(_mm512_set1_pd(-746.0), reinterpret_cast<__m512d>(x));
    if constexpr (!kNonPositive) v = _mm512_min_pd(_mm512_set1_pd(710.0), v);
    const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(v, _mm512_set1_pd(1.4426950408889634)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(0.6931467056274414), v);
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(4.7493250390316726e-07), r);
    __m512d p = _mm512_set1_pd(2.500007585487064e-08);
    for (const double c : {2.763023364416114e-07, 2.7557586258761278e-06, 2.4801493136954244e-05,
                           1.9841269506781014e-04, 1.3888888943596996e-03, 8.333333333494338e-03,
                           4.1666666666530267e-02, 1.6666666666666413e-01, 0.5000000000000011, 1.0, 1.0}) {
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c));
    }
    return reinterpret_cast<V<double>>(_mm512_scalef_pd(p, n));
}
#else
// exp for float lanes.
//   x in [-87.33, 88.37]: <= 2 ulp (normal results; measured 0.88 with FMA, 1.17 without).
//   x in [-87.68, -87.33): subnormal results, by gradual underflow; x < -87.68 or -inf: 0.
//   x >= 88.38 or +inf: +inf (exp(x) overflows from 88.72; in between the result is early inf).
//   NaN: NaN.
template <bool kNonPositive = false>
inline V<float> exp(V<float> x) {
    using Bits = Vec<float>::bits;
    const V<float> lowest = splat(-87.68f);  // n = round(x log2 e) stays >= -126: 2^n is normal
    const V<float> highest = splat(88.72f);
    V<float> xc = x < lowest ? lowest : x;  // comparisons are false for NaN: it passes through
    if constexpr (!kNonPositive) xc = xc > highest ? highest : xc;

    const V<float> magic = splat(12582912.0f);  // 1.5 * 2^23
    const V<float> t = xc * 1.44269504f + magic;
    const V<float> n = t - magic;
    V<float> r = xc - n * 0.693359375f;  // ln2_hi: 9 significant bits
    r = r - n * -2.12194440e-4f;         // ln2_lo = ln2 - ln2_hi

    V<float> p = splat(1.3814613e-3f);
    p = p * r + 8.3687100e-3f;
    p = p * r + 4.1668388e-2f;
    p = p * r + 1.6666521e-1f;
    p = p * r + 4.9999994e-1f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;

    // t's low mantissa bits hold n + 2^22; moved into the exponent field they give 2^n.
    const Bits n_bits = reinterpret_cast<Bits>(t) - 0x4B400000;
    const V<float> pow2n = reinterpret_cast<V<float>>((n_bits + 127) << 23);
    const V<float> result = p * pow2n;
    return x < lowest ? splat(0.0f) : result;
}

// exp for double lanes.
//   x in [-708.39, 709.43]: <= 1.5 ulp (normal results; measured 0.91 with FMA, 1.21 without); below, gradual underflow to -708.74, then 0.
//   x >= 709.44 or +inf: +inf (early inf before 709.78). NaN: NaN.
template <bool kNonPositive = false>
inline V<double> exp(V<double> x) {
    using Bits = Vec<double>::bits;
    const V<double> lowest = splat(-708.74);
    const V<double> highest = splat(709.79);
    V<double> xc = x < lowest ? lowest : x;
    if constexpr (!kNonPositive) xc = xc > highest ? highest : xc;

    const V<double> magic = splat(6755399441055744.0);  // 1.5 * 2^52
    const V<double> t = xc * 1.4426950408889634 + magic;
    const V<double> n = t - magic;
    V<double> r = xc - n * 0.6931467056274414;  // ln2_hi: low 32 mantissa bits zero
    r = r - n * 4.7493250390316726e-07;         // ln2_lo

    V<double> p = splat(2.500007585487064e-08);  // degree 11, minimax (see the top of the file)
    p = p * r + 2.763023364416114e-07;
    p = p * r + 2.7557586258761278e-06;
    p = p * r + 2.4801493136954244e-05;
    p = p * r + 1.9841269506781014e-04;
    p = p * r + 1.3888888943596996e-03;
    p = p * r + 8.333333333494338e-03;
    p = p * r + 4.1666666666530267e-02;
    p = p * r + 1.6666666666666413e-01;
    p = p * r + 0.5000000000000011;
    p = p * r + 1.0;
    p = p * r + 1.0;

    const Bits n_bits = reinterpret_cast<Bits>(t) - 0x4338000000000000LL;
    const V<double> pow2n = reinterpret_cast<V<double>>((n_bits + 1023) << 52);
    const V<double> result = p * pow2n;
    return x < lowest ? splat(0.0) : result;
}
#endif

// exp_sum: exp for the terms of a sum whose largest term is 1 (x <= 0, as x minus a max is): no
// overflow clamp, the degree-5 polynomial of tools/fit_exp_poly.py (1.05e-7 before rounding) instead
// of exp's degree 6, and with FMA ln2 as one float constant, whose error (1.9e-9) times |n| = |x| log2 e
// grows to 2 ulp near the underflow. 10 operations instead of 12 on AVX-512. For the forward's sums,
// and so for the kept exponentials of the gradient paths, whose loss must equal the forward's (the
// softmax gradient: mean error 2.75 ulp against 2.66 with exp, 256 x 1000). The public exp keeps exp.
// Note: the tiny terms are the whole loss of a confident row (log1p of their sum, SpanStats), so
// their relative error is the loss's: 3.5 eps at worst in float (terms near the underflow), 1.2 with
// ln2 in two constants, which cost the forward of long rows 10 % on one thread: not taken.
//   x in [-87.33, 0]: <= 5 ulp (measured 4.77 with FMA, the one-constant reduction at |n| = 126;
//   2.40 without FMA); x in [-8, 0], the terms that make a sum: <= 2e-7 relative (measured 1.80e-7
//   with FMA, 1.93e-7 without). Held by tests/cpp/test_vector_math.cpp. 0: exactly 1.
//   Below: gradual underflow (within 2^-149 plus the relative error above), then 0 from -104 (and
//   -inf), on every target.
//   NaN: NaN. x > 0: not for it (no overflow clamp).
#if defined(__AVX512F__)
inline V<float> exp_sum(V<float> x) {
    const __m512 v = _mm512_max_ps(_mm512_set1_ps(-104.0f), reinterpret_cast<__m512>(x));  // NaN stays NaN
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(v, _mm512_set1_ps(1.44269504f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693147182f), v);  // exact product in the FMA
    __m512 p = _mm512_set1_ps(8.312525e-3f);
    for (const float c : {4.1890115e-2f, 1.6667114e-1f, 4.999923e-1f, 1.0f, 1.0f}) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    return reinterpret_cast<V<float>>(_mm512_scalef_ps(p, n));
}
#else
inline V<float> exp_sum(V<float> x) {
    using Bits = Vec<float>::bits;
    const V<float> lowest = splat(-104.0f);  // n >= -150: the result rounds to 0 or 2^-149
    const V<float> xc = x < lowest ? lowest : x;  // NaN passes through
    // Note: explicit multiply-adds (mul_add), fused where the target has FMA whatever the
    // optimisation level: n * ln2 is exact only inside an FMA (a Debug build, which does not contract
    // a * b + c, was 64 ulp off), and the same bits in Debug and Release.
    const V<float> magic = splat(12582912.0f);  // 1.5 * 2^23
    const V<float> t = mul_add<float>(xc, splat(1.44269504f), magic);
    const V<float> n = t - magic;
#if defined(__FMA__)
    const V<float> r = mul_add<float>(-n, splat(0.693147182f), xc);
#else
    V<float> r = xc - n * 0.693359375f;  // without FMA, Cody-Waite as exp
    r = r - n * -2.12194440e-4f;
#endif
    V<float> p = splat(8.312525e-3f);
    for (const float c : {4.1890115e-2f, 1.6667114e-1f, 4.999923e-1f, 1.0f, 1.0f}) p = mul_add<float>(p, r, splat(c));
    // p 2^n as (p 2^(n + 64)) 2^-64: the first product is exact (2^(n + 64) is normal for n >= -190, and
    // x <= 0 keeps n <= 0), the second rounds once, into the subnormal range too (gradual underflow, as
    // vscalef on AVX-512). One multiplication more; 2^n alone is no float below n = -126, and the terms
    // lost there were the whole loss of a row near the underflow (2 % of a float loss of 4.8e-38).
    const Bits n_bits = reinterpret_cast<Bits>(t) - (0x4B400000 - 127 - 64);
    return (p * reinterpret_cast<V<float>>(n_bits << 23)) * 0x1p-64f;
}
#endif

// exp_sum for double lanes. With AVX-512, table-driven: x = (16 m + j) ln2/16 + r with
// n = 16 m + j = round(x 16/ln2) (the 1.5 * 2^52 trick, whose low bits index the table directly),
// r by Cody-Waite (ln2/16 in two constants, FMA), |r| <= ln2/32; exp(x) = 2^m 2^(j/16) exp(r), 2^(j/16)
// from kExp2Sixteenths held in two registers (vpermt2pd, no gather), exp(r) - 1 = r + r^2 q(r) with
// q of degree 4 (tools/fit_exp_poly.py --double: 1.2e-17 relative), 2^(j/16) (1 + (exp(r) - 1)) in
// one FMA, and 2^m by vscalef (gradual underflow). 15 operations instead of 17 (exp<true>).
//   x in [-708.39, 0]: <= 2 ulp (normal results; measured 1.11, every 2^-14 of the range). Below:
//   gradual underflow, then 0 from -746 (and -inf). NaN: NaN. 0: exactly 1. x > 0: not for it.
// Without AVX-512: exp<true> (measured 0.91 ulp with FMA, 1.21 without, on the same walk).
#if defined(__AVX512F__)
inline V<double> exp_sum(V<double> x) {
    const __m512d v = _mm512_max_pd(_mm512_set1_pd(-746.0), reinterpret_cast<__m512d>(x));  // NaN stays NaN
    const __m512d magic = _mm512_set1_pd(6755399441055744.0);  // 1.5 * 2^52: t's low bits hold n
    const __m512d t = _mm512_fmadd_pd(v, _mm512_set1_pd(23.083120654223414), magic);  // 16 / ln2
    const __m512d n = _mm512_sub_pd(t, magic);
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(0x1.62e42fefa39efp-5), v);  // ln2/16 rounded
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(1.4494042586539372e-18), r);       // ln2/16 - that
    const __m512d table = _mm512_permutex2var_pd(_mm512_load_pd(kExp2Sixteenths), _mm512_castpd_si512(t),
                                                 _mm512_load_pd(kExp2Sixteenths + 8));  // 2^(j/16), j = n mod 16
    __m512d q = _mm512_set1_pd(0.0013888553727908668);
    for (const double c : {0.00833347296785075, 0.041666666694865385, 0.1666666666437413, 0.49999999999999534}) {
        q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(c));
    }
    const __m512d expm1_r = _mm512_fmadd_pd(q, _mm512_mul_pd(r, r), r);
    const __m512d p = _mm512_fmadd_pd(table, expm1_r, table);
    return reinterpret_cast<V<double>>(_mm512_scalef_pd(p, _mm512_mul_pd(n, _mm512_set1_pd(0.0625))));  // 2^floor(n/16)
}
#else
inline V<double> exp_sum(V<double> x) { return exp<true>(x); }
#endif

// log for float lanes.
//   x > 0 and finite, subnormals included: <= 1.5 ulp (measured 0.94). +inf: +inf. 0: -inf.
//   x < 0, NaN: NaN.
// Note: a subnormal is scaled by 2^23 into the normal range first (exactly), its exponent corrected.
// log<true>: for x that is never subnormal, as a sum of exponentials (>= 1, or 0, or NaN) is: the
// scaling is skipped; it lengthens the chain of a few-classes group by about 7 %.
// With `excess` (log1p_excess), x is 1 + excess rounded, and excess replaces the reduced argument
// f = x - 1 where the exponent is 0 (see there).
template <bool kNoSubnormals = false>
XENTCPP_INLINE V<float> log(V<float> x, const V<float>* excess = nullptr) {
    using Bits = Vec<float>::bits;
    V<float> bias = splat(127.0f);
    if constexpr (!kNoSubnormals) {
        const auto subnormal = x < 1.17549435e-38f && x > 0.0f;
        x = subnormal ? x * 8388608.0f : x;
        bias = subnormal ? splat(150.0f) : bias;
    }
    const Bits bits = reinterpret_cast<Bits>(x);
    V<float> e = __builtin_convertvector(bits >> 23, V<float>) - bias;
    V<float> m = reinterpret_cast<V<float>>((bits & 0x007FFFFF) | 0x3F800000);  // in [1, 2)
    const auto above = m > 1.41421356f;
    m = above ? m * 0.5f : m;
    e = above ? e + 1.0f : e;
    // log m = log1p(f) = 2 atanh(s) with f = m - 1 (exact) and s = f / (2 + f); as 2s = f - s f,
    // log1p(f) = f - s (f - R), R = 2s^2/3 + 2s^4/5 + ...: the exact f carries the result, the rounding
    // falls on a correction of about f^2 / 2.
    V<float> f = m - 1.0f;
    if (excess) f = e == 0.0f ? *excess : f;
    const V<float> sf = f / (f + 2.0f);
    const V<float> z = sf * sf;
    V<float> r = splat(2.0f / 9.0f);
    r = r * z + 2.0f / 7.0f;
    r = r * z + 2.0f / 5.0f;
    r = r * z + 2.0f / 3.0f;
    r = r * z;
    const V<float> result = e * 0.693359375f + ((f - sf * (f - r)) + e * -2.12194440e-4f);
    const V<float> inf = splat(__builtin_inff());
    V<float> special = x == inf ? inf : splat(__builtin_nanf(""));
    special = x < 1.17549435e-38f && x >= 0.0f ? -inf : special;
    return (x >= 1.17549435e-38f && x < inf) ? result : special;
}

// log for double lanes.
//   x > 0 and finite, subnormals included: <= 1.5 ulp (measured 1.18). +inf: +inf. 0: -inf.
//   x < 0, NaN: NaN. Subnormals are scaled by 2^52 first, as for float (log<true>: not).
template <bool kNoSubnormals = false>
XENTCPP_INLINE V<double> log(V<double> x, const V<double>* excess = nullptr) {
    using Bits = Vec<double>::bits;
    V<double> bias = splat(1023.0);
    if constexpr (!kNoSubnormals) {
        const auto subnormal = x < 2.2250738585072014e-308 && x > 0.0;
        x = subnormal ? x * 4503599627370496.0 : x;
        bias = subnormal ? splat(1075.0) : bias;
    }
    const Bits bits = reinterpret_cast<Bits>(x);
    V<double> e = __builtin_convertvector(bits >> 52, V<double>) - bias;
    V<double> m = reinterpret_cast<V<double>>((bits & 0x000FFFFFFFFFFFFFLL) | 0x3FF0000000000000LL);
    const auto above = m > 1.4142135623730951;
    m = above ? m * 0.5 : m;
    e = above ? e + 1.0 : e;
    V<double> f = m - 1.0;  // as for float: log1p(f) = f - s (f - R)
    if (excess) f = e == 0.0 ? *excess : f;
    const V<double> sf = f / (f + 2.0);
    const V<double> z = sf * sf;
    V<double> r = splat(2.0 / 21.0);
    r = r * z + 2.0 / 19.0;
    r = r * z + 2.0 / 17.0;
    r = r * z + 2.0 / 15.0;
    r = r * z + 2.0 / 13.0;
    r = r * z + 2.0 / 11.0;
    r = r * z + 2.0 / 9.0;
    r = r * z + 2.0 / 7.0;
    r = r * z + 2.0 / 5.0;
    r = r * z + 2.0 / 3.0;
    r = r * z;
    // e ln2 in two parts keeps the large-exponent results within an ulp.
    const V<double> result = e * 0.6931471803691238 + ((f - sf * (f - r)) + e * 1.9082149292705877e-10);
    const V<double> inf = splat(__builtin_inf());
    V<double> special = x == inf ? inf : splat(__builtin_nan(""));
    special = x < 2.2250738585072014e-308 && x >= 0.0 ? -inf : special;
    return (x >= 2.2250738585072014e-308 && x < inf) ? result : special;
}

// log1p_excess(x) = log(1 + x) for x >= 0, the excess of a sum of exponentials over its largest
// term's 1: log of u = 1 + x rounded, whose reduced argument f = u - 1 is replaced by x itself where
// u < sqrt(2) (there the exponent is 0, so that f is exactly what u - 1 stood for): the result keeps
// x's relative precision down to the smallest x, with no division beyond log's own. For u >= sqrt(2),
// u's rounding adds at most 1/2 eps to a result >= log(sqrt 2). <= 2.5 ulp (held by
// tests/cpp/test_vector_math.cpp). +inf: +inf; NaN: NaN. x < 0: not for it (log1p).
template <typename T>
XENTCPP_INLINE V<T> log1p_excess(V<T> x) {
    return log<true>(x + T(1), &x);
}

// expm1 = exp(x) - 1. |x| < 1/2: Taylor series (float to degree 9, double to degree 18: truncation
// below 2^-30 / 2^-62 of the result); beyond, exp(x) - 1 cancels at most 1.6 bits. <= 2.5 ulp (measured
// float 1.48 with FMA, 2.03 without; double 1.46 / 1.60); -inf: -1; +inf: +inf; NaN: NaN.
template <typename T>
inline V<T> expm1(V<T> x) {
    constexpr int degree = sizeof(T) == 4 ? 9 : 18;
    T inverse_factorial[degree + 1] = {};
    T f = 1;
    for (int k = 1; k <= degree; ++k) {
        f /= static_cast<T>(k);
        inverse_factorial[k] = f;
    }
    V<T> p = splat(inverse_factorial[degree]);
    for (int k = degree - 1; k >= 1; --k) p = p * x + inverse_factorial[k];
    const V<T> small = p * x;
    const V<T> large = exp(x) - T(1);
    const V<T> magnitude = x < T(0) ? -x : x;
    return magnitude < T(0.5) ? small : large;  // NaN: `large`, which is NaN
}

// log1p = log(1 + x), x >= -1. With u = 1 + x rounded, log(u) is corrected by the rounding of u:
// log1p(x) = log(u) - ((u - 1) - x) / u (to first order, exact enough: the correction is <= ulp/2).
// <= 2 ulp (measured 1.44 float, 1.46 double); -1: -inf; +inf: +inf; x < -1, NaN: NaN.
template <typename T>
inline V<T> log1p(V<T> x) {
    const V<T> u = x + T(1);
    const V<T> correction = u == T(0) ? splat(T(0)) : ((u - T(1)) - x) / u;
    const V<T> result = log<true>(u) - correction;  // u = 1 + x rounded: 0 or at least 2^-24 (2^-53)
    const V<T> inf = splat(std::numeric_limits<T>::infinity());
    return u == T(1) ? x : (u < inf ? result : u);  // tiny x: log1p(x) = x; +inf and NaN pass through
}

// tanh(x) = sign(x) * -expm1(-2|x|) / (2 + expm1(-2|x|)): no cancellation near 0, exactly +-1 far
// out. <= 3 ulp (measured 2.82 float, 2.42 double); +-inf: +-1; NaN: NaN.
template <typename T>
inline V<T> tanh(V<T> x) {
    const V<T> magnitude = x < T(0) ? -x : x;
    const V<T> e = expm1<T>(T(-2) * magnitude);
    const V<T> t = -e / (e + T(2));
    return x < T(0) ? -t : t;
}

}  // namespace xentcpp::simd::XENTCPP_TARGET
