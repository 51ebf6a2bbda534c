// Edge values and shapes: masked (-inf) classes, -inf targets, all -inf rows, NaN and +inf, large
// logits and shift invariance, one class, one huge row, zero rows.
#include "reference.hpp"

namespace {

using namespace xent_test;

template <typename T>
class Edge : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Edge, Types);

template <typename T>
constexpr T inf() { return std::numeric_limits<T>::infinity(); }
template <typename T>
constexpr T nan() { return std::numeric_limits<T>::quiet_NaN(); }

// Expected gradient of the sum loss for unweighted, unsmoothed class-index targets: p - onehot.
template <typename T>
std::vector<double> softmax_minus_onehot(const Case<T>& c) {
    const std::vector<double> x = widen(c.input);
    std::vector<double> g;
    for (Index r = 0; r < c.rows; ++r) {
        std::vector<double> p = ref_softmax(x.data() + r * c.classes, c.classes);
        p[sz(c.labels[sz(r)])] -= 1.0;
        g.insert(g.end(), p.begin(), p.end());
    }
    return g;
}

template <typename T>
bool row_all_nan(const std::vector<T>& g, Index row, Index classes) {
    for (Index k = 0; k < classes; ++k)
        if (!std::isnan(g[sz(row * classes + k)])) return false;
    return true;
}

// Elements of rows other than `row` must be bit-for-bit those of `base`.
template <typename T>
::testing::AssertionResult other_rows_equal(const std::vector<T>& got, const std::vector<T>& base, Index row,
                                            Index width) {
    std::vector<T> a = got, b = base;
    for (Index k = 0; k < width; ++k) a[sz(row * width + k)] = b[sz(row * width + k)] = T(0);
    return bitwise_equal(a, b);
}

TYPED_TEST(Edge, MaskedClassesGiveFiniteLossAndZeroGradient) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(3, 37, 51);
    for (Index r = 0; r < 3; ++r)
        for (Index k = 0; k < 37; ++k)
            if ((k + r) % 3 == 0) c.input[sz(r * 37 + k)] = -inf<T>();
    c.labels = {1, 3, 5};  // never masked: (label + r) % 3 == 1
    const std::vector<T> rows = c.row_losses();
    for (T v : rows) EXPECT_TRUE(std::isfinite(v));
    EXPECT_TRUE(all_close(rows, c.ref_rows(), tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::mean), c.ref_loss(Reduction::mean), tol<T>()));

    const std::vector<T> g = c.grad(Reduction::sum);
    EXPECT_TRUE(all_close(g, softmax_minus_onehot(c), tol<T>()));
    for (std::size_t i = 0; i < g.size(); ++i)
        if (c.input[i] == -inf<T>()) {
            EXPECT_EQ(g[i], T(0)) << "at " << i;
        }

    // Probability targets that are 0 on the masked classes: finite too (a documented deviation from
    // PyTorch, which gives NaN).
    Case<T> p = c;
    p.labels.clear();
    p.probs.assign(c.input.size(), T(0));
    for (Index r = 0; r < 3; ++r) {
        p.probs[sz(r * 37 + c.labels[sz(r)])] = T(0.25);      // (k + r) % 3 == 1
        p.probs[sz(r * 37 + c.labels[sz(r)] + 1)] = T(0.75);  // (k + r) % 3 == 2
    }
    const std::vector<T> prow = p.row_losses();
    for (T v : prow) EXPECT_TRUE(std::isfinite(v));
    EXPECT_TRUE(all_close(prow, p.ref_rows(), tol<T>()));
    const std::vector<T> pg = p.grad(Reduction::sum);
    for (std::size_t i = 0; i < pg.size(); ++i) {
        EXPECT_TRUE(std::isfinite(pg[i])) << "at " << i;
        if (p.input[i] == -inf<T>()) {
            EXPECT_EQ(pg[i], T(0)) << "at " << i;
        }
    }
}

