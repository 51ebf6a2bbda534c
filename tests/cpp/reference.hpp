// Shared helpers of the GoogleTest suites: a float64 reference written from the formulas of the
// contract (not from the kernels), a deterministic data generator, buffers that build the core's
// structs, and comparisons with per-type tolerances.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include <xentcpp/xentcpp.hpp>

namespace xent_test {

using Index = std::int64_t;
using xentcpp::Reduction;

inline const double kInf = std::numeric_limits<double>::infinity();
inline const double kNaN = std::numeric_limits<double>::quiet_NaN();

inline std::size_t sz(Index n) { return static_cast<std::size_t>(n); }

inline const char* name(Reduction r) {
    switch (r) {
        case Reduction::none: return "none";
        case Reduction::sum: return "sum";
        case Reduction::mean: return "mean";
    }
    return "?";
}
inline const Reduction kReductions[] = {Reduction::none, Reduction::sum, Reduction::mean};

// Tolerance for results of type T against the float64 reference, relative to max(1, |expected|),
// for O(1) inputs: float about 80 eps (vector exp/log plus the cancellation in lse - x[y]).
template <typename T> constexpr double tol();
template <> constexpr double tol<float>() { return 1e-5; }
template <> constexpr double tol<double>() { return 1e-12; }

// splitmix64: the same numbers on every platform (std distributions are implementation-defined).
class Rng {
public:
    explicit Rng(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    // Uniform in [lo, hi), rounded to a multiple of 2^-12 so that small values are exact in float too.
    double uniform(double lo, double hi) {
        const double u = static_cast<double>(next() >> 44) / 1048576.0;  // 20 random bits
        return std::ldexp(std::round(std::ldexp(lo + (hi - lo) * u, 12)), -12);
    }
    Index below(Index n) { return static_cast<Index>(next() % static_cast<std::uint64_t>(n)); }

private:
    std::uint64_t state_;
};

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
    std::vector<T> out(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = static_cast<T>(v[i]);
    return out;
}
template <typename T>
std::vector<double> widen(const std::vector<T>& v) {
    return std::vector<double>(v.begin(), v.end());
}

// ---------------------------------------------------------------------------------------------
// The reference, in double, from the formulas of the contract.

// log(sum(exp(x))) over one row: -inf for an all -inf row, NaN if the row has a NaN.
inline double ref_lse(const double* x, Index classes) {
    double m = -kInf;
    for (Index c = 0; c < classes; ++c) {
        if (std::isnan(x[c])) return kNaN;
        m = std::max(m, x[c]);
    }
    if (m == -kInf) return kNaN;  // no valid max: the contract gives NaN (as PyTorch)
    if (m == kInf) return kNaN;   // +inf logit: NaN row
    long double s = 0.0L;
    for (Index c = 0; c < classes; ++c) s += std::exp(static_cast<long double>(x[c] - m));
    return m + static_cast<double>(std::log(s));
}

// softmax of one row (zeros where x = -inf).
inline std::vector<double> ref_softmax(const double* x, Index classes) {
    const double lse = ref_lse(x, classes);
    std::vector<double> p(sz(classes));
    for (Index c = 0; c < classes; ++c) p[sz(c)] = std::exp(x[c] - lse);
    return p;
}

struct RefOptions {
    std::vector<double> weight;  // empty: all ones
    Index ignore_index = -100;
    double smoothing = 0.0;
    bool from_logits = true;
    double epsilon = 1e-7;

