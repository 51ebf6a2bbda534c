// libFuzzer target of the C++ core (built by -DXENTCPP_FUZZ=ON with Clang, run by scripts/run_tests.sh
// for a bounded time from the seed corpus in tests/fuzz/corpus/).
//
// The bytes decide a whole call: dtype, shape (0 to 80 classes, or just over one 32 768-class segment),
// target kind, labels (in range, ignore_index, or any 64-bit value), a row mask, weights, options (NaN and out-of-
// range values included), the input (bounded, or any bit pattern) and the entry point. Invariants:
//   1. no crash and no sanitizer report (the build has ASan + UBSan);
//   2. an invalid call throws the documented exception (std::invalid_argument for sizes and options,
//      std::out_of_range for a bad label) and writes no output;
//   3. a valid call does not throw; loss(), grad() and value_and_grad() agree bit for bit;
//   4. finite bounded logits with class-index targets, no smoothing, weights in [0, 2] and z_loss <= 1 give finite
//      losses >= 0, and (without z-loss and softcap) each gradient row sums to about 0 (to rounding).
#include <fuzzer/FuzzedDataProvider.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "xentcpp/xentcpp.hpp"

namespace {

using Index = std::int64_t;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_core invariant violated: %s\n", what);
    std::abort();
}

void check(bool ok, const char* what) {
    if (!ok) fail(what);
}

// An option value: usually a meaningful one, sometimes any double (NaN, inf, negative, huge).
double pick_double(FuzzedDataProvider& fdp, std::initializer_list<double> usual) {
    const auto k = fdp.ConsumeIntegralInRange<std::size_t>(0, usual.size());
    return k < usual.size() ? usual.begin()[k] : fdp.ConsumeFloatingPoint<double>();
}

template <typename T>
struct Call {
    Index rows = 0, classes = 0;
    std::vector<T> input, probs, weight;
    std::vector<std::int64_t> labels;
    std::vector<std::uint8_t> mask;  // the row mask, when use_mask
    xentcpp::Options<T> options;
    bool use_labels = true;
    bool use_mask = false;
    bool bounded = true;  // input decoded into [-512, 512): finite, so the loss must be too

    xentcpp::Problem<T> problem() const {
        xentcpp::Problem<T> p;
        p.input = input.data();
        p.rows = rows;
        p.classes = classes;
        p.labels = use_labels ? labels.data() : nullptr;
        p.probs = use_labels ? nullptr : probs.data();
        p.row_mask = use_mask ? mask.data() : nullptr;
        return p;
    }
};

template <typename T>
Call<T> decode(FuzzedDataProvider& fdp) {
    Call<T> c;
    c.rows = fdp.ConsumeIntegralInRange<Index>(0, 8);
    c.classes = fdp.ConsumeBool() ? fdp.ConsumeIntegralInRange<Index>(0, 80)
                                  : fdp.ConsumeIntegralInRange<Index>(32760, 32800);  // one row, two segments
    if (c.classes > 80) c.rows = std::min<Index>(c.rows, 2);
    const auto n = static_cast<std::size_t>(c.rows * c.classes);
    c.use_labels = fdp.ConsumeIntegralInRange<int>(0, 3) != 0;
    c.bounded = fdp.ConsumeIntegralInRange<int>(0, 3) != 0;
    c.input.resize(n == 0 ? 1 : n);  // never a null pointer: a null input is its own error
    for (std::size_t i = 0; i < n; ++i) {
        // Remaining bytes fill the start of the buffer; the rest stays 0 (exhausted provider).
        c.input[i] = c.bounded ? static_cast<T>(fdp.ConsumeIntegral<std::int16_t>()) / T(64)
                               : fdp.ConsumeFloatingPoint<T>();
    }
    c.options.ignore_index = fdp.ConsumeBool() ? -100 : fdp.ConsumeIntegralInRange<std::int64_t>(-2, 2);
    if (c.use_labels) {
        c.labels.resize(static_cast<std::size_t>(c.rows) + 1);
        for (Index r = 0; r < c.rows; ++r) {
            const int kind = fdp.ConsumeIntegralInRange<int>(0, 15);
            c.labels[static_cast<std::size_t>(r)] =
                kind == 0   ? fdp.ConsumeIntegral<std::int64_t>()  // any value: 2^40, INT64_MIN, ...
                : kind == 1 ? c.options.ignore_index
                            : fdp.ConsumeIntegralInRange<std::int64_t>(0, std::max<Index>(0, c.classes - 1));
        }
    } else {
        c.probs.resize(n == 0 ? 1 : n);
        for (std::size_t i = 0; i < n; ++i) c.probs[i] = static_cast<T>(fdp.ConsumeIntegral<std::uint8_t>()) / T(255);
    }
    if (fdp.ConsumeBool()) {
        c.weight.resize(static_cast<std::size_t>(std::max<Index>(c.classes, 1)));
        for (auto& w : c.weight) {
            w = static_cast<T>(pick_double(fdp, {0.5, 1.0, 2.0, 0.0, -1.0, std::numeric_limits<double>::infinity()}));
        }
        c.options.weight = c.weight.data();
    }
    c.options.label_smoothing = pick_double(fdp, {0.0, 0.0, 0.1, 1.0});
    c.options.reduction = static_cast<xentcpp::Reduction>(fdp.ConsumeIntegralInRange<int>(0, 3));  // 3: invalid
    c.options.from_logits = fdp.ConsumeIntegralInRange<int>(0, 3) != 0;
    c.options.epsilon = pick_double(fdp, {1e-7, 0.0, 0.25});
    c.options.z_loss = pick_double(fdp, {0.0, 0.0, 1e-4, -1.0});
    c.options.softcap = pick_double(fdp, {0.0, 0.0, 30.0, 0.5, -1.0});
    c.use_mask = fdp.ConsumeIntegralInRange<int>(0, 3) == 0;
    c.mask.resize(static_cast<std::size_t>(c.rows) + 1);
    for (Index r = 0; c.use_mask && r < c.rows; ++r) c.mask[static_cast<std::size_t>(r)] = fdp.ConsumeBool();
    return c;
}

