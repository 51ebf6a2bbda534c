// Two tables of each SIMD target that are not kernels (simd/kernels.hpp holds those): the bandwidth
// probes, plain passes over memory that the benchmark's roofline measures, and the vector math as
// element-wise functions, for the tests that walk its input range.
#pragma once

#include <cstdint>

#include "kernels.hpp"

namespace xentcpp::simd {

struct BandwidthProbes {
    // The bitwise OR of the bytes p[0, n): a pass over memory with no arithmetic, several vectors in
    // flight (the read of xentcpp::read_probe).
    std::uint8_t (*or_bytes)(const unsigned char* p, std::int64_t n);
    // dst[0, n) = src[0, n) with streaming stores (no read for ownership), then a fence: the copy of
    // xentcpp::copy_probe, as the kernels write large gradients.
    void (*stream_bytes)(unsigned char* dst, const unsigned char* src, std::int64_t n);
};

// Element-wise exp, log, expm1, log1p, log1p_excess (x >= 0), tanh and exp_sum (x <= 0): out[i] =
// f(x[i]), for tests only (the kernels inline the vector functions themselves).
template <typename T>
struct VectorMathHooks {
    void (*exp)(const T* x, std::int64_t n, T* out);
    void (*log)(const T* x, std::int64_t n, T* out);
    void (*expm1)(const T* x, std::int64_t n, T* out);
    void (*log1p)(const T* x, std::int64_t n, T* out);
    void (*log1p_excess)(const T* x, std::int64_t n, T* out);
    void (*tanh)(const T* x, std::int64_t n, T* out);
    void (*exp_sum)(const T* x, std::int64_t n, T* out);
};

// The probes of the active target, and those of a given supported target (tests run each one).
const BandwidthProbes& bandwidth_probes();
const BandwidthProbes& bandwidth_probes_for(Target target);
template <typename T>
const VectorMathHooks<T>& vector_math_hooks_for(Target target);

}  // namespace xentcpp::simd
