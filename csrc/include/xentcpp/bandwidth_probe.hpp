// Plain passes over memory with the kernels' threads and SIMD target and no arithmetic: the roofline
// that the benchmark measures in the same rounds as the kernels (the bus of a shared machine drifts
// by tens of percent within minutes, so a bound measured apart from the kernels says little).
#pragma once

#include <cstdint>

namespace xentcpp {

// The bitwise OR of the bytes data[0, bytes): a result, so that no load can be dropped. Each of the
// OpenMP threads reads one contiguous part (cut at 64-byte multiples), as a STREAM read would.
// std::invalid_argument: bytes < 0, or data null with bytes > 0.
std::uint8_t read_probe(const void* data, std::int64_t bytes);

// dst[0, bytes) = src[0, bytes), each thread copying one contiguous part with streaming stores, as
// the kernels write large gradients (std::memcpy, whose stores go through the caches here, copied
// 40-42 GB/s where streaming stores copy 57).
// std::invalid_argument: bytes < 0, a null buffer with bytes > 0, or buffers that overlap.
void copy_probe(void* dst, const void* src, std::int64_t bytes);

}  // namespace xentcpp