// What the core must refuse, decided here from the contract (xentcpp.hpp), not from the core's code.
enum class Expect { ok, invalid_argument, out_of_range };

template <typename T>
Expect expected(const Call<T>& c) {
    const auto& o = c.options;
    bool options_ok = c.classes >= 1 && o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0 &&
                      (o.from_logits || (o.epsilon >= 0.0 && o.epsilon < 0.5)) &&
                      static_cast<int>(o.reduction) >= 0 && static_cast<int>(o.reduction) <= 2 &&
                      o.z_loss >= 0.0 && std::isfinite(o.z_loss) &&
                      (o.softcap == 0.0 || (static_cast<T>(o.softcap) > T(0) && std::isfinite(static_cast<T>(o.softcap)))) &&
                      (o.from_logits || (o.z_loss == 0.0 && o.softcap == 0.0));
    for (std::size_t k = 0; options_ok && o.weight && k < c.weight.size(); ++k) options_ok = std::isfinite(c.weight[k]);
    if (!options_ok) return Expect::invalid_argument;
    for (Index r = 0; c.use_labels && r < c.rows; ++r) {
        const std::int64_t y = c.labels[static_cast<std::size_t>(r)];
        const bool masked = c.use_mask && c.mask[static_cast<std::size_t>(r)] == 0;  // its label is never read
        if (!masked && y != o.ignore_index && (y < 0 || y >= c.classes)) return Expect::out_of_range;
    }
    return Expect::ok;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Runs f, returning which exception it threw (or ok).
template <typename F>
Expect outcome(F&& f) {
    try {
        f();
    } catch (const std::out_of_range&) {
        return Expect::out_of_range;
    } catch (const std::invalid_argument&) {
        return Expect::invalid_argument;
    }
    return Expect::ok;
}

template <typename T>
void gradient_rows_sum_to_zero(const Call<T>& c, const std::vector<T>& g) {
    for (Index r = 0; r < c.rows; ++r) {
        double sum = 0.0, magnitude = 0.0;
        for (Index k = 0; k < c.classes; ++k) {
            const double v = static_cast<double>(g[static_cast<std::size_t>(r * c.classes + k)]);
            sum += v;
            magnitude += std::fabs(v);
        }
        const double eps = std::numeric_limits<T>::epsilon();
        check(std::isfinite(sum) && std::fabs(sum) <= 8 * eps * (magnitude + 1.0) * std::sqrt(double(c.classes) + 1),
              "a gradient row does not sum to 0");
    }
}

// XENTCPP_FUZZ_VERBOSE=1: the decoded call, to read a crash input (fuzz_core crash-...).
template <typename T>
void describe(const Call<T>& c) {
    if (std::getenv("XENTCPP_FUZZ_VERBOSE") == nullptr) return;
    const auto& o = c.options;
    std::fprintf(stderr, "%s rows=%lld classes=%lld labels=%d bounded=%d weight=%d smoothing=%g reduction=%d "
                 "from_logits=%d epsilon=%g z_loss=%g softcap=%g ignore_index=%lld\n",
                 sizeof(T) == 4 ? "float" : "double", static_cast<long long>(c.rows), static_cast<long long>(c.classes),
                 c.use_labels, c.bounded, o.weight != nullptr, o.label_smoothing, static_cast<int>(o.reduction),
                 o.from_logits, o.epsilon, o.z_loss, o.softcap, static_cast<long long>(o.ignore_index));
    for (std::size_t k = 0; k < c.weight.size() && k < 16; ++k) std::fprintf(stderr, " w%zu=%g", k, double(c.weight[k]));
    for (std::size_t k = 0; c.use_labels && k < static_cast<std::size_t>(c.rows); ++k) {
        std::fprintf(stderr, " y%zu=%lld", k, static_cast<long long>(c.labels[k]));
    }
    std::fprintf(stderr, "\n");
}

template <typename T>
void run(FuzzedDataProvider& fdp) {
    const Call<T> c = decode<T>(fdp);
    describe(c);
    const xentcpp::Problem<T> p = c.problem();
    const std::size_t n = static_cast<std::size_t>(c.rows * std::max<Index>(c.classes, 0));
    const T sentinel = T(-12345.5);
    std::vector<T> losses(static_cast<std::size_t>(c.rows) + 1, sentinel), grad(n + 1, sentinel);
    std::vector<T> losses2 = losses, grad2 = grad;

    double fused = 0.0;
    const Expect want = expected(c);
    const Expect got = outcome([&] { fused = xentcpp::value_and_grad<T>(p, c.options, losses.data(), grad.data()); });
    check(got == want, "value_and_grad threw something other than the contract says");
    if (want != Expect::ok) {
        check(same_bits(losses, losses2) && same_bits(grad, grad2), "a refused call wrote an output");
        return;
    }
    check(grad[n] == sentinel && losses[static_cast<std::size_t>(c.rows)] == sentinel, "wrote past an output");

    // The three entry points are one computation: the same bits.
    double alone = 0.0;
    check(outcome([&] { alone = xentcpp::loss<T>(p, c.options, losses2.data()); }) == Expect::ok, "loss threw");
    check(std::memcmp(&alone, &fused, sizeof alone) == 0 && same_bits(losses, losses2), "loss differs from fused");
    xentcpp::GradRequest<T> request;
    request.grad = grad2.data();
    check(outcome([&] { xentcpp::grad<T>(p, c.options, request); }) == Expect::ok, "grad threw");
    check(same_bits(grad, grad2), "grad differs from fused");  // grad_output 1 is the fused upstream

    bool modest_weights = true;  // a weight of 1e300 may overflow the loss, legitimately; a negative one makes it < 0
    for (const T w : c.weight) modest_weights = modest_weights && w >= T(0) && w <= T(2);
    modest_weights = modest_weights && c.options.z_loss <= 1.0;  // so is a z-loss factor of 1e300
    if (c.bounded && c.use_labels && c.options.from_logits && c.options.label_smoothing == 0.0 && modest_weights) {
        for (Index r = 0; r < c.rows; ++r) {
            const T l = losses[static_cast<std::size_t>(r)];
            if (c.options.reduction == xentcpp::Reduction::none) check(std::isfinite(l) && l >= T(0), "loss not finite or < 0");
        }
        check(std::isfinite(fused) || (c.options.reduction == xentcpp::Reduction::mean && std::isnan(fused)),
              "reduced loss not finite (only a mean over nothing is NaN)");
        // The z-loss term's gradient sums to 2 z lse, and a cap's chain rule reweights the classes.
        if (c.weight.empty() && c.options.reduction == xentcpp::Reduction::sum && c.options.z_loss == 0.0 &&
            c.options.softcap == 0.0) {
            gradient_rows_sum_to_zero(c, grad);  // unit scale, so the tolerance is absolute
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider fdp(data, size);
    if (fdp.ConsumeBool()) {
        run<float>(fdp);
    } else {
        run<double>(fdp);
    }
    return 0;
}