TYPED_TEST(Edge, MinusInfTargetLogitGivesInfiniteLossAndFiniteGradient) {
    using T = TypeParam;
    Case<T> c;
    c.rows = 2;
    c.classes = 3;
    c.input = {-inf<T>(), T(1), T(2), T(0.5), T(1), T(-1)};
    c.labels = {0, 1};
    const std::vector<T> rows = c.row_losses();
    EXPECT_EQ(rows[0], inf<T>());
    EXPECT_TRUE(close(rows[1], c.ref_rows()[1], tol<T>()));
    EXPECT_EQ(c.loss(Reduction::sum), kInf);
    EXPECT_EQ(c.loss(Reduction::mean), kInf);

    const std::vector<T> g = c.grad(Reduction::sum);
    for (T v : g) EXPECT_TRUE(std::isfinite(v));
    // Row 0: p - onehot = {0 - 1, softmax(1, 2)}; row 1 against the reference.
    EXPECT_EQ(g[0], T(-1));
    EXPECT_TRUE(close(g[1], 0.2689414213699951, tol<T>()));
    EXPECT_TRUE(close(g[2], 0.7310585786300049, tol<T>()));
    EXPECT_TRUE(all_close(g, softmax_minus_onehot(c), tol<T>()));
}

TYPED_TEST(Edge, AllMinusInfRowIsNaNAndLeavesOtherRowsExact) {
    using T = TypeParam;
    Case<T> base = random_index_case<T>(3, 4, 52);
    Case<T> c = base;
    for (Index k = 0; k < 4; ++k) c.input[sz(4 + k)] = -inf<T>();
    const std::vector<T> rows = c.row_losses();
    EXPECT_TRUE(std::isnan(rows[1]));
    EXPECT_TRUE(other_rows_equal(rows, base.row_losses(), 1, 1));
    EXPECT_TRUE(std::isnan(c.loss(Reduction::sum)));
    EXPECT_TRUE(std::isnan(c.loss(Reduction::mean)));

    const std::vector<T> ones(3, T(1));
    const std::vector<T> g = c.grad(Reduction::none, 1.0, ones);
    EXPECT_TRUE(row_all_nan(g, 1, 4));
    EXPECT_TRUE(other_rows_equal(g, base.grad(Reduction::none, 1.0, ones), 1, 4));
}

TYPED_TEST(Edge, NaNRowIsNaNAndLeavesOtherRowsExact) {
    using T = TypeParam;
    for (Index classes : {5, 37, 300}) {
        const Case<T> base = random_index_case<T>(3, classes, 53);
        // The NaN at the start, the end, the target, the row's maximum, and the middle.
        Index argmax = 0;
        for (Index k = 0; k < classes; ++k)
            if (base.input[sz(classes + k)] > base.input[sz(classes + argmax)]) argmax = k;
        for (Index at : {Index{0}, classes - 1, base.labels[1], argmax, classes / 2}) {
            for (bool probs : {false, true}) {
                SCOPED_TRACE(::testing::Message() << "classes " << classes << ", NaN at " << at
                                                  << (probs ? ", probability targets" : ""));
                Case<T> b = base;
                if (probs) {
                    b.labels.clear();
                    b.probs = cast<T>(random_soft_targets(3, classes, 54));
                }
                Case<T> c = b;
                c.input[sz(classes + at)] = nan<T>();
                const std::vector<T> rows = c.row_losses();
                EXPECT_TRUE(std::isnan(rows[1]));
                EXPECT_TRUE(other_rows_equal(rows, b.row_losses(), 1, 1));
                EXPECT_TRUE(all_close(std::vector<T>{rows[0], rows[2]}, {b.ref_rows()[0], b.ref_rows()[2]}, tol<T>()));
                EXPECT_TRUE(std::isnan(c.loss(Reduction::mean)));

                const std::vector<T> per_row = {T(1), T(2), T(0.5)};
                const std::vector<T> g = c.grad(Reduction::none, 1.0, per_row);
                EXPECT_TRUE(row_all_nan(g, 1, classes));
                EXPECT_TRUE(other_rows_equal(g, b.grad(Reduction::none, 1.0, per_row), 1, classes));
            }
        }
    }
}

