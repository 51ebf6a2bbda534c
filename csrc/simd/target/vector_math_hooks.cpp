// Test hooks of one SIMD target (VectorMathHooks, csrc/simd/probes.hpp): the vector math of
// vector_math.hpp applied element-wise to arrays, so that tests/cpp/test_vector_math.cpp can walk its
// input range. Not used by the library.
#include <cstdint>

#include "../probes.hpp"
#include "common.hpp"
#include "families.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

template <typename T, V<T> (*F)(V<T>)>
void elementwise(const T* x, std::int64_t n, T* out) {
    constexpr int L = Vec<T>::lanes;
    std::int64_t c = 0;
    for (; c + L <= n; c += L) store(out + c, F(load(x + c)));
    if (c < n) store_partial(out + c, n - c, F(load_partial(x + c, n - c, T(1))));
}

template <typename T>
V<T> exp_lanes(V<T> x) { return exp(x); }
template <typename T>
V<T> exp_sum_lanes(V<T> x) { return exp_sum(x); }
template <typename T>
V<T> log_lanes(V<T> x) { return log(x); }
template <typename T>
V<T> expm1_lanes(V<T> x) { return expm1<T>(x); }
template <typename T>
V<T> log1p_lanes(V<T> x) { return log1p<T>(x); }
template <typename T>
V<T> log1p_excess_lanes(V<T> x) { return log1p_excess<T>(x); }
template <typename T>
V<T> tanh_lanes(V<T> x) { return tanh<T>(x); }

}  // namespace

template <typename T>
const VectorMathHooks<T>& vector_math_hooks() {
    static const VectorMathHooks<T> hooks = [] {
        VectorMathHooks<T> h{};
        h.exp = &elementwise<T, exp_lanes<T>>;
        h.log = &elementwise<T, log_lanes<T>>;
        h.expm1 = &elementwise<T, expm1_lanes<T>>;
        h.log1p = &elementwise<T, log1p_lanes<T>>;
        h.log1p_excess = &elementwise<T, log1p_excess_lanes<T>>;
        h.tanh = &elementwise<T, tanh_lanes<T>>;
        h.exp_sum = &elementwise<T, exp_sum_lanes<T>>;
        return h;
    }();
    return hooks;
}

template const VectorMathHooks<float>& vector_math_hooks<float>();
template const VectorMathHooks<double>& vector_math_hooks<double>();

}  // namespace xentcpp::simd::XENTCPP_TARGET
