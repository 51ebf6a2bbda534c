// Built in sanitizer builds only (XENTCPP_SANITIZE): shows that the sanitizer job sees memory errors
// where they would matter, inside the SIMD kernels and the driver, for every kernel path. The bug is
// the caller's, not the core's: a buffer one element shorter than the rows × classes it claims. The
// core must then read (or write) past the end, and AddressSanitizer must stop the process with a
// report of the access. If this test fails, the sanitizer job is blind, not the core wrong.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "xentcpp/xentcpp.hpp"

namespace {

using Index = std::int64_t;

// ASan names a vector access that straddles the end "unknown-crash" and an access wholly past it
// "heap-buffer-overflow"; either way it reports the access and where it lands.
constexpr const char* kReadPastEnd = "READ of size [0-9]+ at .* to the right of [0-9]+-byte region";
constexpr const char* kWritePastEnd = "WRITE of size [0-9]+ at .* to the right of [0-9]+-byte region";

// Shapes that take each path: few classes (lanes own rows), rows of one segment, one row split in segments.
struct Shape {
    Index rows, classes;
};
constexpr Shape kShapes[] = {{5, 7}, {4, 1000}, {1, 70001}};

template <typename T>
void loss_with_short_input(Shape s) {
    std::vector<T> x(static_cast<std::size_t>(s.rows * s.classes - 1), T(0.25));
    std::vector<std::int64_t> y(static_cast<std::size_t>(s.rows), 0);
    xentcpp::Problem<T> p{x.data(), s.rows, s.classes, y.data(), nullptr};
    xentcpp::Options<T> o;
    o.reduction = xentcpp::Reduction::sum;
    (void)xentcpp::loss<T>(p, o, nullptr);
}

template <typename T>
void grad_into_short_buffer(Shape s) {
    const auto n = static_cast<std::size_t>(s.rows * s.classes);
    std::vector<T> x(n, T(0.25)), g(n - 1);
    std::vector<std::int64_t> y(static_cast<std::size_t>(s.rows), 0);
    xentcpp::Problem<T> p{x.data(), s.rows, s.classes, y.data(), nullptr};
    xentcpp::Options<T> o;
    xentcpp::GradRequest<T> r;
    r.grad = g.data();
    xentcpp::grad<T>(p, o, r);
}

template <typename T>
class SanitizerCanary : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SanitizerCanary, Types);

TYPED_TEST(SanitizerCanary, ReadPastTheInputIsReported) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");  // the core may have started OpenMP threads
    for (const Shape s : kShapes) {
        EXPECT_DEATH(loss_with_short_input<TypeParam>(s), kReadPastEnd)
            << s.rows << " x " << s.classes;
    }
}

TYPED_TEST(SanitizerCanary, WritePastTheGradientIsReported) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    for (const Shape s : kShapes) {
        EXPECT_DEATH(grad_into_short_buffer<TypeParam>(s), kWritePastEnd)
            << s.rows << " x " << s.classes;
    }
}

}  // namespace
