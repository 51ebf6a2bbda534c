// Information measures: the sums of entropy and Kullback-Leibler divergence (Kernels::sum_p_log_p,
// sum_p_log_p_over_q), for one SIMD target.
#include <cstdint>
#include <limits>

#include "common.hpp"
#include "families.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

// Sums over blocks of kBlock elements: lanes in T within a block, blocks in double.
template <typename T, typename Term>
double block_sums(std::int64_t n, const Term& term) {
    constexpr int L = Vec<T>::lanes;
    double total = 0.0;
    for (std::int64_t start = 0; start < n; start += kBlock) {
        const std::int64_t end = n - start < kBlock ? n : start + kBlock;
        V<T> sum{};
        for (std::int64_t c = start; c < end; c += L) sum += term(c, end - c < L ? end - c : L);
        total += reduce_sum(sum);
    }
    return total;
}

template <typename T>
double sum_p_log_p(const T* p, std::int64_t n) {
    return block_sums<T>(n, [&](std::int64_t c, std::int64_t valid) {
        const V<T> pv = valid == Vec<T>::lanes ? load(p + c) : load_partial(p + c, valid, T(0));
        return pv == T(0) ? splat(T(0)) : pv * log(pv);  // 0 log 0 = 0; p < 0 or NaN: NaN
    });
}

// log(p / q) with the relative precision of the result, over the whole range:
//   p / q in [1/2, 2]: log1p(d), d = (p - q) / q, with p - q exact (Sterbenz) so that nearly equal
//     distributions keep their small divergence (log's reduced argument is d itself, as in
//     log1p_excess, where log(1 + d) has exponent 0);
//   otherwise log(p / q), the quotient rounded once, |result| >= log 2;
//   p / q beyond the normal range (0, subnormal or inf: q tiny, or p tiny against q): log p - log q,
//     whose terms' rounding is small against a result beyond |log(FLT_MIN)|.
// Note: log1p((p - q) / q) alone, as before, reached log1p(-1) = -inf once p / q fell below eps
// (KL of [1e-17, 1 - 1e-17] against [0.5, 0.5] was -inf; SciPy: 0.693).
template <typename T>
XENTCPP_INLINE V<T> log_ratio(V<T> p, V<T> q) {
    const V<T> ratio = p / q;
    const auto near = ratio >= T(0.5) && ratio <= T(2);
    const V<T> d = (p - q) / q;
    V<T> result = log(near ? d + T(1) : ratio, &d);  // d replaces log's f only where the exponent is 0
    const auto extreme = !(ratio >= std::numeric_limits<T>::min() && ratio <= std::numeric_limits<T>::max());
    if (any(extreme)) result = extreme ? log(p) - log(q) : result;
    return result;
}

template <typename T>
double sum_p_log_p_over_q(const T* p, const T* q, std::int64_t n) {
    return block_sums<T>(n, [&](std::int64_t c, std::int64_t valid) {
        const bool full = valid == Vec<T>::lanes;
        const V<T> pv = full ? load(p + c) : load_partial(p + c, valid, T(0));
        const V<T> qv = full ? load(q + c) : load_partial(q + c, valid, T(1));
        return pv == T(0) ? splat(T(0)) : pv * log_ratio<T>(pv, qv);  // 0 log(0 / q) = 0
    });
}

}  // namespace

template <typename T>
void add_information(Kernels<T>& k) {
    k.sum_p_log_p = &sum_p_log_p<T>;
    k.sum_p_log_p_over_q = &sum_p_log_p_over_q<T>;
}

template void add_information<float>(Kernels<float>&);
template void add_information<double>(Kernels<double>&);

}  // namespace xentcpp::simd::XENTCPP_TARGET
