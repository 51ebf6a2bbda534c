// The small-class path (lanes own rows): every class count it takes, with enough rows for several
// full groups of rows (the in-register transposes) and a partial last group, against the float64
// reference; losses, gradients and the in-place gradient. ctest runs it under every SIMD target.
#include "reference.hpp"

namespace {

using namespace xent_test;

// 3 full groups of 16 rows (the widest vector of floats) and 5 more: every target has full groups
// and a partial one.
constexpr Index kRows = 53;
constexpr Index kMaxSmallClasses = 32;

// The reference gradient of the summed loss for class-index targets:
// w_y ((1 - a) (p - onehot_y)) + (a / C) (W p - w), for the rows not ignored.
std::vector<double> ref_grad_sum(const Case<double>& c) {
    const RefOptions o = c.ref_options();
    double total_weight = 0.0;
    for (Index k = 0; k < c.classes; ++k) total_weight += o.w(k);
    const double spread = o.smoothing / static_cast<double>(c.classes);
    std::vector<double> g(c.input.size(), 0.0);
    for (Index r = 0; r < c.rows; ++r) {
        const Index y = c.labels[sz(r)];
        if (y == o.ignore_index) continue;
        const std::vector<double> p = ref_softmax(c.input.data() + r * c.classes, c.classes);
        const double nll = (1.0 - o.smoothing) * o.w(y);
        for (Index k = 0; k < c.classes; ++k) {
            double v = p[sz(k)] * (nll + spread * total_weight) - spread * o.w(k);
            if (k == y) v -= nll;
            g[sz(r * c.classes + k)] = v;
        }
    }
    return g;
}

template <typename T>
class SmallRows : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(SmallRows, Types);

template <typename T>
void expect_matches_reference(const Case<T>& c) {
    const Case<double> d = c.template as<double>();
    EXPECT_TRUE(all_close(c.row_losses(), c.ref_rows(), tol<T>()));
    EXPECT_TRUE(all_close(c.grad(Reduction::sum), ref_grad_sum(d), tol<T>()));
    Case<T> in_place = c;
    xentcpp::GradRequest<T> request;
    request.grad = in_place.input.data();
    xentcpp::grad<T>(in_place.problem(), in_place.options(Reduction::sum), request);
    EXPECT_TRUE(bitwise_equal(in_place.input, c.grad(Reduction::sum)));
}

TYPED_TEST(SmallRows, EveryClassCountMatchesReference) {
    using T = TypeParam;
    for (Index classes = 1; classes <= kMaxSmallClasses; ++classes) {
        SCOPED_TRACE(::testing::Message() << kRows << " x " << classes);
        expect_matches_reference(random_index_case<T>(kRows, classes, 500 + static_cast<std::uint64_t>(classes)));
    }
}

TYPED_TEST(SmallRows, WeightsSmoothingAndIgnoredRowsMatchReference) {
    using T = TypeParam;
    for (Index classes : {2, 3, 5, 8, 10, 16, 17, 32}) {
        SCOPED_TRACE(::testing::Message() << kRows << " x " << classes);
        Case<T> c = random_index_case<T>(kRows, classes, 700 + static_cast<std::uint64_t>(classes));
        c.weight = cast<T>(random_probabilities(classes, 0.25, 2.0, 800 + static_cast<std::uint64_t>(classes)));
        c.smoothing = 0.1;
        for (Index r = 0; r < kRows; r += 5) c.labels[sz(r)] = -100;
        expect_matches_reference(c);
    }
}

// Rows of every group are whole vectors apart only by chance: a group's loads and stores must not
// touch the rows around it (the buffer's neighbours keep their values).
TYPED_TEST(SmallRows, GradientStaysInsideItsRows) {
    using T = TypeParam;
    for (Index classes : {1, 3, 10, 17}) {
        SCOPED_TRACE(::testing::Message() << kRows << " x " << classes);
        const Case<T> c = random_index_case<T>(kRows, classes, 900 + static_cast<std::uint64_t>(classes));
        const Index n = kRows * classes;
        std::vector<T> padded(sz(n + 64), kUnwritten<T>);
        xentcpp::GradRequest<T> request;
        request.grad = padded.data() + 32;
        xentcpp::grad<T>(c.problem(), c.options(Reduction::sum), request);
        for (Index i = 0; i < 32; ++i) {
            EXPECT_EQ(padded[sz(i)], kUnwritten<T>);
            EXPECT_EQ(padded[sz(n + 32 + i)], kUnwritten<T>);
        }
        const std::vector<T> inside(padded.begin() + 32, padded.begin() + 32 + n);
        EXPECT_TRUE(bitwise_equal(inside, c.grad(Reduction::sum)));
    }
}

}  // namespace
