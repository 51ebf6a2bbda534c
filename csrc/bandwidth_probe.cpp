// The read and copy passes of the roofline (xentcpp/bandwidth_probe.hpp).
#include "xentcpp/bandwidth_probe.hpp"


#include "checks.hpp"
#include "fork_guard.hpp"
#include "simd/probes.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace xentcpp {
namespace {

constexpr std::int64_t kParallelBytes = std::int64_t{1} << 20;  // below this, one thread

// Runs part(begin, end) on every thread of a region over [0, bytes), one contiguous part each, cut at
// multiples of a cache line so that no line is shared; a plain call below kParallelBytes.
template <typename Part>
void by_thread(std::int64_t bytes, const Part& part) {
    if (bytes < kParallelBytes) {
        part(0, bytes);
        return;
    }
    detail::install_fork_guard();
#pragma omp parallel
    {
        std::int64_t index = 0, count = 1;
#ifdef _OPENMP
        index = omp_get_thread_num();
        count = omp_get_num_threads();
#endif
        const auto cut = [&](std::int64_t k) { return k == count ? bytes : bytes / count * k / 64 * 64; };
        part(cut(index), cut(index + 1));
    }
}

}  // namespace

std::uint8_t read_probe(const void* data, std::int64_t bytes) {
    detail::require(bytes >= 0 && (data != nullptr || bytes == 0), "read_probe: bytes must be >= 0, data not null");
    const auto* p = static_cast<const unsigned char*>(data);
    const simd::BandwidthProbes& probes = simd::bandwidth_probes();
    unsigned result = 0;
    by_thread(bytes, [&](std::int64_t begin, std::int64_t end) {
        const unsigned part = probes.or_bytes(p + begin, end - begin);
#pragma omp atomic
        result |= part;
    });
    return static_cast<std::uint8_t>(result);
}

void copy_probe(void* dst, const void* src, std::int64_t bytes) {
    detail::require(bytes >= 0 && ((dst != nullptr && src != nullptr) || bytes == 0),
                    "copy_probe: bytes must be >= 0, buffers not null");
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    const auto d0 = reinterpret_cast<std::uintptr_t>(dst), s0 = reinterpret_cast<std::uintptr_t>(src);
    const auto n = static_cast<std::uintptr_t>(bytes);
    detail::require(bytes == 0 || d0 + n <= s0 || s0 + n <= d0, "copy_probe: the buffers overlap");
    const simd::BandwidthProbes& probes = simd::bandwidth_probes();
    by_thread(bytes, [&](std::int64_t begin, std::int64_t end) { probes.stream_bytes(d + begin, s + begin, end - begin); });
}

}  // namespace xentcpp
