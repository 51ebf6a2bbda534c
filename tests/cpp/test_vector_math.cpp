// The vector exp, log, expm1, log1p and tanh of every SIMD target this CPU runs, against libm in higher precision.
// The fast suite walks every 61st float of each range (about 35 million values); XENTCPP_EXHAUSTIVE=1
// walks every float (a few minutes). The bounds are those stated in csrc/simd/vector_math.hpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "simd/exp_table.hpp"
#include "simd/probes.hpp"

namespace {

using xentcpp::simd::VectorMathHooks;
using xentcpp::simd::vector_math_hooks_for;
using xentcpp::simd::Target;
using xentcpp::simd::target_name;
using xentcpp::simd::target_supported;

std::vector<Target> supported_targets() {
    std::vector<Target> out;
    for (Target t : {Target::avx512, Target::avx2, Target::baseline}) {
        if (target_supported(t)) out.push_back(t);
    }
    return out;
}

std::uint32_t float_stride() { return std::getenv("XENTCPP_EXHAUSTIVE") ? 1u : 61u; }

// Error of `got` in units of the last place of the correctly rounded float result.
double ulp_error(float got, double want) {
    const float rounded = static_cast<float>(want);
    double ulp = std::nextafter(std::fabs(rounded), std::numeric_limits<float>::infinity()) - std::fabs(rounded);
    return std::fabs(static_cast<double>(got) - want) / ulp;
}

double ulp_error(double got, long double want) {
    const double rounded = static_cast<double>(want);
    const double ulp = std::nextafter(std::fabs(rounded), std::numeric_limits<double>::infinity()) - std::fabs(rounded);
    return static_cast<double>(std::fabs(static_cast<long double>(got) - want) / ulp);
}

float from_bits(std::uint32_t bits) {
    float x;
    std::memcpy(&x, &bits, sizeof x);
    return x;
}

// Max ulp error of f over the floats in [lo, hi] (walked by bit pattern, both signs).
template <typename Vector, typename Reference>
double worst_float_error(Vector f, Reference reference, float lo, float hi) {
    std::vector<float> x, y;
    double worst = 0.0;
    const auto flush = [&] {
        y.resize(x.size());
        f(x.data(), static_cast<std::int64_t>(x.size()), y.data());
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double e = ulp_error(y[i], reference(static_cast<double>(x[i])));
            worst = e > worst ? e : worst;
        }
        x.clear();
    };
    const std::uint32_t stride = float_stride();
    for (std::uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += stride) {
        const float v = from_bits(static_cast<std::uint32_t>(bits));
        if (!(v >= lo && v <= hi)) continue;
        x.push_back(v);
        if (x.size() == (1u << 22)) flush();
    }
    flush();
    return worst;
}

template <typename T>
std::vector<T> apply(void (*f)(const T*, std::int64_t, T*), std::vector<T> x) {
    std::vector<T> y(x.size());
    f(x.data(), static_cast<std::int64_t>(x.size()), y.data());
    return y;
}

TEST(VectorMath, FloatExpWithinTwoUlp) {
    for (Target t : supported_targets()) {
        const VectorMathHooks<float>& k = vector_math_hooks_for<float>(t);
        const double worst = worst_float_error(k.exp, [](double v) { return std::exp(v); }, -87.33f, 88.37f);
        EXPECT_LE(worst, 2.0) << target_name(t);
    }
}

// exp_sum, the exp of the forward's sums, over its domain x <= 0 (normal results); the terms that
// make a sum, [-8, 0], within 2e-7 relative.
TEST(VectorMath, FloatExpSumWithinFiveUlp) {
    for (Target t : supported_targets()) {
        const VectorMathHooks<float>& k = vector_math_hooks_for<float>(t);
        const double worst = worst_float_error(k.exp_sum, [](double v) { return std::exp(v); }, -87.33f, 0.0f);
        EXPECT_LE(worst, 5.0) << target_name(t);
        std::vector<float> x;
        for (float v = -8.0f; v <= 0.0f; v += 1.2207031e-4f) x.push_back(v);
        const std::vector<float> y = apply(k.exp_sum, x);
        double relative = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double want = std::exp(static_cast<double>(x[i]));
            relative = std::max(relative, std::fabs(static_cast<double>(y[i]) - want) / want);
        }
        EXPECT_LE(relative, 2e-7) << target_name(t);
        // Gradual underflow: a term below the smallest normal number is rounded once, not dropped
        // (such terms are the whole loss of a row near the underflow).
        double below = 0.0;
        for (float v = -103.9f; v < -87.34f; v += 1.0e-3f) {
            const double want = std::exp(static_cast<double>(v));
            const double got = static_cast<double>(apply(k.exp_sum, {v})[0]);
            below = std::max(below, std::fabs(got - want) / (0x1p-149 + 5.0 * 0x1p-23 * want));
        }
        EXPECT_LE(below, 1.0) << target_name(t);
        const float inf = std::numeric_limits<float>::infinity();
        const std::vector<float> e = apply(k.exp_sum, {-inf, std::numeric_limits<float>::quiet_NaN(), -1e6f, 0.0f, -0.0f});
        EXPECT_EQ(e[0], 0.0f) << target_name(t);  // masked classes add nothing
        EXPECT_TRUE(std::isnan(e[1])) << target_name(t);
        EXPECT_EQ(e[2], 0.0f) << target_name(t);
        EXPECT_EQ(e[3], 1.0f) << target_name(t);
        EXPECT_EQ(e[4], 1.0f) << target_name(t);
        std::printf("exp_sum %s: %.3f ulp on [-87.33, 0], %.3g relative on [-8, 0]\n", target_name(t), worst, relative);
    }
}