TYPED_TEST(Edge, PlusInfLogitGivesNaNRow) {
    using T = TypeParam;
    const Case<T> base = random_index_case<T>(2, 6, 55);
    Case<T> c = base;
    c.input[2] = inf<T>();
    const std::vector<T> rows = c.row_losses();
    EXPECT_TRUE(std::isnan(rows[0]));
    EXPECT_TRUE(other_rows_equal(rows, base.row_losses(), 0, 1));
}

TYPED_TEST(Edge, LargeLogitsGiveExactResults) {
    using T = TypeParam;
    Case<T> c;
    c.rows = 3;
    c.classes = 3;
    c.input = {T(1e4), T(-1e4), T(0), T(1e4), T(-1e4), T(0), T(1e4), T(-1e4), T(0)};
    c.labels = {0, 1, 2};
    const std::vector<T> rows = c.row_losses();
    EXPECT_NEAR(rows[0], 0.0, static_cast<double>(std::numeric_limits<T>::epsilon()));
    EXPECT_LE(ulps(rows[1], T(2e4)), 1) << rows[1];
    EXPECT_LE(ulps(rows[2], T(1e4)), 1) << rows[2];
    const T e = std::numeric_limits<T>::epsilon();
    EXPECT_TRUE(all_close(c.grad(Reduction::sum), {0, 0, 0, 1, -1, 0, 1, 0, -1}, static_cast<double>(e)));
}

// Adding a constant to a row changes nothing: with logits on a grid of 2^-6 the shift by +-1e4 is
// exact, so only the kernel's arithmetic can make a difference.
TYPED_TEST(Edge, ShiftInvariance) {
    using T = TypeParam;
    const double bound = std::is_same_v<T, float> ? 1e-6 : 1e-12;
    for (double a : {0.0, 0.2}) {
        for (bool probs : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "smoothing " << a << (probs ? ", probability targets" : ""));
            Case<T> c = random_index_case<T>(16, 9, 56);
            for (T& v : c.input) v = std::round(v * T(128)) / T(64);  // [-8, 8]: some losses are small
            c.smoothing = a;
            if (probs) {
                c.labels.clear();
                c.probs = cast<T>(random_soft_targets(16, 9, 57));
            }
            Case<T> s = c;  // rows 0, 3, 6, ... up by 1e4, rows 1, 4, 7, ... down, the others as they are
            const T shift[] = {T(1e4), T(-1e4), T(0)};
            for (std::size_t i = 0; i < c.input.size(); ++i) {
                s.input[i] += shift[(i / 9) % 3];
                ASSERT_EQ(s.input[i] - shift[(i / 9) % 3], c.input[i]);  // the shift was exact
            }
            const std::vector<T> r0 = c.row_losses(), r1 = s.row_losses();
            for (std::size_t i = 0; i < r0.size(); ++i)
                EXPECT_LE(std::fabs(static_cast<double>(r1[i] - r0[i])), bound * std::fabs(static_cast<double>(r0[i])))
                    << "row " << i << ": " << r0[i] << " vs " << r1[i];
            EXPECT_TRUE(all_close(r1, c.ref_rows(), tol<T>()));
            const std::vector<T> g0 = c.grad(Reduction::sum), g1 = s.grad(Reduction::sum);
            EXPECT_TRUE(all_close(g1, widen(g0), bound));
        }
    }
}

