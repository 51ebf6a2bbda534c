// Gradients: against central finite differences of `loss` in double, float against double,
// value_and_grad against loss + grad, in-place gradients, ignored rows.
#include "reference.hpp"

namespace {

using namespace xent_test;

// ---------------------------------------------------------------------------------------------
// Finite differences (double).

const std::vector<double> kPerRow = {0.5, -1.0, 2.0, 0.25, 1.5, 3.0, -0.75, 1.25};  // grad_output rows
constexpr double kUpstream = 0.7;                                                  // grad_output scalar

// The function whose gradient `grad` computes: upstream * loss, or sum_r upstream[r] * loss[r].
double objective(const Case<double>& c, Reduction r) {
    if (r != Reduction::none) return kUpstream * c.loss(r);
    const std::vector<double> rows = c.row_losses();
    double f = 0.0;
    for (std::size_t i = 0; i < rows.size(); ++i) f += kPerRow[i] * rows[i];
    return f;
}

std::vector<double> analytic(const Case<double>& c, Reduction r) {
    if (r != Reduction::none) return c.grad(r, kUpstream);
    return c.grad(r, 1.0, std::vector<double>(kPerRow.begin(), kPerRow.begin() + c.rows));
}

// Step and tolerance: logits in [-4, 4] have third derivatives O(1), so h = 1e-5 leaves an error of
// about 1e-10; probabilities q >= 0.05 have |d^3(-log q)| <= 2 / q^3 = 16000, so h = 1e-6.
void expect_matches_fd(const Case<double>& c) {
    ASSERT_LE(c.rows, static_cast<Index>(kPerRow.size()));
    const double h = c.from_logits ? 1e-5 : 1e-6;
    const double tolerance = c.from_logits ? 1e-8 : 1e-6;
    for (Reduction r : kReductions) {
        SCOPED_TRACE(::testing::Message() << "reduction " << name(r));
        auto f = [&](const std::vector<double>& x) {
            Case<double> d = c;
            d.input = x;
            return objective(d, r);
        };
        const std::vector<double> fd = fd_gradient(f, c.input, h);
        const std::vector<double> g = analytic(c, r);
        EXPECT_TRUE(all_close(g, fd, tolerance));
        // The test can tell a wrong gradient: the finite differences are not all zero.
        double norm = 0.0;
        for (double v : fd) norm += std::fabs(v);
        EXPECT_GT(norm, 0.1);
    }
}

Case<double> index_case() { return random_index_case<double>(6, 5, 21); }
const std::vector<double> kWeights5 = {0.5, 2.0, 1.0, 3.0, 0.25};

TEST(GradFiniteDifferences, IndexTargets) { expect_matches_fd(index_case()); }

TEST(GradFiniteDifferences, Weights) {
    Case<double> c = index_case();
    c.weight = kWeights5;
    expect_matches_fd(c);
}

TEST(GradFiniteDifferences, IgnoreIndex) {
    Case<double> c = index_case();
    c.weight = kWeights5;
    c.labels[1] = -100;
    c.labels[4] = -100;
    expect_matches_fd(c);
}

TEST(GradFiniteDifferences, LabelSmoothing) {
    for (double a : {0.2, 1.0}) {
        SCOPED_TRACE(::testing::Message() << "smoothing " << a);
        Case<double> c = index_case();
        c.weight = kWeights5;
        c.labels[2] = -100;
        c.smoothing = a;
        expect_matches_fd(c);
    }
}

TEST(GradFiniteDifferences, ProbabilityTargets) {
    for (double a : {0.0, 0.1}) {
        SCOPED_TRACE(::testing::Message() << "smoothing " << a);
        Case<double> c = index_case();
        c.labels.clear();
        c.probs = random_soft_targets(6, 5, 22);
        c.weight = kWeights5;
        c.smoothing = a;
        expect_matches_fd(c);
    }
}

TEST(GradFiniteDifferences, FromProbabilities) {
    for (double a : {0.0, 0.1}) {
        SCOPED_TRACE(::testing::Message() << "smoothing " << a);
        Case<double> c = index_case();
        c.input = random_probabilities(30, 0.05, 0.95, 23);  // away from the clip at 1e-7
        c.from_logits = false;
        c.weight = kWeights5;
        c.labels[3] = -100;
        c.smoothing = a;
        expect_matches_fd(c);

        Case<double> p = c;
        p.labels.clear();
        p.probs = random_soft_targets(6, 5, 24);
        expect_matches_fd(p);
    }
}

TEST(GradFiniteDifferences, LargerRowsAndMoreRows) {
    Case<double> wide = random_index_case<double>(2, 37, 25);
    expect_matches_fd(wide);
    Case<double> tall = random_index_case<double>(8, 3, 26);
    tall.labels[5] = -100;
    expect_matches_fd(tall);
}

// Where the clip applies (q < eps or q > 1 - eps) the gradient is 0; elsewhere -coef / q.
TEST(GradFromProbabilities, ZeroWhereClipped) {
    Case<double> c;
    c.rows = 2;
    c.classes = 3;
    c.input = {1e-9, 0.5, 0.5, 0.2, 1.0, 0.3};
    c.labels = {0, 1};
    c.from_logits = false;
    const std::vector<double> g = c.grad(Reduction::sum);
    EXPECT_EQ(g[0], 0.0);
    EXPECT_EQ(g[4], 0.0);
    EXPECT_EQ(g[1], 0.0);  // coefficient 0 (no smoothing)
    c.input[4] = 0.25;
    EXPECT_TRUE(close(c.grad(Reduction::sum)[4], -4.0, 1e-14));
}

// ---------------------------------------------------------------------------------------------
// Typed: float and double.

template <typename T>
class Grad : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Grad, Types);