    double w(Index c) const { return weight.empty() ? 1.0 : weight[sz(c)]; }
};

// -log of the predicted probability of class c: lse - x[c], or -log(clip(q[c], eps, 1 - eps)).
inline double ref_nll(const double* x, double lse, Index c, const RefOptions& o) {
    if (o.from_logits) return lse - x[c];
    if (std::isnan(x[c])) return kNaN;
    return -std::log(std::clamp(x[c], o.epsilon, 1.0 - o.epsilon));
}

// Per-row losses for class-index targets (ignored rows give 0); terms with coefficient 0 are skipped.
inline std::vector<double> ref_rows_index(const std::vector<double>& x, Index rows, Index classes,
                                          const std::vector<Index>& labels, const RefOptions& o) {
    std::vector<double> out(sz(rows), 0.0);
    const double a = o.smoothing;
    for (Index r = 0; r < rows; ++r) {
        const Index y = labels[sz(r)];
        if (y == o.ignore_index) continue;
        const double* row = x.data() + r * classes;
        const double lse = o.from_logits ? ref_lse(row, classes) : 0.0;
        double loss = 0.0;
        if ((1.0 - a) * o.w(y) != 0.0) loss += (1.0 - a) * o.w(y) * ref_nll(row, lse, y, o);
        for (Index c = 0; c < classes; ++c) {
            const double coef = a / static_cast<double>(classes) * o.w(c);
            if (coef != 0.0) loss += coef * ref_nll(row, lse, c, o);
        }
        if (o.from_logits && std::isnan(lse)) loss = kNaN;
        out[sz(r)] = loss;
    }
    return out;
}

// Per-row losses for probability targets t (rows × classes), smoothed t' = (1 - a) t + a / C.
inline std::vector<double> ref_rows_probs(const std::vector<double>& x, Index rows, Index classes,
                                          const std::vector<double>& t, const RefOptions& o) {
    std::vector<double> out(sz(rows), 0.0);
    const double a = o.smoothing;
    for (Index r = 0; r < rows; ++r) {
        const double* row = x.data() + r * classes;
        const double lse = o.from_logits ? ref_lse(row, classes) : 0.0;
        double loss = 0.0;
        for (Index c = 0; c < classes; ++c) {
            const double tc = (1.0 - a) * t[sz(r * classes + c)] + a / static_cast<double>(classes);
            if (o.w(c) * tc != 0.0) loss += o.w(c) * tc * ref_nll(row, lse, c, o);
        }
        if (o.from_logits && std::isnan(lse)) loss = kNaN;
        out[sz(r)] = loss;
    }
    return out;
}

// Denominator of the mean for class-index targets: sum of w[y] over the rows not ignored.
inline double ref_weight_sum(const std::vector<Index>& labels, const RefOptions& o) {
    double d = 0.0;
    for (Index y : labels)
        if (y != o.ignore_index) d += o.w(y);
    return d;
}

inline double ref_sum(const std::vector<double>& v) {
    long double s = 0.0L;
    for (double e : v) s += e;
    return static_cast<double>(s);
}

// What `loss` returns: the sum for none and sum, sum / denominator for mean (NaN when it is 0).
inline double ref_reduce(const std::vector<double>& rows, Reduction r, double denominator) {
    const double s = ref_sum(rows);
    if (r != Reduction::mean) return s;
    return denominator == 0.0 ? kNaN : s / denominator;
}

// ---------------------------------------------------------------------------------------------
// Buffers for one call of the core; the structs are built on demand so copies stay valid.

// What output buffers hold before a call: an element the core forgets to write shows up.
template <typename T>
inline const T kUnwritten = T(-777);

template <typename T>
struct Case {
    Index rows = 0;
    Index classes = 0;
    std::vector<T> input;
    std::vector<Index> labels;  // class-index targets, or
    std::vector<T> probs;       // probability targets (exactly one of the two is non-empty)
    std::vector<T> weight;
    Index ignore_index = -100;
    double smoothing = 0.0;
    bool from_logits = true;
    double epsilon = 1e-7;

    xentcpp::Problem<T> problem() const {
        xentcpp::Problem<T> p;
        p.input = input.data();
        p.rows = rows;
        p.classes = classes;
        p.labels = labels.empty() ? nullptr : labels.data();
        p.probs = probs.empty() ? nullptr : probs.data();
        return p;
    }
    xentcpp::Options<T> options(Reduction r) const {
        xentcpp::Options<T> o;
        o.weight = weight.empty() ? nullptr : weight.data();
        o.ignore_index = ignore_index;
        o.label_smoothing = smoothing;
        o.reduction = r;
        o.from_logits = from_logits;
        o.epsilon = epsilon;
        return o;
    }
    RefOptions ref_options() const {
        return RefOptions{widen(weight), ignore_index, smoothing, from_logits, epsilon};
    }
    // The float64 reference of the per-row losses and of what `loss` returns.
    std::vector<double> ref_rows() const {
        return labels.empty() ? ref_rows_probs(widen(input), rows, classes, widen(probs), ref_options())
                              : ref_rows_index(widen(input), rows, classes, labels, ref_options());
    }
    double ref_loss(Reduction r) const {
        const double d = labels.empty() ? static_cast<double>(rows) : ref_weight_sum(labels, ref_options());
        return ref_reduce(ref_rows(), r, d);
    }

    // The core's results.
    double loss(Reduction r) const { return xentcpp::loss<T>(problem(), options(r), nullptr); }
    std::vector<T> row_losses() const {
        std::vector<T> out(sz(rows), kUnwritten<T>);
        xentcpp::loss<T>(problem(), options(Reduction::none), out.data());
        return out;
    }
    // Gradient with a scalar upstream gradient (sum/mean) or per-row upstream gradients (none).
    std::vector<T> grad(Reduction r, double grad_output = 1.0, const std::vector<T>& per_row = {}) const {
        std::vector<T> g(input.size(), kUnwritten<T>);
        xentcpp::GradRequest<T> req;
        req.grad = g.data();
        req.grad_output = grad_output;
        req.grad_output_rows = per_row.empty() ? nullptr : per_row.data();
        xentcpp::grad<T>(problem(), options(r), req);
        return g;
    }

