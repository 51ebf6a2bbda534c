// The label pass's counts (simd::Kernels::count_labels) on every SIMD target: rows that count (label
// != ignore) and bad labels among them (outside [0, classes), 64-bit extremes included), for any
// length and offset, against a plain loop.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "simd/kernels.hpp"

namespace {

using xentcpp::simd::Target;

TEST(LabelCounts, EveryTargetCountsLikeAPlainLoop) {
    constexpr std::int64_t kClasses = 10, kIgnore = -100;
    const std::int64_t specials[] = {kIgnore, -1, kClasses, kClasses - 1, 0,
                                     std::numeric_limits<std::int64_t>::min(),
                                     std::numeric_limits<std::int64_t>::max()};
    std::mt19937_64 rng(7);
    std::vector<std::int64_t> labels(300);
    for (std::int64_t& y : labels) {
        y = rng() % 3 == 0 ? specials[rng() % 7] : static_cast<std::int64_t>(rng() % kClasses);
    }
    for (const Target t : {Target::avx512, Target::avx2, Target::baseline}) {
        if (!xentcpp::simd::target_supported(t)) continue;
        const auto& k = xentcpp::simd::kernels_for<double>(t);
        for (std::size_t offset : {0u, 1u, 3u}) {
            for (std::int64_t n = 0; n <= 257; n += (n < 40 ? 1 : 31)) {
                std::int64_t want_counted = 0, want_bad = 0;
                for (std::int64_t i = 0; i < n; ++i) {
                    const std::int64_t y = labels[offset + static_cast<std::size_t>(i)];
                    want_counted += y != kIgnore;
                    want_bad += y != kIgnore && (y < 0 || y >= kClasses);
                }
                std::int64_t counted = -1, bad = -1;
                k.count_labels(labels.data() + offset, n, kClasses, kIgnore, &counted, &bad);
                EXPECT_EQ(counted, want_counted) << xentcpp::simd::target_name(t) << " offset " << offset << " n " << n;
                EXPECT_EQ(bad, want_bad) << xentcpp::simd::target_name(t) << " offset " << offset << " n " << n;
            }
        }
    }
}

}  // namespace
