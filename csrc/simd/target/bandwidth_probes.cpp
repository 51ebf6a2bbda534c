// The bandwidth probes of one SIMD target (BandwidthProbes, csrc/simd/probes.hpp): plain passes
// over memory with no arithmetic, the roofline the benchmark compares the kernels with. Not kernels:
// csrc/bandwidth_probe.cpp runs them over threads.
#include <cstdint>
#include <cstring>

#include "../probes.hpp"
#include "common.hpp"
#include "families.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

// Note: 32-byte vectors, four in flight, on every target: on the AVX-512 machine here no variant
// measured read faster (eight 64-byte vectors in flight read about 4 % slower).
std::uint8_t or_bytes(const unsigned char* p, std::int64_t n) {
    typedef std::int32_t Bits __attribute__((vector_size(kVectorBytes < 32 ? kVectorBytes : 32)));
    constexpr int kInFlight = 4;
    constexpr auto kBytes = static_cast<std::int64_t>(sizeof(Bits));
    Bits acc[kInFlight] = {};
    std::int64_t i = 0;
    for (; i + kInFlight * kBytes <= n; i += kInFlight * kBytes) {
        for (int k = 0; k < kInFlight; ++k) {
            Bits v;
            std::memcpy(&v, p + i + k * kBytes, sizeof v);
            acc[k] |= v;
        }
    }
    for (int k = 1; k < kInFlight; ++k) acc[0] |= acc[k];
    unsigned char folded[sizeof(Bits)];
    std::memcpy(folded, &acc[0], sizeof folded);
    unsigned out = 0;
    for (const unsigned char byte : folded) out |= byte;
    for (; i < n; ++i) out |= p[i];
    return static_cast<std::uint8_t>(out);
}

void stream_bytes(unsigned char* dst, const unsigned char* src, std::int64_t n) {
    constexpr auto kBytes = static_cast<std::int64_t>(sizeof(V<float>));
    const auto misalignment = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(dst) % kBytes);
    const std::int64_t head = misalignment == 0 ? 0 : (n < kBytes - misalignment ? n : kBytes - misalignment);
    std::memcpy(dst, src, static_cast<std::size_t>(head));
    std::int64_t i = head;
    for (; i + kBytes <= n; i += kBytes) {
        V<float> v;
        std::memcpy(&v, src + i, sizeof v);
        store_stream(reinterpret_cast<float*>(dst + i), v);
    }
    std::memcpy(dst + i, src + i, static_cast<std::size_t>(n - i));
    stream_fence();
}

}  // namespace

const BandwidthProbes& bandwidth_probes() {
    static const BandwidthProbes probes = [] {
        BandwidthProbes p{};
        p.or_bytes = &or_bytes;
        p.stream_bytes = &stream_bytes;
        return p;
    }();
    return probes;
}

}  // namespace xentcpp::simd::XENTCPP_TARGET
