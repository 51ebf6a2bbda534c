// linear_cross_entropy (xentcpp/linear.hpp): the loss against the float64 reference on logits computed
// in double, the gradients against central finite differences of the loss and against the chain rule
// through the core's own gradient, chunk sizes that do and do not divide the rows, bitwise equality for
// 1 and 2 threads, the gradient filter, and errors that leave every output unwritten.
#include <xentcpp/linear.hpp>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "reference.hpp"

namespace {

using namespace xent_test;

// A layer, its targets and options; the outputs of one call.
template <typename T>
struct LinearCase {
    Index rows = 0, hidden = 0, classes = 0;
    std::vector<T> input, weight, bias;  // bias empty: none
    std::vector<Index> labels;
    std::vector<T> class_weight;
    Index ignore_index = -100;
    double smoothing = 0.0, z_loss = 0.0, softcap = 0.0;

    xentcpp::LinearProblem<T> problem() const {
        xentcpp::LinearProblem<T> p;
        p.input = input.data();
        p.weight = weight.data();
        p.bias = bias.empty() ? nullptr : bias.data();
        p.labels = labels.data();
        p.rows = rows;
        p.hidden = hidden;
        p.classes = classes;
        return p;
    }
    xentcpp::Options<T> options(Reduction r) const {
        xentcpp::Options<T> o;
        o.weight = class_weight.empty() ? nullptr : class_weight.data();
        o.ignore_index = ignore_index;
        o.label_smoothing = smoothing;
        o.reduction = r;
        o.z_loss = z_loss;
        o.softcap = softcap;
        return o;
    }
    // The logits, in double: input @ weight.T + bias.
    std::vector<double> logits() const {
        std::vector<double> x(sz(rows * classes));
        for (Index i = 0; i < rows; ++i) {
            for (Index c = 0; c < classes; ++c) {
                double s = bias.empty() ? 0.0 : static_cast<double>(bias[sz(c)]);
                for (Index k = 0; k < hidden; ++k) {
                    s += static_cast<double>(input[sz(i * hidden + k)]) * static_cast<double>(weight[sz(c * hidden + k)]);
                }
                x[sz(i * classes + c)] = s;
            }
        }
        return x;
    }
    template <typename U>
    LinearCase<U> as() const {
        LinearCase<U> c;
        c.rows = rows, c.hidden = hidden, c.classes = classes;
        c.input = cast<U>(widen(input)), c.weight = cast<U>(widen(weight)), c.bias = cast<U>(widen(bias));
        c.labels = labels, c.class_weight = cast<U>(widen(class_weight));
        c.ignore_index = ignore_index, c.smoothing = smoothing, c.z_loss = z_loss, c.softcap = softcap;
        return c;
    }
};

template <typename T>
struct Result {
    double loss = 0.0, z_loss = 0.0;
    std::vector<T> rows, d_input, d_weight, d_bias;
};

// One call with every output asked for (per-row losses for none), outputs filled with kUnwritten first.
template <typename T>
Result<T> run(const LinearCase<T>& c, Reduction r, Index chunk_rows = 0, double grad_output = 1.0,
              const std::vector<T>& per_row = {}, double filter_eps = 0.0) {
    Result<T> out;
    out.rows.assign(sz(c.rows), kUnwritten<T>);
    out.d_input.assign(sz(c.rows * c.hidden), kUnwritten<T>);
    out.d_weight.assign(sz(c.classes * c.hidden), kUnwritten<T>);
    out.d_bias.assign(c.bias.empty() ? 0 : sz(c.classes), kUnwritten<T>);
    xentcpp::LinearGrads<T> g;
    g.input = out.d_input.data();
    g.weight = out.d_weight.data();
    g.bias = c.bias.empty() ? nullptr : out.d_bias.data();
    g.grad_output = grad_output;
    g.grad_output_rows = per_row.empty() ? nullptr : per_row.data();
    xentcpp::LinearSettings s;
    s.chunk_rows = chunk_rows;
    s.filter_eps = filter_eps;
    const xentcpp::Totals t = xentcpp::linear_cross_entropy<T>(c.problem(), c.options(r), s,
                                                               r == Reduction::none ? out.rows.data() : nullptr, &g);
    out.loss = t.loss;
    out.z_loss = t.z_loss;
    return out;
}

// Random layer: inputs and weights in [-1, 1), bias in [-2, 2), labels in [0, classes).
LinearCase<double> random_case(Index rows, Index hidden, Index classes, bool with_bias, std::uint64_t seed) {
    Rng rng(seed);
    LinearCase<double> c;
    c.rows = rows, c.hidden = hidden, c.classes = classes;
    c.input.resize(sz(rows * hidden));
    for (double& v : c.input) v = rng.uniform(-1.0, 1.0);
    c.weight.resize(sz(classes * hidden));
    for (double& v : c.weight) v = rng.uniform(-1.0, 1.0);
    if (with_bias) {
        c.bias.resize(sz(classes));
        for (double& v : c.bias) v = rng.uniform(-2.0, 2.0);
    }
    c.labels.resize(sz(rows));
    for (Index& y : c.labels) y = rng.below(classes);
    return c;
}

// The reference of the loss: the core's semantics written out in double (reference.hpp) on the
// double logits, with the z-loss and soft cap applied here.
double reference_loss(const LinearCase<double>& c, Reduction r, std::vector<double>* rows_out = nullptr) {
    std::vector<double> x = c.logits();
    if (c.softcap != 0.0) {
        for (double& v : x) v = c.softcap * std::tanh(v / c.softcap);
    }
    RefOptions o;
    o.weight = c.class_weight;
    o.ignore_index = c.ignore_index;
    o.smoothing = c.smoothing;
    std::vector<double> rows = ref_rows_index(x, c.rows, c.classes, c.labels, o);
    double z_total = 0.0, counted = 0.0;
    for (Index i = 0; i < c.rows; ++i) {
        if (c.labels[sz(i)] == c.ignore_index) continue;
        const double lse = ref_lse(x.data() + i * c.classes, c.classes);
        rows[sz(i)] += c.z_loss * lse * lse;
        z_total += c.z_loss * lse * lse;
        counted += 1.0;
    }
    if (rows_out) *rows_out = rows;
    if (r != Reduction::mean) return ref_sum(rows);
    const double ce = ref_sum(rows) - z_total;
    return ce / ref_weight_sum(c.labels, o) + (c.z_loss != 0.0 ? z_total / counted : 0.0);
}

// A case with every option on: class weights, an ignored row, smoothing, z-loss, soft cap, bias.
LinearCase<double> full_case(Index rows, std::uint64_t seed) {
    LinearCase<double> c = random_case(rows, 6, 9, true, seed);
    c.class_weight = {0.5, 2.0, 1.0, 3.0, 0.25, 1.0, 1.5, 0.75, 2.5};
    c.labels[1] = -100;
    c.smoothing = 0.15;
    c.z_loss = 0.01;
    c.softcap = 3.0;
    return c;
}

TEST(Linear, LossMatchesReferenceForEveryReductionAndChunk) {
    for (bool bias : {false, true}) {
        for (Index chunk : {Index{0}, Index{1}, Index{3}, Index{7}, Index{50}}) {
            SCOPED_TRACE(::testing::Message() << "bias " << bias << ", chunk " << chunk);
            LinearCase<double> c = full_case(7, 3);
            if (!bias) c.bias.clear();
            for (Reduction r : kReductions) {
                std::vector<double> want_rows;
                const double want = reference_loss(c, r, &want_rows);
                const Result<double> got = run(c, r, chunk);
                EXPECT_TRUE(close(got.loss, want, 1e-12)) << name(r);
                if (r == Reduction::none) {
                    EXPECT_TRUE(all_close(got.rows, want_rows, 1e-12));
                }
                const Result<float> f = run(c.as<float>(), r, chunk);
                EXPECT_TRUE(close(f.loss, want, 1e-5)) << name(r);
            }
        }
    }
}

TEST(Linear, GradientsMatchFiniteDifferences) {
    const LinearCase<double> c = full_case(5, 11);
    const std::vector<double> per_row = {0.5, -1.0, 2.0, 0.25, 1.5};
    for (Reduction r : kReductions) {
        SCOPED_TRACE(name(r));
        const double up = 0.7;
        // The objective whose gradient is computed: up * loss, or sum_i per_row[i] * loss_i.
        const auto objective = [&](const LinearCase<double>& d) {
            std::vector<double> rows;
            const double l = reference_loss(d, r, &rows);
            if (r != Reduction::none) return up * l;
            double f = 0.0;
            for (std::size_t i = 0; i < rows.size(); ++i) f += per_row[i] * rows[i];
            return f;
        };
        const Result<double> got = run(c, r, 2, up, r == Reduction::none ? per_row : std::vector<double>{});
        const auto check = [&](std::vector<double> LinearCase<double>::*member, const std::vector<double>& grad) {
            const std::vector<double> fd = fd_gradient(
                [&](const std::vector<double>& v) {
                    LinearCase<double> d = c;
                    d.*member = v;
                    return objective(d);
                },
                c.*member, 1e-5);
            EXPECT_TRUE(all_close(grad, fd, 1e-8));
            double norm = 0.0;
            for (double v : fd) norm += std::fabs(v);
            EXPECT_GT(norm, 0.01);  // the finite differences can tell a wrong gradient
        };
        check(&LinearCase<double>::input, got.d_input);
        check(&LinearCase<double>::weight, got.d_weight);
        check(&LinearCase<double>::bias, got.d_bias);
    }
}

// float results against the chain rule in double through the core's own logit gradient.
TEST(Linear, FloatGradientsMatchTheUnfusedChainRule) {
    const LinearCase<double> c = full_case(37, 5);
    const std::vector<double> x = c.logits();
    std::vector<double> g(x.size());
    xentcpp::Problem<double> p;
    p.input = x.data(), p.rows = c.rows, p.classes = c.classes, p.labels = c.labels.data();
    xentcpp::GradRequest<double> request;
    request.grad = g.data();
    xentcpp::compute<double>(p, c.options(Reduction::mean), nullptr, &request);
    std::vector<double> d_input(sz(c.rows * c.hidden), 0.0), d_weight(sz(c.classes * c.hidden), 0.0),
        d_bias(sz(c.classes), 0.0);
    for (Index i = 0; i < c.rows; ++i) {
        for (Index v = 0; v < c.classes; ++v) {
            const double gv = g[sz(i * c.classes + v)];
            d_bias[sz(v)] += gv;
            for (Index k = 0; k < c.hidden; ++k) {
                d_input[sz(i * c.hidden + k)] += gv * c.weight[sz(v * c.hidden + k)];
                d_weight[sz(v * c.hidden + k)] += gv * c.input[sz(i * c.hidden + k)];
            }
        }
    }
    for (Index chunk : {Index{0}, Index{4}, Index{10}}) {
        const Result<float> got = run(c.as<float>(), Reduction::mean, chunk);
        EXPECT_TRUE(all_close(got.d_input, d_input, 1e-6));
        EXPECT_TRUE(all_close(got.d_weight, d_weight, 1e-6));
        EXPECT_TRUE(all_close(got.d_bias, d_bias, 1e-6));
    }
}

TEST(Linear, BitwiseTheSameForOneAndTwoThreads) {
#ifdef _OPENMP
    // Several class tiles (5 of 512) and hidden tiles (2 of 512), rows in uneven chunks.
    const LinearCase<float> c = random_case(45, 600, 2100, true, 17).as<float>();
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
    const Result<float> one = run(c, Reduction::mean, 16);
    omp_set_num_threads(2);
    const Result<float> two = run(c, Reduction::mean, 16);
    omp_set_num_threads(before);
    EXPECT_EQ(one.loss, two.loss);
    EXPECT_TRUE(bitwise_equal(one.d_input, two.d_input));
    EXPECT_TRUE(bitwise_equal(one.d_weight, two.d_weight));
    EXPECT_TRUE(bitwise_equal(one.d_bias, two.d_bias));
#else
    GTEST_SKIP() << "built without OpenMP";
#endif
}

TEST(Linear, AllRowsIgnoredAndNoRows) {
    LinearCase<double> c = random_case(4, 3, 5, true, 2);
    for (Index& y : c.labels) y = -100;
    const Result<double> mean = run(c, Reduction::mean, 3);
    EXPECT_TRUE(std::isnan(mean.loss));
    EXPECT_TRUE(all_close(mean.d_input, std::vector<double>(mean.d_input.size(), 0.0), 0.0));
    EXPECT_TRUE(all_close(mean.d_weight, std::vector<double>(mean.d_weight.size(), 0.0), 0.0));
    EXPECT_EQ(run(c, Reduction::sum, 3).loss, 0.0);
    c.rows = 0;
    c.input.clear();
    c.labels.clear();
    const Result<double> empty = run(c, Reduction::sum);
    EXPECT_EQ(empty.loss, 0.0);
    EXPECT_TRUE(all_close(empty.d_weight, std::vector<double>(empty.d_weight.size(), 0.0), 0.0));
    EXPECT_TRUE(all_close(empty.d_bias, std::vector<double>(empty.d_bias.size(), 0.0), 0.0));
}

TEST(Linear, FilterSkipsOnlyWhatItMay) {
    const LinearCase<double> c = random_case(6, 4, 2 * xentcpp::kStripeClasses + 10, true, 8);
    const Result<double> exact = run(c, Reduction::mean, 4);
    // A threshold no entry is under keeps every stripe: the same calls, the same bits.
    const Result<double> kept = run(c, Reduction::mean, 4, 1.0, {}, 1e-300);
    EXPECT_TRUE(bitwise_equal(kept.d_input, exact.d_input));
    EXPECT_TRUE(bitwise_equal(kept.d_weight, exact.d_weight));
    // One above every entry skips every stripe: zero d_input and d_weight, an exact loss and d_bias.
    const Result<double> none = run(c, Reduction::mean, 4, 1.0, {}, 1e9);
    EXPECT_EQ(none.loss, exact.loss);
    EXPECT_TRUE(bitwise_equal(none.d_bias, exact.d_bias));
    EXPECT_TRUE(all_close(none.d_input, std::vector<double>(none.d_input.size(), 0.0), 0.0));
    EXPECT_TRUE(all_close(none.d_weight, std::vector<double>(none.d_weight.size(), 0.0), 0.0));
}

// A bad label in the last chunk: nothing written, not even the first chunks' outputs.
TEST(Linear, ErrorsLeaveOutputsUnwritten) {
    LinearCase<float> c = random_case(9, 3, 5, true, 4).as<float>();
    c.labels[8] = 5;
    Result<float> out;
    EXPECT_THROW(out = run(c, Reduction::none, 2), std::out_of_range);
    const auto untouched = [](const LinearCase<float>& d, Reduction r, const char* what) {
        std::vector<float> rows(sz(d.rows), kUnwritten<float>), di(sz(d.rows * d.hidden), kUnwritten<float>),
            dw(sz(d.classes * d.hidden), kUnwritten<float>);
        xentcpp::LinearGrads<float> g;
        g.input = di.data();
        g.weight = dw.data();
        xentcpp::LinearSettings s;
        s.chunk_rows = 2;
        SCOPED_TRACE(what);
        EXPECT_ANY_THROW(xentcpp::linear_cross_entropy<float>(d.problem(), d.options(r), s, rows.data(), &g));
        for (const auto* v : {&rows, &di, &dw}) {
            for (float e : *v) ASSERT_EQ(e, kUnwritten<float>);
        }
    };
    untouched(c, Reduction::none, "label = classes");
    c.labels[8] = 0;
    LinearCase<float> bad = c;
    bad.class_weight = {1.0f, std::nanf(""), 1.0f, 1.0f, 1.0f};
    untouched(bad, Reduction::mean, "NaN class weight");
    bad = c;
    bad.smoothing = std::nan("");
    untouched(bad, Reduction::mean, "NaN smoothing");
    bad = c;
    bad.softcap = -1.0;
    untouched(bad, Reduction::mean, "negative softcap");
    bad = c;
    bad.hidden = 0;
    untouched(bad, Reduction::mean, "no hidden units");
}

TEST(Linear, ChunkRowsAreBalancedAndFromTheBudget) {
    xentcpp::LinearSettings s;
    EXPECT_EQ(xentcpp::linear_chunk_rows(4096, 32000, 4, s), 512);          // 64 MiB / 128 000 B = 524 rows
    EXPECT_EQ(xentcpp::linear_chunk_rows(1024, 128256, 4, s), 128);         // 130 rows, 8 chunks of 128
    EXPECT_EQ(xentcpp::linear_chunk_rows(10, 128256, 4, s), 10);
    EXPECT_EQ(xentcpp::linear_chunk_rows(0, 5, 4, s), 1);
    s.workspace_bytes = 5 * 4 * 4;                                          // 4 rows: 10 = 4 + 3 + 3
    EXPECT_EQ(xentcpp::linear_chunk_rows(10, 5, 4, s), 4);
    s.workspace_bytes = 5 * 4 * 3;                                          // 3 rows: 10 = 3 + 3 + 3 + 1 -> 3
    EXPECT_EQ(xentcpp::linear_chunk_rows(10, 5, 4, s), 3);
    s.chunk_rows = 4;                                                       // as given: 4 + 4 + 2
    EXPECT_EQ(xentcpp::linear_chunk_rows(10, 5, 4, s), 4);
    s.chunk_rows = 50;
    EXPECT_EQ(xentcpp::linear_chunk_rows(10, 5, 4, s), 10);
}

}  // namespace