// The cases the typed tests sweep: index targets (weights, smoothing, ignored rows), probability
// targets, and from_logits = false.
template <typename T>
std::vector<Case<T>> sweep_cases() {
    std::vector<Case<T>> cases;
    Case<T> c = random_index_case<T>(6, 5, 31);
    cases.push_back(c);
    c.weight = cast<T>(kWeights5);
    c.smoothing = 0.15;
    c.labels[2] = -100;
    cases.push_back(c);
    Case<T> p = c;
    p.labels.clear();
    p.probs = cast<T>(random_soft_targets(6, 5, 32));
    cases.push_back(p);
    Case<T> q = c;
    q.input = cast<T>(random_probabilities(30, 0.05, 0.95, 33));
    q.from_logits = false;
    cases.push_back(q);
    cases.push_back(random_index_case<T>(3, 300, 34));
    cases.push_back(random_index_case<T>(200, 7, 35));
    Case<T> big = random_index_case<T>(3000, 29, 36);  // several row blocks, the parallel path
    big.labels[100] = -100;
    cases.push_back(big);
    return cases;
}

TYPED_TEST(Grad, KnownValue) {
    using T = TypeParam;
    Case<T> c;
    c.rows = 1;
    c.classes = 3;
    c.input = {T(1), T(2), T(3)};
    c.labels = {2};
    const std::vector<double> want = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219 - 1.0};
    EXPECT_TRUE(all_close(c.grad(Reduction::sum), want, tol<T>()));
    EXPECT_TRUE(all_close(c.grad(Reduction::mean, 2.0), {2 * want[0], 2 * want[1], 2 * want[2]}, tol<T>()));
}

TEST(GradFloat, MatchesDouble) {
    for (const Case<float>& f : sweep_cases<float>()) {
        SCOPED_TRACE(::testing::Message() << f.rows << " x " << f.classes << (f.from_logits ? "" : ", from probabilities")
                                          << (f.probs.empty() ? "" : ", probability targets"));
        const Case<double> d = f.as<double>();
        for (Reduction r : kReductions) {
            SCOPED_TRACE(name(r));
            std::vector<float> per_row(sz(f.rows));
            for (Index i = 0; i < f.rows; ++i) per_row[sz(i)] = static_cast<float>(kPerRow[sz(i % 8)]);
            const std::vector<float> gf = f.grad(r, kUpstream, r == Reduction::none ? per_row : std::vector<float>{});
            const std::vector<double> gd =
                d.grad(r, static_cast<double>(static_cast<float>(kUpstream)),
                       r == Reduction::none ? widen(per_row) : std::vector<double>{});
            EXPECT_TRUE(all_close(gf, gd, tol<float>()));
        }
    }
}

