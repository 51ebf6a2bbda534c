// Helpers shared by the kernel families of one SIMD target (csrc/simd/target/*.cpp, each compiled once
// per target inside namespace XENTCPP_TARGET).
#pragma once

#include <cstdint>
#include <limits>

#include "../kernels.hpp"
#include "../vector_math.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {

// As many int64 labels, or doubles, as V<T> has lanes (two registers for float: the compiler splits them).
template <typename T>
struct Wide;
template <>
struct Wide<float> {
    typedef std::int64_t labels __attribute__((vector_size(Vec<float>::lanes * 8)));
    typedef double doubles __attribute__((vector_size(Vec<float>::lanes * 8)));
};
template <>
struct Wide<double> {
    typedef std::int64_t labels __attribute__((vector_size(Vec<double>::lanes * 8)));
    typedef double doubles __attribute__((vector_size(Vec<double>::lanes * 8)));
};
template <typename T>
using WideLabels = typename Wide<T>::labels;
template <typename T>
using WideDouble = typename Wide<T>::doubles;

template <typename T>
constexpr std::int64_t kLineElements = 64 / sizeof(T);  // one prefetch per 64-byte cache line

template <typename T>
constexpr T kMinusInf = -std::numeric_limits<T>::infinity();

template <typename T>
V<T> lane_index() {
    V<T> v{};
    for (int i = 0; i < Vec<T>::lanes; ++i) v[i] = static_cast<T>(i);
    return v;
}

}  // namespace xentcpp::simd::XENTCPP_TARGET