    // The same problem in another type (values must be exact in both).
    template <typename U>
    Case<U> as() const {
        Case<U> c;
        c.rows = rows;
        c.classes = classes;
        c.input = cast<U>(widen(input));
        c.labels = labels;
        c.probs = cast<U>(widen(probs));
        c.weight = cast<U>(widen(weight));
        c.ignore_index = ignore_index;
        c.smoothing = smoothing;
        c.from_logits = from_logits;
        c.epsilon = epsilon;
        return c;
    }
};

// Random logits in [-4, 4) and labels in [0, classes).
template <typename T>
Case<T> random_index_case(Index rows, Index classes, std::uint64_t seed) {
    Rng rng(seed);
    Case<T> c;
    c.rows = rows;
    c.classes = classes;
    std::vector<double> x(sz(rows * classes));
    for (double& v : x) v = rng.uniform(-4.0, 4.0);
    c.input = cast<T>(x);
    c.labels.resize(sz(rows));
    for (Index& y : c.labels) y = rng.below(classes);
    return c;
}

// Random soft targets: each row a probability vector (sums to 1 up to rounding).
inline std::vector<double> random_soft_targets(Index rows, Index classes, std::uint64_t seed) {
    Rng rng(seed);
    std::vector<double> t(sz(rows * classes));
    for (Index r = 0; r < rows; ++r) {
        double s = 0.0;
        for (Index c = 0; c < classes; ++c) s += (t[sz(r * classes + c)] = rng.uniform(0.0, 1.0));
        for (Index c = 0; c < classes; ++c) t[sz(r * classes + c)] /= s;
    }
    return t;
}

// Random probabilities in [lo, hi) (not normalised: from_logits = false uses them as given).
inline std::vector<double> random_probabilities(Index n, double lo, double hi, std::uint64_t seed) {
    Rng rng(seed);
    std::vector<double> q(sz(n));
    for (double& v : q) v = rng.uniform(lo, hi);
    return q;
}

// ---------------------------------------------------------------------------------------------
// Comparisons.

// |got - want| <= rel * max(1, |want|), equal infinities, and NaN only against NaN.
inline ::testing::AssertionResult close(double got, double want, double rel) {
    if (std::isnan(want) || std::isnan(got)) {
        if (std::isnan(want) && std::isnan(got)) return ::testing::AssertionSuccess();
    } else if (std::isinf(want) || std::isinf(got)) {
        if (got == want) return ::testing::AssertionSuccess();
    } else if (std::fabs(got - want) <= rel * std::max(1.0, std::fabs(want))) {
        return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "got " << ::testing::PrintToString(got) << ", expected "
                                         << ::testing::PrintToString(want) << " (tolerance " << rel
                                         << " relative to max(1, |expected|))";
}

template <typename T>
::testing::AssertionResult all_close(const std::vector<T>& got, const std::vector<double>& want, double rel) {
    if (got.size() != want.size())
        return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
    for (std::size_t i = 0; i < got.size(); ++i) {
        auto r = close(static_cast<double>(got[i]), want[i], rel);
        if (!r) return r << " at index " << i;
    }
    return ::testing::AssertionSuccess();
}

// Bit-for-bit equality (NaNs compare by their bits too).
template <typename T>
::testing::AssertionResult bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) return ::testing::AssertionFailure() << "size " << a.size() << " != " << b.size();
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0)
            return ::testing::AssertionFailure() << "differ at index " << i << ": " << ::testing::PrintToString(a[i])
                                                 << " vs " << ::testing::PrintToString(b[i]);
    }
    return ::testing::AssertionSuccess();
}

// Distance in units in the last place between two finite values of type T.
template <typename T>
std::int64_t ulps(T a, T b) {
    using Bits = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
    auto ordered = [](T v) {
        Bits i;
        std::memcpy(&i, &v, sizeof(T));
        const auto w = static_cast<std::int64_t>(i);
        return w < 0 ? static_cast<std::int64_t>(std::numeric_limits<Bits>::min()) - w : w;
    };
    const std::int64_t d = ordered(a) - ordered(b);
    return d < 0 ? -d : d;
}

// Central finite differences of f at x, in double.
inline std::vector<double> fd_gradient(const std::function<double(const std::vector<double>&)>& f,
                                       std::vector<double> x, double h) {
    std::vector<double> g(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double up = f(x);
        x[i] = x0 - h;
        const double down = f(x);
        x[i] = x0;
        g[i] = (up - down) / (2.0 * h);
    }
    return g;
}

}  // namespace xent_test