// From logits, every gradient row sums to 0 (softmax sums to 1; the target weights balance).
TYPED_TEST(Grad, RowsSumToZero) {
    using T = TypeParam;
    for (const Case<T>& c : sweep_cases<T>()) {
        if (!c.from_logits) continue;
        const std::vector<T> g = c.grad(Reduction::sum);
        for (Index r = 0; r < c.rows; ++r) {
            double s = 0.0, a = 0.0;
            for (Index k = 0; k < c.classes; ++k) {
                s += static_cast<double>(g[sz(r * c.classes + k)]);
                a += std::fabs(static_cast<double>(g[sz(r * c.classes + k)]));
            }
            EXPECT_LE(std::fabs(s), 16 * std::numeric_limits<T>::epsilon() * std::max(a, 1.0)) << "row " << r;
        }
    }
}

TYPED_TEST(Grad, ValueAndGradEqualsLossAndGrad) {
    using T = TypeParam;
    for (const Case<T>& c : sweep_cases<T>()) {
        for (Reduction r : kReductions) {
            SCOPED_TRACE(::testing::Message() << c.rows << " x " << c.classes << ", " << name(r));
            std::vector<T> rows(sz(c.rows), T(-7)), g(c.input.size(), T(-7));
            const double v = xentcpp::value_and_grad<T>(c.problem(), c.options(r), rows.data(), g.data());
            EXPECT_EQ(v, r == Reduction::none ? xentcpp::loss<T>(c.problem(), c.options(r), std::vector<T>(rows).data())
                                              : c.loss(r));
            if (r == Reduction::none) {
                EXPECT_TRUE(bitwise_equal(rows, c.row_losses()));
            }
            const std::vector<T> ones(sz(c.rows), T(1));
            EXPECT_TRUE(bitwise_equal(g, c.grad(r, 1.0, r == Reduction::none ? ones : std::vector<T>{})));
            // row_losses may be null unless the reduction is none.
            if (r != Reduction::none) {
                std::vector<T> g2(c.input.size(), T(-7));
                EXPECT_EQ(xentcpp::value_and_grad<T>(c.problem(), c.options(r), nullptr, g2.data()), v);
                EXPECT_TRUE(bitwise_equal(g2, g));
            }
        }
    }
}

TYPED_TEST(Grad, InPlaceEqualsSeparateBuffer) {
    using T = TypeParam;
    for (const Case<T>& c : sweep_cases<T>()) {
        for (Reduction r : kReductions) {
            SCOPED_TRACE(::testing::Message() << c.rows << " x " << c.classes << ", " << name(r));
            const std::vector<T> per_row(sz(c.rows), T(0.5));
            const std::vector<T> want = c.grad(r, kUpstream, r == Reduction::none ? per_row : std::vector<T>{});

            Case<T> in_place = c;  // its input buffer becomes the gradient
            xentcpp::GradRequest<T> req;
            req.grad = in_place.input.data();
            req.grad_output = kUpstream;
            req.grad_output_rows = r == Reduction::none ? per_row.data() : nullptr;
            xentcpp::grad<T>(in_place.problem(), in_place.options(r), req);
            EXPECT_TRUE(bitwise_equal(in_place.input, want));

            // value_and_grad in place: the same loss and gradient as with a separate buffer.
            std::vector<T> rows_a(sz(c.rows)), rows_b(sz(c.rows)), g(c.input.size());
            const double va = xentcpp::value_and_grad<T>(c.problem(), c.options(r), rows_a.data(), g.data());
            Case<T> vg = c;
            const double vb = xentcpp::value_and_grad<T>(vg.problem(), vg.options(r), rows_b.data(), vg.input.data());
            EXPECT_EQ(va, vb);
            EXPECT_TRUE(bitwise_equal(vg.input, g));
            if (r == Reduction::none) {
                EXPECT_TRUE(bitwise_equal(rows_a, rows_b));
            }
        }
    }
}

TYPED_TEST(Grad, DoesNotModifyItsInputs) {
    using T = TypeParam;
    for (const Case<T>& c : sweep_cases<T>()) {
        const Case<T> before = c;
        c.grad(Reduction::mean);
        c.grad(Reduction::none, 1.0, std::vector<T>(sz(c.rows), T(2)));
        EXPECT_TRUE(bitwise_equal(c.input, before.input));
        EXPECT_TRUE(bitwise_equal(c.probs, before.probs));
        EXPECT_TRUE(bitwise_equal(c.weight, before.weight));
    }
}

