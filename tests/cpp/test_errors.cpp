// Errors: labels out of range (std::out_of_range naming the row and the value) and invalid arguments
// (std::invalid_argument), both thrown before anything is written.
#include "reference.hpp"

#include <cctype>
#include <stdexcept>

namespace {

using namespace xent_test;

template <typename T>
class Errors : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(Errors, Types);

// Whether `msg` contains the integer v as a whole number (not as part of a longer one).
bool has_number(const std::string& msg, long long v) {
    const std::string s = std::to_string(v);
    for (std::size_t at = msg.find(s); at != std::string::npos; at = msg.find(s, at + 1)) {
        const bool digit_before = at > 0 && (std::isdigit(static_cast<unsigned char>(msg[at - 1])) ||
                                             (v >= 0 && msg[at - 1] == '-'));
        const bool digit_after = at + s.size() < msg.size() && std::isdigit(static_cast<unsigned char>(msg[at + s.size()]));
        if (!digit_before && !digit_after) return true;
    }
    return false;
}

template <typename F>
void expect_out_of_range(F&& f, Index row, Index value) {
    try {
        f();
        ADD_FAILURE() << "no exception; expected std::out_of_range";
    } catch (const std::out_of_range& e) {
        const std::string msg = e.what();
        EXPECT_TRUE(has_number(msg, row)) << "the message does not name row " << row << ": " << msg;
        EXPECT_TRUE(has_number(msg, value)) << "the message does not name label " << value << ": " << msg;
    } catch (const std::exception& e) {
        ADD_FAILURE() << "expected std::out_of_range, got: " << e.what();
    }
}

template <typename F>
void expect_invalid_argument(F&& f) {
    try {
        f();
        ADD_FAILURE() << "no exception; expected std::invalid_argument";
    } catch (const std::invalid_argument&) {
    } catch (const std::exception& e) {
        ADD_FAILURE() << "expected std::invalid_argument, got: " << e.what();
    }
}

constexpr double kSentinel = -12345.0;

// A bad label in the last row: a kernel that writes row by row would already have written the others.
TYPED_TEST(Errors, LabelOutOfRange) {
    using T = TypeParam;
    const T s = static_cast<T>(kSentinel);
    for (Index bad : {Index{4}, Index{-1}, Index{1} << 40}) {
        for (bool from_logits : {true, false}) {
            SCOPED_TRACE(::testing::Message() << "label " << bad << (from_logits ? "" : ", from probabilities"));
            Case<T> c = random_index_case<T>(6, 4, 61);
            if (!from_logits) c.input = cast<T>(random_probabilities(24, 0.05, 0.95, 62));
            c.from_logits = from_logits;
            c.labels[5] = bad;
            const Case<T> before = c;
            std::vector<T> rows(6, s), g(24, s);

            expect_out_of_range([&] { xentcpp::loss<T>(c.problem(), c.options(Reduction::none), rows.data()); }, 5, bad);
            expect_out_of_range([&] { c.loss(Reduction::mean); }, 5, bad);
            expect_out_of_range([&] { c.loss(Reduction::sum); }, 5, bad);
            for (Reduction r : kReductions) {
                xentcpp::GradRequest<T> req;
                req.grad = g.data();
                std::vector<T> ones(6, T(1));
                req.grad_output_rows = r == Reduction::none ? ones.data() : nullptr;
                expect_out_of_range([&] { xentcpp::grad<T>(c.problem(), c.options(r), req); }, 5, bad);
                expect_out_of_range([&] { xentcpp::value_and_grad<T>(c.problem(), c.options(r), rows.data(), g.data()); },
                                    5, bad);
                // In place: the logits must survive the error.
                req.grad = c.input.data();
                expect_out_of_range([&] { xentcpp::grad<T>(c.problem(), c.options(r), req); }, 5, bad);
                expect_out_of_range(
                    [&] { xentcpp::value_and_grad<T>(c.problem(), c.options(r), rows.data(), c.input.data()); }, 5, bad);
            }
            EXPECT_EQ(rows, std::vector<T>(6, s)) << "row_losses were written";
            EXPECT_EQ(g, std::vector<T>(24, s)) << "grad was written";
            EXPECT_TRUE(bitwise_equal(c.input, before.input)) << "the input was written";
        }
    }
}

TYPED_TEST(Errors, LabelOutOfRangeInAnEarlierRow) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(40, 3, 63);
    c.labels[17] = 3;
    std::vector<T> rows(40, static_cast<T>(kSentinel));
    expect_out_of_range([&] { xentcpp::loss<T>(c.problem(), c.options(Reduction::none), rows.data()); }, 17, 3);
    EXPECT_EQ(rows, std::vector<T>(40, static_cast<T>(kSentinel)));
}

