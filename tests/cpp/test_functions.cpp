// The C++ API beyond float/double cross-entropy: half-precision storage (computed exactly as the
// float path on the widened values, then rounded once), the z-loss term, and functions.hpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include <xentcpp/functions.hpp>
#include <xentcpp/xentcpp.hpp>

#include "simd/half_bits.hpp"

namespace {

using xentcpp::Reduction;

std::vector<float> normals(std::size_t n, float scale, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(gen);
    return v;
}

std::vector<std::int64_t> labels(std::int64_t rows, std::int64_t classes, unsigned seed) {
    std::mt19937 gen(seed);
    std::vector<std::int64_t> y(static_cast<std::size_t>(rows));
    for (auto& v : y) v = static_cast<std::int64_t>(gen() % static_cast<unsigned>(classes));
    return y;
}

// Through the portable conversions, which test_half_bits.cpp holds to _Float16's bits.
xentcpp::float16 to_half(float f) { return {xentcpp::simd::double_to_half_bits(f)}; }

float from_half(xentcpp::float16 h) { return xentcpp::simd::half_bits_to_float(h.bits); }

// Every kernel path: few classes, one segment per row, several segments, a row split across threads.
class HalfPaths : public ::testing::TestWithParam<std::pair<std::int64_t, std::int64_t>> {};

TEST_P(HalfPaths, Float16IsTheFloatPathOnTheWidenedValuesRoundedOnce) {
    const auto [rows, classes] = GetParam();
    const std::size_t n = static_cast<std::size_t>(rows * classes);
    std::vector<float> raw = normals(n, 3.0f, 7);
    std::vector<xentcpp::float16> half(n);
    std::vector<float> widened(n);
    for (std::size_t i = 0; i < n; ++i) {
        half[i] = to_half(raw[i]);
        widened[i] = from_half(half[i]);
    }
    const std::vector<std::int64_t> y = labels(rows, classes, 11);
    xentcpp::Options<float> options;
    options.z_loss = 1e-3;
    options.reduction = Reduction::none;

    xentcpp::Problem<float> as_float{widened.data(), rows, classes, y.data(), nullptr};
    std::vector<float> losses(static_cast<std::size_t>(rows)), grad(n);
    const double total = xentcpp::value_and_grad<float>(as_float, options, losses.data(), grad.data());

    xentcpp::Problem<xentcpp::float16> as_half{half.data(), rows, classes, y.data(), nullptr};
    std::vector<float> half_losses(static_cast<std::size_t>(rows));
    std::vector<xentcpp::float16> half_grad(n);
    const double half_total =
        xentcpp::value_and_grad<xentcpp::float16>(as_half, options, half_losses.data(), half_grad.data());

    EXPECT_EQ(total, half_total);
    EXPECT_EQ(losses, half_losses);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(half_grad[i].bits, to_half(grad[i]).bits) << i;
}

INSTANTIATE_TEST_SUITE_P(Core, HalfPaths,
                         ::testing::Values(std::make_pair(std::int64_t{37}, std::int64_t{10}),
                                           std::make_pair(std::int64_t{9}, std::int64_t{1000}),
                                           std::make_pair(std::int64_t{5}, std::int64_t{70000}),
                                           std::make_pair(std::int64_t{1}, std::int64_t{70000})));

TEST(ZLoss, AddsLambdaLseSquaredAndItsGradient) {
    const std::vector<double> x = {1.0, 2.0, 3.0, -1.0, 0.5, 0.0};
    const std::vector<std::int64_t> y = {2, -100};  // the second row is ignored
    xentcpp::Problem<double> problem{x.data(), 2, 3, y.data(), nullptr};
    xentcpp::Options<double> options;
    options.z_loss = 0.1;
    std::vector<double> grad(6);
    const xentcpp::GradRequest<double> request{grad.data(), 1.0, nullptr};
    const xentcpp::Totals totals = xentcpp::compute<double>(problem, options, nullptr, &request);
    const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
    EXPECT_NEAR(totals.z_loss, 0.1 * lse * lse, 1e-14);
    EXPECT_NEAR(totals.loss, (lse - 3.0) + 0.1 * lse * lse, 1e-14);
    for (int c = 0; c < 3; ++c) {
        const double p = std::exp(x[static_cast<std::size_t>(c)] - lse);
        EXPECT_NEAR(grad[static_cast<std::size_t>(c)], p * (1.0 + 0.2 * lse) - (c == 2 ? 1.0 : 0.0), 1e-14);
        EXPECT_EQ(grad[static_cast<std::size_t>(3 + c)], 0.0);
    }
}

TEST(Functions, SoftmaxFamilyRowsAndColumnsAgree) {
    // x as (outer 2, classes 5, inner 3); the same numbers transposed to rows of 5 classes.
    const std::vector<double> x = [] {
        std::vector<float> f = normals(30, 4.0f, 3);
        return std::vector<double>(f.begin(), f.end());
    }();
    std::vector<double> rows(30);
    for (int o = 0; o < 2; ++o)
        for (int c = 0; c < 5; ++c)
            for (int i = 0; i < 3; ++i) rows[static_cast<std::size_t>((o * 3 + i) * 5 + c)] = x[static_cast<std::size_t>((o * 5 + c) * 3 + i)];
    std::vector<double> lse_columns(6), lse_rows(6), p_columns(30), p_rows(30), lp_rows(30);
    xentcpp::logsumexp(x.data(), {2, 5, 3}, lse_columns.data());
    xentcpp::logsumexp(rows.data(), {6, 5, 1}, lse_rows.data());
    xentcpp::softmax(x.data(), {2, 5, 3}, p_columns.data());
    xentcpp::softmax(rows.data(), {6, 5, 1}, p_rows.data());
    xentcpp::log_softmax(rows.data(), {6, 5, 1}, lp_rows.data());
    for (int o = 0; o < 2; ++o) {
        for (int i = 0; i < 3; ++i) {
            const std::size_t r = static_cast<std::size_t>(o * 3 + i);
            EXPECT_NEAR(lse_columns[static_cast<std::size_t>(o * 3 + i)], lse_rows[r], 1e-13);
            double sum = 0.0;
            for (int c = 0; c < 5; ++c) {
                const std::size_t at = r * 5 + static_cast<std::size_t>(c);
                EXPECT_NEAR(p_columns[static_cast<std::size_t>((o * 5 + c) * 3 + i)], p_rows[at], 1e-15);
                EXPECT_NEAR(lp_rows[at], rows[at] - lse_rows[r], 1e-13);
                sum += p_rows[at];
            }
            EXPECT_NEAR(sum, 1.0, 1e-15);
        }
    }
}

// Rows of up to 32 classes take the lanes-own-rows kernel (groups of a vector's lanes, a partial
// group at the end): every class count around the vector widths, against a double reference.
template <typename T>
void check_few_classes_against_double() {
    const double eps = std::numeric_limits<T>::epsilon();
    for (const std::int64_t n : {1, 2, 3, 5, 7, 8, 10, 16, 17, 31, 32, 33}) {
        for (const std::int64_t rows : {1, 7, 16, 17, 40}) {
            const std::size_t size = static_cast<std::size_t>(rows * n);
            const std::vector<float> f = normals(size, 5.0f, static_cast<unsigned>(n * 100 + rows));
            std::vector<T> x(f.begin(), f.end());
            for (std::size_t i = 3; i < size; i += 7) x[i] = -std::numeric_limits<T>::infinity();  // masked
            std::vector<T> lse(static_cast<std::size_t>(rows)), p(size), lp(size), in_place = x;
            xentcpp::logsumexp(x.data(), {rows, n, 1}, lse.data());
            xentcpp::softmax(x.data(), {rows, n, 1}, p.data());
            xentcpp::log_softmax(x.data(), {rows, n, 1}, lp.data());
            xentcpp::softmax(in_place.data(), {rows, n, 1}, in_place.data());
            for (std::int64_t r = 0; r < rows; ++r) {
                const T* row = x.data() + r * n;
                double m = -std::numeric_limits<double>::infinity(), s = 0.0;
                for (std::int64_t c = 0; c < n; ++c) m = std::max(m, static_cast<double>(row[c]));
                for (std::int64_t c = 0; c < n; ++c) s += std::exp(static_cast<double>(row[c]) - m);
                const double want = m + std::log(s);
                const std::size_t ri = static_cast<std::size_t>(r);
                if (m == -std::numeric_limits<double>::infinity()) {
                    EXPECT_EQ(lse[ri], -std::numeric_limits<T>::infinity()) << n << " classes, row " << r;
                    continue;
                }
                // Within 4 ulp of the row's scale: the larger of 1, |lse| and its largest |logit|.
                double scale = std::max(1.0, std::abs(want));
                for (std::int64_t c = 0; c < n; ++c) {
                    if (std::isfinite(row[c])) scale = std::max(scale, std::abs(static_cast<double>(row[c])));
                }
                const double tolerance = 4 * eps * scale;
                EXPECT_NEAR(lse[ri], want, tolerance) << n << " classes, row " << r;
                for (std::int64_t c = 0; c < n; ++c) {
                    const std::size_t at = static_cast<std::size_t>(r * n + c);
                    const double lp_want = static_cast<double>(row[c]) - want;
                    EXPECT_NEAR(p[at], std::exp(lp_want), tolerance) << n << " classes, row " << r;
                    if (std::isinf(lp_want)) EXPECT_EQ(lp[at], lp_want);
                    else EXPECT_NEAR(lp[at], lp_want, tolerance) << n << " classes, row " << r;
                    EXPECT_EQ(in_place[at], p[at]);
                }
            }
        }
    }
}

TEST(Functions, SoftmaxFamilyOfFewClassesMatchesADoubleReference) {
    check_few_classes_against_double<float>();
    check_few_classes_against_double<double>();
}

TEST(Functions, SoftmaxFamilyOfFewClassesKeepsNonFiniteRowsApart) {
    constexpr float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // 20 rows of 3 (a full group of 16 and a partial one on AVX-512): NaN, +inf, all -inf, and finite.
    std::vector<float> x;
    for (int r = 0; r < 20; ++r) {
        const std::vector<std::vector<float>> kinds = {{nan, 1, 2}, {inf, 1, 2}, {-inf, -inf, -inf}, {1, 2, 3}};
        const auto& row = kinds[static_cast<std::size_t>(r % 4)];
        x.insert(x.end(), row.begin(), row.end());
    }
    std::vector<float> lse(20), p(60);
    xentcpp::logsumexp(x.data(), {20, 3, 1}, lse.data());
    xentcpp::softmax(x.data(), {20, 3, 1}, p.data());
    for (std::size_t r = 0; r < 20; ++r) {
        switch (r % 4) {
            case 0: EXPECT_TRUE(std::isnan(lse[r])); break;
            case 1: EXPECT_EQ(lse[r], inf); break;
            case 2: EXPECT_EQ(lse[r], -inf); break;
            default: EXPECT_NEAR(lse[r], 3.4076059644443806, 1e-6);
        }
        for (std::size_t c = 0; c < 3; ++c) {
            if (r % 4 == 3) EXPECT_NEAR(p[r * 3 + c], std::exp(x[r * 3 + c] - 3.4076059644443806), 1e-7);
            else EXPECT_TRUE(std::isnan(p[r * 3 + c])) << "row " << r;  // no distribution
        }
    }
}

TEST(Functions, NllBinaryAndInformation) {
    const std::vector<double> lp = {std::log(0.5), std::log(0.25), std::log(0.25)};
    const std::vector<std::int64_t> y = {1};
    EXPECT_NEAR(xentcpp::nll_loss<double>(lp.data(), 1, 3, y.data(), nullptr, -100,
                                  Reduction::mean, nullptr, nullptr),
                std::log(4.0), 1e-15);
    const std::vector<std::int64_t> bad = {3};
    EXPECT_THROW(xentcpp::nll_loss<double>(lp.data(), 1, 3, bad.data(), nullptr, -100,
                                   Reduction::sum, nullptr, nullptr),
                 std::out_of_range);

    const std::vector<double> x = {0.0, 1e4, -1e4}, t = {1.0, 0.0, 0.0};
    std::vector<double> losses(3);
    xentcpp::binary_cross_entropy_with_logits<double>(x.data(), t.data(), 1, 3, nullptr, nullptr,
                                              nullptr, Reduction::none, losses.data(), nullptr);
    EXPECT_NEAR(losses[0], std::log(2.0), 1e-15);
    EXPECT_EQ(losses[1], 1e4);
    EXPECT_EQ(losses[2], 0.0);

    const std::vector<double> p = {0.25, 0.25, 0.25, 0.25, 1.0, 0.0, 0.0, 0.0};
    std::vector<double> h(2), kl(2);
    xentcpp::entropy(p.data(), 2, 4, h.data());
    EXPECT_NEAR(h[0], std::log(4.0), 1e-15);
    EXPECT_EQ(h[1], 0.0);
    const std::vector<double> q = {0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 0.0, 0.0};
    xentcpp::kl_div(p.data(), q.data(), 2, 4, kl.data());
    EXPECT_EQ(kl[0], 0.0);
    EXPECT_NEAR(kl[1], std::log(2.0), 1e-15);
}

}  // namespace
