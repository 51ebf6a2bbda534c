// Loss values: known values, reductions, weights, ignore_index, label smoothing, probability targets
// and from_logits = false, against literals and the float64 reference of reference.hpp.
#include "reference.hpp"

namespace {

using namespace xent_test;

template <typename T>
class Loss : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Loss, Types);

// Two rows of logits {1, 2, 3}, labels {2, 0}.
template <typename T>
Case<T> one_two_three() {
    Case<T> c;
    c.rows = 2;
    c.classes = 3;
    c.input = {T(1), T(2), T(3), T(1), T(2), T(3)};
    c.labels = {2, 0};
    return c;
}

TYPED_TEST(Loss, KnownValues) {
    using T = TypeParam;
    const Case<T> c = one_two_three<T>();
    const double l0 = 0.40760596444438013;  // log(e + e^2 + e^3) - 3
    const double l1 = 2.40760596444438;     // log(e + e^2 + e^3) - 1
    const std::vector<T> rows = c.row_losses();
    EXPECT_TRUE(all_close(rows, {l0, l1}, tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::sum), l0 + l1, tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::mean), (l0 + l1) / 2, tol<T>()));
    EXPECT_TRUE(close(c.ref_loss(Reduction::mean), (l0 + l1) / 2, 1e-15));  // the reference itself
}

TYPED_TEST(Loss, NoneReturnsTheSumOfTheRowLosses) {
    using T = TypeParam;
    const Case<T> c = random_index_case<T>(9, 6, 11);
    std::vector<T> rows(9, T(-1));
    const double ret = xentcpp::loss<T>(c.problem(), c.options(Reduction::none), rows.data());
    EXPECT_TRUE(all_close(rows, c.ref_rows(), tol<T>()));
    EXPECT_TRUE(close(ret, ref_sum(c.ref_rows()), tol<T>() * 9));
    // The sum may add the unrounded row losses: consistent with the stored ones to T's rounding.
    EXPECT_TRUE(close(ret, ref_sum(widen(rows)), tol<T>()));
}

TYPED_TEST(Loss, ReductionsMatchReference) {
    using T = TypeParam;
    const Case<T> c = random_index_case<T>(7, 5, 1);
    EXPECT_TRUE(all_close(c.row_losses(), c.ref_rows(), tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::sum), c.ref_loss(Reduction::sum), tol<T>() * 7));
    EXPECT_TRUE(close(c.loss(Reduction::mean), c.ref_loss(Reduction::sum) / 7, tol<T>()));
}

// Many shapes: C = 1, C around vector widths, C larger than a block; many rows (row blocks, threads).
TYPED_TEST(Loss, ShapesMatchReference) {
    using T = TypeParam;
    const Index shapes[][2] = {{1, 1},  {5, 1},    {3, 2},   {40, 3},   {17, 4},   {33, 7},   {9, 8},  {9, 15},
                               {9, 16}, {9, 17},   {5, 31},  {5, 32},   {5, 33},   {3, 63},   {3, 64}, {3, 65},
                               {2, 100}, {2, 1000}, {2, 4099}, {1000, 3}, {1000, 10}, {4097, 5}, {300, 129}};
    std::uint64_t seed = 100;
    for (const auto& s : shapes) {
        SCOPED_TRACE(::testing::Message() << "rows " << s[0] << ", classes " << s[1]);
        Case<T> c = random_index_case<T>(s[0], s[1], ++seed);
        EXPECT_TRUE(all_close(c.row_losses(), c.ref_rows(), tol<T>()));
        EXPECT_TRUE(close(c.loss(Reduction::mean), c.ref_loss(Reduction::mean), tol<T>()));
        EXPECT_TRUE(close(c.loss(Reduction::sum), c.ref_loss(Reduction::sum), tol<T>() * static_cast<double>(s[0])));
    }
}

// Enough rows for several row blocks and the parallel path; the result must not vary between calls.
TYPED_TEST(Loss, LargeBatchMatchesReference) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(5000, 37, 14);
    c.weight = cast<T>(random_probabilities(37, 0.25, 2.0, 15));
    for (Index r = 0; r < 5000; r += 7) c.labels[sz(r)] = -100;
    EXPECT_TRUE(all_close(c.row_losses(), c.ref_rows(), tol<T>()));
    const double mean = c.loss(Reduction::mean);
    EXPECT_TRUE(close(mean, c.ref_loss(Reduction::mean), tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::sum), c.ref_loss(Reduction::sum), tol<T>()));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(c.loss(Reduction::mean), mean);
}