TYPED_TEST(Grad, IgnoredRowsGetZeroGradient) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(5, 4, 41);
    c.weight = cast<T>({0.5, 2.0, 1.0, 3.0});
    c.smoothing = 0.1;
    c.labels[1] = -100;
    c.labels[3] = -100;
    const T inf = std::numeric_limits<T>::infinity();
    for (Index k = 0; k < 4; ++k) c.input[sz(4 + k)] = -inf;  // an ignored all -inf row: still 0
    for (Reduction r : kReductions) {
        SCOPED_TRACE(name(r));
        const std::vector<T> g = c.grad(r, 1.0, r == Reduction::none ? std::vector<T>(5, T(1)) : std::vector<T>{});
        for (Index row : {1, 3})
            for (Index k = 0; k < 4; ++k) EXPECT_EQ(g[sz(row * 4 + k)], T(0)) << "row " << row << ", class " << k;
        for (Index k = 0; k < 4; ++k) EXPECT_NE(g[sz(k)], T(0));  // the other rows are not zeroed
    }
    EXPECT_EQ(c.row_losses()[1], T(0));
}

TYPED_TEST(Grad, AllIgnoredGivesZeroGradient) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(3, 4, 42);
    c.labels = {-100, -100, -100};
    for (Reduction r : {Reduction::mean, Reduction::sum}) {
        SCOPED_TRACE(name(r));
        std::vector<T> g(c.input.size(), T(123));  // a sentinel: the zeros must be written
        xentcpp::GradRequest<T> req;
        req.grad = g.data();
        xentcpp::grad<T>(c.problem(), c.options(r), req);
        EXPECT_EQ(g, std::vector<T>(c.input.size(), T(0)));

        std::vector<T> g2(c.input.size(), T(123));
        const double v = xentcpp::value_and_grad<T>(c.problem(), c.options(r), nullptr, g2.data());
        EXPECT_EQ(g2, std::vector<T>(c.input.size(), T(0)));
        if (r == Reduction::mean) {
            EXPECT_TRUE(std::isnan(v));
        } else {
            EXPECT_EQ(v, 0.0);
        }
    }
}

// Rows that count but weigh nothing: the mean's denominator is 0, the loss NaN, the gradient zero.
// As PyTorch: a mean over rows whose weights sum to zero divides by that zero. Per counted row, the
// target's entry is NaN and the others the sum's gradient over +0 (+-inf); with a zero weight at the
// target, or with smoothing, the whole row is NaN. Ignored rows stay 0.
TYPED_TEST(Grad, ZeroTotalWeightFollowsPyTorch) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(3, 4, 43);
    c.labels = {1, 2, -100};
    c.weight = {T(1), T(1), T(-1), T(0)};
    const double loss = c.loss(Reduction::mean);
    EXPECT_TRUE(std::isinf(loss) || std::isnan(loss));
    const std::vector<T> sum_grad = c.grad(Reduction::sum, 1.0);
    const std::vector<T> g = c.grad(Reduction::mean, 1.0);
    for (std::int64_t k = 0; k < 4; ++k) {
        SCOPED_TRACE(k);
        if (k == 1) EXPECT_TRUE(std::isnan(g[1])) << "the target of row 0";
        else EXPECT_EQ(g[k], std::copysign(std::numeric_limits<T>::infinity(), sum_grad[k]));
        if (k == 2) EXPECT_TRUE(std::isnan(g[4 + k]));
        else EXPECT_EQ(g[4 + k], std::copysign(std::numeric_limits<T>::infinity(), sum_grad[4 + k]));
        EXPECT_EQ(g[8 + k], T(0)) << "an ignored row";
    }
    c.smoothing = 0.1;
    const std::vector<T> smoothed = c.grad(Reduction::mean, 1.0);
    for (std::int64_t k = 0; k < 8; ++k) EXPECT_TRUE(std::isnan(smoothed[k]));
    c.smoothing = 0.0;
    c.weight = {T(1), T(0), T(-1), T(0)};  // row 0's target weighs 0: 0 / 0
    c.labels = {1, 0, 2};
    const std::vector<T> zero_at_target = c.grad(Reduction::mean, 1.0);
    for (std::int64_t k = 0; k < 4; ++k) EXPECT_TRUE(std::isnan(zero_at_target[k]));
}

// A mean over nothing (every row ignored): NaN loss, zero gradient.
TYPED_TEST(Grad, EveryRowIgnoredGivesZeroGradient) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(3, 4, 44);
    c.labels = {-100, -100, -100};
    EXPECT_TRUE(std::isnan(c.loss(Reduction::mean)));
    EXPECT_EQ(c.grad(Reduction::mean, 2.0), std::vector<T>(c.input.size(), T(0)));
}

}  // namespace