TEST(VectorMath, FloatLogWithinOneAndAHalfUlp) {
    for (Target t : supported_targets()) {
        const VectorMathHooks<float>& k = vector_math_hooks_for<float>(t);
        const double worst = worst_float_error(k.log, [](double v) { return std::log(v); },
                                               std::numeric_limits<float>::denorm_min(),
                                               std::numeric_limits<float>::max());
        EXPECT_LE(worst, 1.5) << target_name(t);
        // Every subnormal (the walk above samples them): the entropy of p = 1e-40 is not -inf.
        std::vector<float> x;
        for (std::uint32_t bits = 1; bits < 0x00800000u; ++bits) x.push_back(from_bits(bits));
        const std::vector<float> y = apply(k.log, x);
        double subnormal_worst = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            subnormal_worst = std::max(subnormal_worst, ulp_error(y[i], std::log(static_cast<double>(x[i]))));
        }
        EXPECT_LE(subnormal_worst, 1.5) << "subnormals, " << target_name(t);
    }
}

TEST(VectorMath, DoubleExpAndLogWithinBounds) {
    for (Target t : supported_targets()) {
        const VectorMathHooks<double>& k = vector_math_hooks_for<double>(t);
        std::vector<double> x;
        for (double v = -708.39; v < 709.43; v += 7.3e-4) x.push_back(v);
        std::vector<double> y = apply(k.exp, x);
        double worst = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, ulp_error(y[i], std::exp(static_cast<long double>(x[i]))));
        EXPECT_LE(worst, 1.5) << "exp " << target_name(t);

        x.clear();
        for (double v = 2.3e-308; v < 1e308; v *= 1.0001234) x.push_back(v);
        for (std::uint64_t m = 1; m < (std::uint64_t{1} << 52); m += m / 1000 + 1) {  // subnormals, as bits
            double v;
            std::memcpy(&v, &m, sizeof v);
            x.push_back(v);
        }
        y = apply(k.log, x);
        worst = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, ulp_error(y[i], std::log(static_cast<long double>(x[i]))));
        EXPECT_LE(worst, 1.5) << "log " << target_name(t);
    }
}

// exp_sum for double lanes over its domain x <= 0: every 2^-14 of [-708.39, 0] and a geometric walk
// towards 0 (normal results), then the underflow and the special values; its table correctly rounded.
TEST(VectorMath, DoubleExpSumWithinTwoUlp) {
    for (int j = 0; j < 16; ++j) {
        EXPECT_EQ(xentcpp::simd::kExp2Sixteenths[j], static_cast<double>(std::exp2(static_cast<long double>(j) / 16))) << j;
    }
    std::vector<double> x;
    for (double v = -708.39; v <= 0.0; v += 0x1p-14) x.push_back(v);
    for (double v = -1e-300; v > -1.0; v *= 1.0007) x.push_back(v);
    for (Target t : supported_targets()) {
        const VectorMathHooks<double>& k = vector_math_hooks_for<double>(t);
        const std::vector<double> y = apply(k.exp_sum, x);
        double worst = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, ulp_error(y[i], std::exp(static_cast<long double>(x[i]))));
        EXPECT_LE(worst, 2.0) << target_name(t);
        constexpr double inf = std::numeric_limits<double>::infinity();
        const std::vector<double> e =
            apply(k.exp_sum, {-inf, std::numeric_limits<double>::quiet_NaN(), -1e6, 0.0, -0.0, -720.0, -745.0, -746.0});
        EXPECT_EQ(e[0], 0.0) << target_name(t);
        EXPECT_TRUE(std::isnan(e[1])) << target_name(t);
        EXPECT_EQ(e[2], 0.0) << target_name(t);
        EXPECT_EQ(e[3], 1.0) << target_name(t);
        EXPECT_EQ(e[4], 1.0) << target_name(t);
        const double denorm = std::numeric_limits<double>::denorm_min();
        if (t == Target::avx512) {  // vscalef: gradual underflow; the others (exp<true>): 0 below -708.74
            EXPECT_NEAR(e[5], static_cast<double>(std::exp(-720.0L)), 2 * denorm) << target_name(t);
            EXPECT_NEAR(e[6], static_cast<double>(std::exp(-745.0L)), 2 * denorm) << target_name(t);
        } else {
            EXPECT_EQ(e[5], 0.0) << target_name(t);
            EXPECT_EQ(e[6], 0.0) << target_name(t);
        }
        EXPECT_EQ(e[7], 0.0) << target_name(t);
        std::printf("double exp_sum %s: %.3f ulp on [-708.39, 0]\n", target_name(t), worst);
    }
}