TYPED_TEST(Loss, WeightsScaleRowsAndMeanDividesByTheirSum) {
    using T = TypeParam;
    Case<T> c = one_two_three<T>();
    c.weight = {T(2), T(1), T(0.5)};
    // Row 0 (label 2): 0.5 * l0; row 1 (label 0): 2 * l1; mean divides by w[2] + w[0] = 2.5.
    EXPECT_TRUE(all_close(c.row_losses(), {0.5 * 0.40760596444438013, 2 * 2.40760596444438}, tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::sum), 5.0190149111109505, tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::mean), 2.00760596444438, tol<T>()));

    Case<T> r = random_index_case<T>(11, 6, 2);
    r.weight = cast<T>({0.5, 2.0, 1.0, 3.0, 0.25, 1.5});
    EXPECT_TRUE(all_close(r.row_losses(), r.ref_rows(), tol<T>()));
    EXPECT_TRUE(close(r.loss(Reduction::mean), r.ref_loss(Reduction::mean), tol<T>()));
    EXPECT_TRUE(close(r.loss(Reduction::sum), r.ref_loss(Reduction::sum), tol<T>() * 11));
}

TYPED_TEST(Loss, IgnoreIndexRowsAddNothing) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(8, 5, 3);
    c.labels[1] = -100;
    c.labels[6] = -100;
    const std::vector<T> rows = c.row_losses();
    EXPECT_EQ(rows[1], T(0));
    EXPECT_EQ(rows[6], T(0));
    EXPECT_TRUE(all_close(rows, c.ref_rows(), tol<T>()));
    // Mean over the 6 rows that count.
    EXPECT_TRUE(close(c.loss(Reduction::mean), ref_sum(c.ref_rows()) / 6, tol<T>()));

    // With weights the denominator is the weight sum over the rows that count.
    c.weight = cast<T>({0.5, 2.0, 1.0, 3.0, 0.25});
    EXPECT_TRUE(close(c.loss(Reduction::mean), c.ref_loss(Reduction::mean), tol<T>()));
}

TYPED_TEST(Loss, CustomIgnoreIndex) {
    using T = TypeParam;
    // A valid class as ignore_index: rows labelled 1 are ignored, -100 is then an ordinary (bad) label.
    Case<T> c = random_index_case<T>(10, 4, 4);
    c.ignore_index = 1;
    c.labels = {1, 0, 2, 1, 3, 3, 1, 0, 2, 2};
    std::vector<T> rows = c.row_losses();
    EXPECT_EQ(rows[0], T(0));
    EXPECT_EQ(rows[3], T(0));
    EXPECT_EQ(rows[6], T(0));
    EXPECT_GT(rows[1], T(0));
    EXPECT_TRUE(all_close(rows, c.ref_rows(), tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::mean), ref_sum(c.ref_rows()) / 7, tol<T>()));

    // An ignore_index outside [0, classes) is allowed and is not a range error.
    c.ignore_index = 7;
    c.labels[0] = 7;
    rows = c.row_losses();
    EXPECT_EQ(rows[0], T(0));
    EXPECT_TRUE(all_close(rows, c.ref_rows(), tol<T>()));
}

TYPED_TEST(Loss, AllRowsIgnored) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(4, 3, 5);
    c.labels = {-100, -100, -100, -100};
    EXPECT_TRUE(std::isnan(c.loss(Reduction::mean)));
    EXPECT_EQ(c.loss(Reduction::sum), 0.0);
    std::vector<T> rows(4, T(7));
    EXPECT_EQ(xentcpp::loss<T>(c.problem(), c.options(Reduction::none), rows.data()), 0.0);
    EXPECT_EQ(rows, std::vector<T>(4, T(0)));
    c.weight = cast<T>({1.0, 2.0, 3.0});
    EXPECT_TRUE(std::isnan(c.loss(Reduction::mean)));
}