// With another ignore_index, -100 is an ordinary label and out of range.
TYPED_TEST(Errors, DefaultIgnoreIndexIsOutOfRangeWhenAnotherIsSet) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(3, 4, 64);
    c.ignore_index = -1;
    c.labels = {-1, 2, -100};
    expect_out_of_range([&] { c.loss(Reduction::mean); }, 2, -100);
    c.labels[2] = 0;
    EXPECT_NO_THROW(c.loss(Reduction::mean));
}

// Every entry point rejects the call and writes nothing.
template <typename T>
void expect_rejected(const xentcpp::Problem<T>& problem, const xentcpp::Options<T>& options) {
    const T s = static_cast<T>(kSentinel);
    std::vector<T> rows(64, s), g(64, s), ones(64, T(1));
    for (Reduction r : kReductions) {
        SCOPED_TRACE(name(r));
        xentcpp::Options<T> o = options;
        o.reduction = r;
        expect_invalid_argument([&] { xentcpp::loss<T>(problem, o, rows.data()); });
        xentcpp::GradRequest<T> req;
        req.grad = g.data();
        req.grad_output_rows = r == Reduction::none ? ones.data() : nullptr;
        expect_invalid_argument([&] { xentcpp::grad<T>(problem, o, req); });
        expect_invalid_argument([&] { xentcpp::value_and_grad<T>(problem, o, rows.data(), g.data()); });
    }
    EXPECT_EQ(rows, std::vector<T>(64, s)) << "row_losses were written";
    EXPECT_EQ(g, std::vector<T>(64, s)) << "grad was written";
}

TYPED_TEST(Errors, InvalidProblem) {
    using T = TypeParam;
    const Case<T> c = random_index_case<T>(4, 5, 65);
    const std::vector<T> probs = cast<T>(random_soft_targets(4, 5, 66));
    const xentcpp::Options<T> o = c.options(Reduction::mean);
    {
        SCOPED_TRACE("classes = 0");
        auto p = c.problem();
        p.classes = 0;
        expect_rejected(p, o);
    }
    {
        SCOPED_TRACE("negative classes");
        auto p = c.problem();
        p.classes = -5;
        expect_rejected(p, o);
    }
    {
        SCOPED_TRACE("negative rows");
        auto p = c.problem();
        p.rows = -1;
        expect_rejected(p, o);
    }
    {
        SCOPED_TRACE("null input");
        auto p = c.problem();
        p.input = nullptr;
        expect_rejected(p, o);
    }
    {
        SCOPED_TRACE("labels and probs");
        auto p = c.problem();
        p.probs = probs.data();
        expect_rejected(p, o);
    }
    {
        SCOPED_TRACE("neither labels nor probs");
        auto p = c.problem();
        p.labels = nullptr;
        expect_rejected(p, o);
    }
}