template <typename T>
void expect_specials(const VectorMathHooks<T>& k, const char* name) {
    constexpr T inf = std::numeric_limits<T>::infinity();
    const std::vector<T> e = apply(k.exp, {-inf, inf, std::numeric_limits<T>::quiet_NaN(), T(-1e6), T(0), T(1e6)});
    EXPECT_EQ(e[0], T(0)) << name;
    EXPECT_EQ(e[1], inf) << name;
    EXPECT_TRUE(std::isnan(e[2])) << name;
    EXPECT_EQ(e[3], T(0)) << name;
    EXPECT_EQ(e[4], T(1)) << name;
    EXPECT_EQ(e[5], inf) << name;
    const std::vector<T> l = apply(k.log, {T(0), inf, std::numeric_limits<T>::quiet_NaN(), T(-1), T(1)});
    EXPECT_EQ(l[0], -inf) << name;
    EXPECT_EQ(l[1], inf) << name;
    EXPECT_TRUE(std::isnan(l[2])) << name;
    EXPECT_TRUE(std::isnan(l[3])) << name;
    EXPECT_EQ(l[4], T(0)) << name;
}

TEST(VectorMath, SpecialValues) {
    for (Target t : supported_targets()) {
        expect_specials(vector_math_hooks_for<float>(t), target_name(t));
        expect_specials(vector_math_hooks_for<double>(t), target_name(t));
    }
}

TEST(VectorMath, FloatExpUnderflowsGraduallyThenToZero) {
    // AVX-512 scales by 2^n with vscalef: subnormal results all the way down. The other targets
    // build 2^n in the exponent bits: subnormals down to -87.68, then 0 (as vector_math.hpp says).
    for (Target t : supported_targets()) {
        const std::vector<float> y = apply(vector_math_hooks_for<float>(t).exp, {-87.5f, -87.7f, -100.0f, -104.0f});
        const float denorm = std::numeric_limits<float>::denorm_min();
        EXPECT_NEAR(y[0], std::exp(-87.5), 2 * denorm) << target_name(t);
        if (t == Target::avx512) {
            EXPECT_NEAR(y[1], std::exp(static_cast<double>(-87.7f)), 2 * denorm) << target_name(t);
            EXPECT_NEAR(y[2], std::exp(-100.0), 2 * denorm) << target_name(t);
        } else {
            EXPECT_EQ(y[1], 0.0f) << target_name(t);
            EXPECT_EQ(y[2], 0.0f) << target_name(t);
        }
        EXPECT_EQ(y[3], 0.0f) << target_name(t);
    }
}

// expm1, log1p and tanh (softcap, binary cross-entropy, KL): the bounds of vector_math.hpp.
TEST(VectorMath, FloatExpm1Log1pTanhWithinBounds) {
    constexpr float kMax = std::numeric_limits<float>::max();
    for (Target t : supported_targets()) {
        const VectorMathHooks<float>& k = vector_math_hooks_for<float>(t);
        EXPECT_LE(worst_float_error(k.expm1, [](double v) { return std::expm1(v); }, -104.0f, 88.37f), 2.5)
            << "expm1 " << target_name(t);
        EXPECT_LE(worst_float_error(k.log1p, [](double v) { return std::log1p(v); }, -0.99999994f, kMax), 2.0)
            << "log1p " << target_name(t);
        EXPECT_LE(worst_float_error(k.tanh, [](double v) { return std::tanh(v); }, -kMax, kMax), 3.0)
            << "tanh " << target_name(t);
        const double excess = worst_float_error(k.log1p_excess, [](double v) { return std::log1p(v); }, 0.0f, kMax);
        EXPECT_LE(excess, 2.5) << "log1p_excess " << target_name(t);
        std::printf("log1p_excess %s: %.3f ulp on [0, max]\n", target_name(t), excess);
    }
}