TYPED_TEST(Loss, LabelSmoothingMatchesFormula) {
    using T = TypeParam;
    Case<T> k = one_two_three<T>();
    k.smoothing = 0.3;
    // 0.7 * (lse - 3) + 0.1 * ((lse - 1) + (lse - 2) + (lse - 3)), lse = log(e + e^2 + e^3).
    EXPECT_TRUE(close(k.row_losses()[0], 0.70760596444438, tol<T>()));

    for (double a : {0.0, 0.1, 0.25, 1.0}) {
        for (bool weighted : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "smoothing " << a << (weighted ? ", weighted" : ""));
            Case<T> c = random_index_case<T>(9, 7, 6);
            c.smoothing = a;
            c.labels[2] = -100;
            if (weighted) c.weight = cast<T>({0.5, 2.0, 1.0, 3.0, 0.25, 1.5, 0.75});
            EXPECT_TRUE(all_close(c.row_losses(), c.ref_rows(), tol<T>()));
            EXPECT_TRUE(close(c.loss(Reduction::mean), c.ref_loss(Reduction::mean), tol<T>()));
            EXPECT_TRUE(close(c.loss(Reduction::sum), c.ref_loss(Reduction::sum), tol<T>() * 9));
        }
    }
}

TYPED_TEST(Loss, OneHotProbabilitiesEqualLabels) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(6, 5, 7);
    Case<T> p = c;
    p.labels.clear();
    p.probs.assign(sz(6 * 5), T(0));
    for (Index r = 0; r < 6; ++r) p.probs[sz(r * 5 + c.labels[sz(r)])] = T(1);
    EXPECT_TRUE(all_close(p.row_losses(), widen(c.row_losses()), tol<T>()));
    EXPECT_TRUE(close(p.loss(Reduction::mean), c.loss(Reduction::mean), tol<T>()));
}

TYPED_TEST(Loss, SoftProbabilityTargets) {
    using T = TypeParam;
    for (double a : {0.0, 0.2}) {
        for (bool weighted : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "smoothing " << a << (weighted ? ", weighted" : ""));
            Case<T> c = random_index_case<T>(8, 6, 8);
            c.labels.clear();
            c.probs = cast<T>(random_soft_targets(8, 6, 9));
            c.smoothing = a;
            if (weighted) c.weight = cast<T>({0.5, 2.0, 1.0, 3.0, 0.25, 1.5});
            EXPECT_TRUE(all_close(c.row_losses(), c.ref_rows(), tol<T>()));
            // The mean of probability targets divides by the number of rows, weighted or not.
            EXPECT_TRUE(close(c.loss(Reduction::mean), ref_sum(c.ref_rows()) / 8, tol<T>()));
            EXPECT_TRUE(close(c.loss(Reduction::sum), c.ref_loss(Reduction::sum), tol<T>() * 8));
        }
    }
}

TYPED_TEST(Loss, SmoothedProbabilityTargetKnownValue) {
    using T = TypeParam;
    // t = {0, 0, 1}, a = 0.3: t' = {0.1, 0.1, 0.8}; the same as label 2 with smoothing 0.3.
    Case<T> c = one_two_three<T>();
    c.rows = 1;
    c.input.resize(3);
    c.labels.clear();
    c.probs = {T(0), T(0), T(1)};
    c.smoothing = 0.3;
    EXPECT_TRUE(close(c.row_losses()[0], 0.70760596444438, tol<T>()));
}

TYPED_TEST(Loss, FromProbabilitiesTextbook) {
    using T = TypeParam;
    Case<T> c;
    c.rows = 2;
    c.classes = 3;
    c.input = cast<T>({0.1, 0.3, 0.6, 0.2, 0.3, 0.5});
    c.labels = {0, 2};
    c.from_logits = false;
    EXPECT_TRUE(all_close(c.row_losses(), {2.30258509299, 0.69314718056}, 1e-11 + tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::mean), 1.4978661367769954, 1e-11 + tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::sum), 2.9957322735539909, 1e-11 + tol<T>()));

    // Probabilities are used as given, not renormalised: scaling the other entries changes nothing.
    c.input = cast<T>({0.1, 0.05, 0.05, 0.9, 0.9, 0.5});
    EXPECT_TRUE(all_close(c.row_losses(), {2.3025850929940455, 0.6931471805599453}, tol<T>()));
}

