// The bandwidth probes (xentcpp/bandwidth_probe.hpp) the benchmark's roofline is measured with: the read
// must see every byte (a single bit set anywhere, at any offset and length, on every SIMD target and
// across the threads' parts) and the copy must copy every byte; bad arguments are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "simd/probes.hpp"
#include "xentcpp/bandwidth_probe.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using xentcpp::simd::Target;

std::uint8_t or_of(const std::vector<unsigned char>& bytes, std::size_t begin, std::size_t end) {
    unsigned out = 0;
    for (std::size_t i = begin; i < end; ++i) out |= bytes[i];
    return static_cast<std::uint8_t>(out);
}

TEST(MemoryProbe, OrBytesSeesEveryByteOnEveryTarget) {
    std::vector<unsigned char> bytes(2048 + 64, 0);
    for (const Target t : {Target::avx512, Target::avx2, Target::baseline}) {
        if (!xentcpp::simd::target_supported(t)) continue;
        const auto& k = xentcpp::simd::bandwidth_probes_for(t);
        for (std::size_t offset : {0u, 1u, 7u, 16u, 63u}) {
            for (std::size_t n : {0u, 1u, 31u, 32u, 33u, 127u, 128u, 129u, 511u, 512u, 1000u, 2048u}) {
                for (std::size_t at = 0; at < n; at += (n < 200 ? 1 : 37)) {
                    const unsigned char bit = static_cast<unsigned char>(1u << (at % 8));
                    bytes[offset + at] = bit;
                    ASSERT_EQ(k.or_bytes(bytes.data() + offset, static_cast<std::int64_t>(n)), bit)
                        << xentcpp::simd::target_name(t) << " offset " << offset << " n " << n << " at " << at;
                    bytes[offset + at] = 0;
                }
                // Bytes just outside [offset, offset + n) are not read into the result.
                if (offset > 0) bytes[offset - 1] = 0xFF;
                bytes[offset + n] = 0xFF;
                EXPECT_EQ(k.or_bytes(bytes.data() + offset, static_cast<std::int64_t>(n)), 0);
                if (offset > 0) bytes[offset - 1] = 0;
                bytes[offset + n] = 0;
            }
        }
    }
}

TEST(MemoryProbe, StreamBytesCopiesEveryByteOnEveryTarget) {
    std::vector<unsigned char> src(4096 + 128), dst(src.size());
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i * 7 + 1);
    for (const Target t : {Target::avx512, Target::avx2, Target::baseline}) {
        if (!xentcpp::simd::target_supported(t)) continue;
        const auto& k = xentcpp::simd::bandwidth_probes_for(t);
        for (std::size_t to : {0u, 1u, 13u, 64u}) {
            for (std::size_t n : {0u, 1u, 15u, 16u, 63u, 64u, 65u, 200u, 4096u}) {
                std::fill(dst.begin(), dst.end(), 0);
                k.stream_bytes(dst.data() + to, src.data() + 3, static_cast<std::int64_t>(n));
                for (std::size_t i = 0; i < dst.size(); ++i) {
                    const bool inside = i >= to && i < to + n;
                    ASSERT_EQ(dst[i], inside ? src[3 + i - to] : 0)
                        << xentcpp::simd::target_name(t) << " to " << to << " n " << n << " at " << i;
                }
            }
        }
    }
}

class MemoryProbeThreads : public ::testing::TestWithParam<int> {};

TEST_P(MemoryProbeThreads, ReadAndCopyCoverEveryPart) {
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    omp_set_num_threads(GetParam());
#endif
    // Above the size where the probes go parallel, not a multiple of the 64-byte cut.
    const std::size_t n = (std::size_t{3} << 20) + 77;
    std::vector<unsigned char> src(n), dst(n, 0);
    std::mt19937 rng(7);
    for (auto& b : src) b = static_cast<unsigned char>(rng() & 0x7Fu);  // the top bit never set
    for (std::size_t at : {std::size_t{0}, n / 2 - 1, n / 2, n / 3 * 2, n - 1}) {
        src[at] |= 0x80u;
        EXPECT_EQ(xentcpp::read_probe(src.data(), static_cast<std::int64_t>(n)), or_of(src, 0, n)) << at;
        src[at] &= 0x7Fu;
    }
    xentcpp::copy_probe(dst.data(), src.data(), static_cast<std::int64_t>(n));
    EXPECT_EQ(dst, src);
    std::vector<unsigned char> small(100, 3), small_dst(100, 0);
    xentcpp::copy_probe(small_dst.data(), small.data(), 100);
    EXPECT_EQ(small_dst, small);
    EXPECT_EQ(xentcpp::read_probe(small.data(), 100), 3);
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
}

INSTANTIATE_TEST_SUITE_P(Threads, MemoryProbeThreads, ::testing::Values(1, 2, 3));

TEST(MemoryProbe, RefusesBadArguments) {
    std::vector<unsigned char> a(256, 1);
    EXPECT_THROW(xentcpp::read_probe(a.data(), -1), std::invalid_argument);
    EXPECT_THROW(xentcpp::read_probe(nullptr, 8), std::invalid_argument);
    EXPECT_EQ(xentcpp::read_probe(nullptr, 0), 0);
    EXPECT_THROW(xentcpp::copy_probe(a.data() + 1, a.data(), 16), std::invalid_argument);  // overlap
    EXPECT_THROW(xentcpp::copy_probe(a.data(), a.data() + 15, 16), std::invalid_argument);
    EXPECT_THROW(xentcpp::copy_probe(nullptr, a.data(), 16), std::invalid_argument);
    EXPECT_THROW(xentcpp::copy_probe(a.data(), a.data() + 128, -1), std::invalid_argument);
    xentcpp::copy_probe(a.data(), a.data() + 128, 128);  // adjacent, not overlapping
}

}  // namespace