TYPED_TEST(Errors, InvalidOptions) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(4, 5, 67);
    c.input = cast<T>(random_probabilities(20, 0.05, 0.95, 68));  // valid for both from_logits values
    for (double a : {1.5, -0.1, kNaN, kInf}) {
        SCOPED_TRACE(::testing::Message() << "label_smoothing " << a);
        c.smoothing = a;
        expect_rejected(c.problem(), c.options(Reduction::mean));
    }
    c.smoothing = 0.0;
    c.from_logits = false;
    for (double eps : {0.6, 0.5, -1e-3, kNaN}) {
        SCOPED_TRACE(::testing::Message() << "epsilon " << eps);
        c.epsilon = eps;
        expect_rejected(c.problem(), c.options(Reduction::mean));
    }
    c.epsilon = 1e-7;
    {
        SCOPED_TRACE("reduction out of range");
        auto o = c.options(Reduction::mean);
        o.reduction = static_cast<Reduction>(7);
        const T s = static_cast<T>(kSentinel);
        std::vector<T> rows(4, s), g(20, s);
        expect_invalid_argument([&] { xentcpp::loss<T>(c.problem(), o, rows.data()); });
        xentcpp::GradRequest<T> req;
        req.grad = g.data();
        expect_invalid_argument([&] { xentcpp::grad<T>(c.problem(), o, req); });
        expect_invalid_argument([&] { xentcpp::value_and_grad<T>(c.problem(), o, rows.data(), g.data()); });
        EXPECT_EQ(g, std::vector<T>(20, s));
    }
    // The valid limits are accepted: smoothing 0 and 1, epsilon 0 and just below 0.5.
    c.epsilon = 0.0;
    EXPECT_NO_THROW(c.loss(Reduction::mean));
    c.epsilon = 0.499;
    EXPECT_NO_THROW(c.loss(Reduction::mean));
    c.smoothing = 1.0;
    EXPECT_NO_THROW(c.loss(Reduction::mean));
}

// Class weights may be any finite value, as in PyTorch: NaN and +-inf are refused, negative and
// zero weights are not.
TYPED_TEST(Errors, NaNOrInfiniteWeight) {
    using T = TypeParam;
    Case<T> c = random_index_case<T>(4, 5, 70);
    for (double bad : {kNaN, kInf, -kInf}) {
        SCOPED_TRACE(::testing::Message() << "weight " << bad);
        c.weight = std::vector<T>(5, T(1));
        c.weight[3] = static_cast<T>(bad);
        expect_rejected(c.problem(), c.options(Reduction::mean));
    }
    c.weight = {T(0), T(-0.0), T(1), T(-1e-30), T(-2)};
    EXPECT_NO_THROW(c.loss(Reduction::sum));
}

TYPED_TEST(Errors, MissingOutputBuffers) {
    using T = TypeParam;
    const Case<T> c = random_index_case<T>(4, 5, 69);
    std::vector<T> g(20, static_cast<T>(kSentinel)), rows(4, static_cast<T>(kSentinel));
    // reduction none needs row_losses.
    expect_invalid_argument([&] { xentcpp::loss<T>(c.problem(), c.options(Reduction::none), nullptr); });
    expect_invalid_argument([&] { xentcpp::value_and_grad<T>(c.problem(), c.options(Reduction::none), nullptr, g.data()); });
    // The gradient needs a buffer.
    for (Reduction r : kReductions) {
        SCOPED_TRACE(name(r));
        xentcpp::GradRequest<T> req;
        std::vector<T> ones(4, T(1));
        req.grad_output_rows = r == Reduction::none ? ones.data() : nullptr;
        expect_invalid_argument([&] { xentcpp::grad<T>(c.problem(), c.options(r), req); });
        expect_invalid_argument([&] { xentcpp::value_and_grad<T>(c.problem(), c.options(r), rows.data(), nullptr); });
    }
    EXPECT_EQ(g, std::vector<T>(20, static_cast<T>(kSentinel)));
    EXPECT_EQ(rows, std::vector<T>(4, static_cast<T>(kSentinel)));
}

}  // namespace
