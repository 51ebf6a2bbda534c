// The unweighted label pass (Kernels::count_labels; csrc/labels.hpp), for one SIMD target.
#include <cstdint>
#include <cstring>

#include "common.hpp"
#include "families.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

// Note: lanes of 64-bit labels; a compare gives -1 per hit, so the lane sums count down.
void count_labels(const std::int64_t* labels, std::int64_t n, std::int64_t classes, std::int64_t ignore,
                  std::int64_t* counted, std::int64_t* bad) {
    typedef std::int64_t Lanes __attribute__((vector_size(kVectorBytes)));
    typedef std::uint64_t Unsigned __attribute__((vector_size(kVectorBytes)));
    constexpr int L = kVectorBytes / 8;
    const Lanes ignored_label = Lanes{} + ignore;
    const Unsigned limit = Unsigned{} + static_cast<std::uint64_t>(classes);
    Lanes ignored{}, outside{};
    std::int64_t i = 0;
    for (; i + L <= n; i += L) {
        Lanes y;
        std::memcpy(&y, labels + i, sizeof y);
        const Lanes skip = y == ignored_label;
        ignored += skip;
        outside += ~skip & (reinterpret_cast<Unsigned>(y) >= limit);
    }
    std::int64_t skipped = 0, out = 0;
    for (int j = 0; j < L; ++j) {
        skipped -= ignored[j];
        out -= outside[j];
    }
    for (; i < n; ++i) {
        const bool skip = labels[i] == ignore;
        skipped += skip;
        out += !skip && static_cast<std::uint64_t>(labels[i]) >= static_cast<std::uint64_t>(classes);
    }
    *counted = n - skipped;
    *bad = out;
}

}  // namespace

template <typename T>
void add_labels(Kernels<T>& k) {
    k.count_labels = &count_labels;
}

template void add_labels<float>(Kernels<float>&);
template void add_labels<double>(Kernels<double>&);

}  // namespace xentcpp::simd::XENTCPP_TARGET