TYPED_TEST(Edge, OneClass) {
    using T = TypeParam;
    Case<T> c;
    c.rows = 4;
    c.classes = 1;
    c.input = {T(0), T(-50), T(1e4), T(3.5)};
    c.labels = {0, 0, 0, 0};
    const double e = static_cast<double>(std::numeric_limits<T>::epsilon());
    for (double a : {0.0, 0.3}) {
        for (bool weighted : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "smoothing " << a << (weighted ? ", weighted" : ""));
            c.smoothing = a;
            c.weight = weighted ? std::vector<T>{T(2)} : std::vector<T>{};
            EXPECT_TRUE(all_close(c.row_losses(), {0, 0, 0, 0}, e));
            EXPECT_NEAR(c.loss(Reduction::mean), 0.0, e);
            EXPECT_NEAR(c.loss(Reduction::sum), 0.0, 4 * e);
            // p * ((1 - a) w + a w) - (1 - a) w - a w: zero up to rounding of terms of size w * upstream.
            EXPECT_TRUE(all_close(c.grad(Reduction::mean), {0, 0, 0, 0}, 4 * e));
            EXPECT_TRUE(all_close(c.grad(Reduction::none, 1.0, std::vector<T>(4, T(3))), {0, 0, 0, 0}, 24 * e));
        }
    }
    Case<T> p = c;
    p.labels.clear();
    p.probs = {T(1), T(1), T(1), T(1)};
    EXPECT_TRUE(all_close(p.row_losses(), {0, 0, 0, 0}, e));
    EXPECT_TRUE(all_close(p.grad(Reduction::sum), {0, 0, 0, 0}, e));
}

// One row of 300000 classes against a float64 reference (long double sums).
TYPED_TEST(Edge, HugeRow) {
    using T = TypeParam;
    constexpr Index kClasses = 300000;
    Case<T> c = random_index_case<T>(1, kClasses, 58);
    for (T& v : c.input) v *= T(2.5);  // [-10, 10): exact in float
    c.labels = {123457};
    const std::vector<double> x = widen(c.input);
    const double lse = ref_lse(x.data(), kClasses);
    const double want = lse - x[123457];
    const double loss_tol = std::is_same_v<T, float> ? 4e-6 : 1e-12;
    EXPECT_TRUE(close(c.row_losses()[0], want, loss_tol));
    EXPECT_TRUE(close(c.loss(Reduction::mean), want, loss_tol));

    const std::vector<T> g = c.grad(Reduction::sum);
    const double grad_tol = std::is_same_v<T, float> ? 2e-5 : 1e-11;
    Index bad = 0;
    for (Index k = 0; k < kClasses; ++k) {
        const double ref = std::exp(x[sz(k)] - lse) - (k == 123457 ? 1.0 : 0.0);
        const double got = static_cast<double>(g[sz(k)]);
        if (!(std::fabs(got - ref) <= grad_tol * std::fabs(ref)) && bad++ < 5)
            ADD_FAILURE() << "class " << k << ": got " << got << ", expected " << ref;
    }
    EXPECT_EQ(bad, 0);
}

TYPED_TEST(Edge, ZeroRows) {
    using T = TypeParam;
    Case<T> c;
    c.rows = 0;
    c.classes = 3;
    c.input = {T(1), T(2), T(3)};  // non-null buffers that must not be read as a row
    c.labels = {0};
    const T sentinel = T(-42);
    std::vector<T> rows(1, sentinel), g(3, sentinel);
    EXPECT_EQ(xentcpp::loss<T>(c.problem(), c.options(Reduction::none), rows.data()), 0.0);
    EXPECT_EQ(c.loss(Reduction::sum), 0.0);
    EXPECT_TRUE(std::isnan(c.loss(Reduction::mean)));
    for (Reduction r : kReductions) {
        xentcpp::GradRequest<T> req;
        req.grad = g.data();
        xentcpp::grad<T>(c.problem(), c.options(r), req);
        const double v = xentcpp::value_and_grad<T>(c.problem(), c.options(r), rows.data(), g.data());
        if (r == Reduction::mean) {
            EXPECT_TRUE(std::isnan(v));
        } else {
            EXPECT_EQ(v, 0.0);
        }
    }
    EXPECT_EQ(rows, std::vector<T>(1, sentinel));
    EXPECT_EQ(g, std::vector<T>(3, sentinel));

    Case<T> p = c;
    p.labels.clear();
    p.probs = {T(0), T(0), T(1)};
    EXPECT_TRUE(std::isnan(p.loss(Reduction::mean)));
    EXPECT_EQ(p.loss(Reduction::sum), 0.0);
}

}  // namespace