TYPED_TEST(Loss, FromProbabilitiesOneHotTarget) {
    using T = TypeParam;
    Case<T> c;
    c.rows = 1;
    c.classes = 3;
    c.input = cast<T>({0.6, 0.2, 0.2});
    c.probs = {T(0), T(0), T(1)};
    c.from_logits = false;
    EXPECT_TRUE(close(c.row_losses()[0], 1.6094379124341003, tol<T>()));
    EXPECT_TRUE(close(c.loss(Reduction::mean), 1.6094379124341003, tol<T>()));
}

TYPED_TEST(Loss, FromProbabilitiesMatchesReference) {
    using T = TypeParam;
    for (double a : {0.0, 0.15}) {
        SCOPED_TRACE(::testing::Message() << "smoothing " << a);
        Case<T> c = random_index_case<T>(7, 5, 10);
        c.input = cast<T>(random_probabilities(35, 0.01, 0.99, 11));
        c.from_logits = false;
        c.smoothing = a;
        c.labels[3] = -100;
        c.weight = cast<T>({0.5, 2.0, 1.0, 3.0, 0.25});
        EXPECT_TRUE(all_close(c.row_losses(), c.ref_rows(), tol<T>()));
        EXPECT_TRUE(close(c.loss(Reduction::mean), c.ref_loss(Reduction::mean), tol<T>()));

        Case<T> p = c;
        p.labels.clear();
        p.probs = cast<T>(random_soft_targets(7, 5, 12));
        EXPECT_TRUE(all_close(p.row_losses(), p.ref_rows(), tol<T>()));
        EXPECT_TRUE(close(p.loss(Reduction::mean), ref_sum(p.ref_rows()) / 7, tol<T>()));
    }
}

TYPED_TEST(Loss, FromProbabilitiesClipsAtEpsilon) {
    using T = TypeParam;
    Case<T> c;
    c.rows = 3;
    c.classes = 3;
    // Target probability 0, 1 and above 1 (used as given, clipped).
    c.input = cast<T>({0.0, 0.5, 0.5, 1.0, 0.0, 0.0, 0.1, 1.5, 0.2});
    c.labels = {0, 0, 1};
    c.from_logits = false;
    const double eps = static_cast<double>(static_cast<T>(1e-7));  // the clip happens in T
    const double want_default[] = {-std::log(eps), -std::log1p(-eps), -std::log1p(-eps)};
    std::vector<T> rows = c.row_losses();
    EXPECT_TRUE(close(rows[0], 16.11809565095832, tol<T>()));
    EXPECT_TRUE(close(rows[0], want_default[0], tol<T>()));
    // -log(1 - eps) is about eps: check it to a fraction of eps, not merely near 0 (in float 1 - eps
    // itself rounds to 1 - 2^-23, hence the wider bound).
    const double small = std::is_same_v<T, float> ? 3e-8 : 1e-15;
    EXPECT_NEAR(rows[1], want_default[1], small);
    EXPECT_NEAR(rows[2], want_default[2], small);
    EXPECT_GT(rows[1], T(0));

    c.epsilon = 1e-3;
    rows = c.row_losses();
    EXPECT_TRUE(close(rows[0], -std::log(1e-3), tol<T>()));
    EXPECT_NEAR(rows[1], -std::log1p(-1e-3), 1e-3 * tol<T>() + 1e-7);
    EXPECT_NEAR(rows[2], -std::log1p(-1e-3), 1e-3 * tol<T>() + 1e-7);

    // epsilon = 0: a zero probability of the target gives +inf.
    c.epsilon = 0.0;
    EXPECT_EQ(c.row_losses()[0], std::numeric_limits<T>::infinity());
}

TYPED_TEST(Loss, LossDoesNotModifyItsInputs) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(5, 4, 13);
    c.weight = cast<T>({1.0, 2.0, 0.5, 1.0});
    const Case<T> before = c;
    c.row_losses();
    c.loss(Reduction::mean);
    EXPECT_TRUE(bitwise_equal(c.input, before.input));
    EXPECT_EQ(c.labels, before.labels);
    EXPECT_TRUE(bitwise_equal(c.weight, before.weight));
}

}  // namespace