TEST(VectorMath, DoubleExpm1Log1pTanhWithinBounds) {
    const auto worst = [](void (*f)(const double*, std::int64_t, double*), long double (*reference)(long double),
                          const std::vector<double>& x) {
        const std::vector<double> y = apply(f, x);
        double w = 0.0;
        for (std::size_t i = 0; i < x.size(); ++i) w = std::max(w, ulp_error(y[i], reference(x[i])));
        return w;
    };
    std::vector<double> symmetric, above_minus_one;
    for (double v = 1e-300; v < 700.0; v *= 1.000731) {
        symmetric.push_back(v);
        symmetric.push_back(-v);
        above_minus_one.push_back(v);
        if (v < 1.0) above_minus_one.push_back(-v);
    }
    for (Target t : supported_targets()) {
        const VectorMathHooks<double>& k = vector_math_hooks_for<double>(t);
        EXPECT_LE(worst(k.expm1, [](long double v) { return std::expm1(v); }, symmetric), 2.5) << target_name(t);
        EXPECT_LE(worst(k.log1p, [](long double v) { return std::log1p(v); }, above_minus_one), 2.0) << target_name(t);
        EXPECT_LE(worst(k.tanh, [](long double v) { return std::tanh(v); }, symmetric), 3.0) << target_name(t);
        std::vector<double> non_negative;
        for (double v = 1e-300; v < 1e300; v *= 1.000731) non_negative.push_back(v);
        non_negative.push_back(0.0);
        const double excess = worst(k.log1p_excess, [](long double v) { return std::log1p(v); }, non_negative);
        EXPECT_LE(excess, 2.5) << "log1p_excess " << target_name(t);
        std::printf("log1p_excess %s (double): %.3f ulp on [0, 1e300]\n", target_name(t), excess);
    }
}

template <typename T>
void expect_more_specials(const VectorMathHooks<T>& k, const char* name) {
    constexpr T inf = std::numeric_limits<T>::infinity();
    const T nan = std::numeric_limits<T>::quiet_NaN();
    const std::vector<T> e = apply(k.expm1, {-inf, inf, nan, T(0), T(-1e6)});
    EXPECT_EQ(e[0], T(-1)) << name;
    EXPECT_EQ(e[1], inf) << name;
    EXPECT_TRUE(std::isnan(e[2])) << name;
    EXPECT_EQ(e[3], T(0)) << name;
    EXPECT_EQ(e[4], T(-1)) << name;
    const std::vector<T> l = apply(k.log1p, {T(-1), inf, nan, T(-2), T(0)});
    EXPECT_EQ(l[0], -inf) << name;
    EXPECT_EQ(l[1], inf) << name;
    EXPECT_TRUE(std::isnan(l[2])) << name;
    EXPECT_TRUE(std::isnan(l[3])) << name;
    EXPECT_EQ(l[4], T(0)) << name;
    const std::vector<T> x = apply(k.log1p_excess, {T(0), inf, nan, std::numeric_limits<T>::denorm_min(), T(-1)});
    EXPECT_EQ(x[0], T(0)) << name;
    EXPECT_EQ(x[1], inf) << name;
    EXPECT_TRUE(std::isnan(x[2])) << name;
    EXPECT_EQ(x[3], std::numeric_limits<T>::denorm_min()) << name;  // log1p(x) = x, to the last subnormal
    EXPECT_EQ(x[4], -inf) << name;  // the sum of a row of -inf only: 0 - 1
    const std::vector<T> h = apply(k.tanh, {-inf, inf, nan, T(0), T(-1e6)});
    EXPECT_EQ(h[0], T(-1)) << name;
    EXPECT_EQ(h[1], T(1)) << name;
    EXPECT_TRUE(std::isnan(h[2])) << name;
    EXPECT_EQ(h[3], T(0)) << name;
    EXPECT_EQ(h[4], T(-1)) << name;
}

TEST(VectorMath, MoreSpecialValues) {
    for (Target t : supported_targets()) {
        expect_more_specials(vector_math_hooks_for<float>(t), target_name(t));
        expect_more_specials(vector_math_hooks_for<double>(t), target_name(t));
    }
}

TEST(Dispatch, TheBaselineIsAlwaysThereAndTheActiveTargetRuns) {
    EXPECT_TRUE(target_supported(Target::baseline));
    EXPECT_TRUE(target_supported(xentcpp::simd::active_target()));
}

}  // namespace
