// What the drivers share: argument checks and the sweep over rows in fixed blocks whose partial sums
// are added in block order, so that results do not depend on the number of OpenMP threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fork_guard.hpp"

namespace xentcpp::detail {

inline constexpr std::int64_t kBlockElements = std::int64_t{1} << 15;     // ~128 KiB of floats: L2-resident
inline constexpr std::int64_t kParallelElements = std::int64_t{1} << 16;  // below this, fork/join costs more

inline void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("xentcpp: ") + what);
}

// Class weights may be any finite numbers, negative ones included, as in PyTorch (whose reference
// samples use them); NaN and +-inf are refused (PyTorch takes them silently, and the loss is NaN).
template <typename T>
void check_weights(const T* weight, std::int64_t classes) {
    for (std::int64_t c = 0; weight != nullptr && c < classes; ++c) {
        require(std::isfinite(weight[c]), "weight must be finite for every class (no NaN, no +-inf)");
    }
}

// The sum of block(begin, end) over blocks of about kBlockElements elements (rows of `row_elements`),
// in block order. Blocks go to threads unless `serial` (e.g. each row is itself split across them);
// each thread takes consecutive blocks in order, then calls finish() once.
template <typename Sum, typename BlockFn, typename FinishFn>
Sum sweep_blocks(std::int64_t rows, std::int64_t row_elements, bool serial, const BlockFn& block,
                 const FinishFn& finish) {
    const std::int64_t per_block = std::max<std::int64_t>(1, kBlockElements / row_elements);
    const std::int64_t blocks = (rows + per_block - 1) / per_block;
    std::vector<Sum> sums(static_cast<std::size_t>(blocks));
    const auto run = [&](std::int64_t b) {
        sums[static_cast<std::size_t>(b)] = block(b * per_block, std::min(rows, (b + 1) * per_block));
    };
    install_fork_guard();  // before this region and any opened by `block` (a row split across threads)
    // Note: a plain loop when serial, not `omp parallel if (false)`: regions a split row opens inside
    // an inactive one are nested, and get threads of their own while the pool's threads still spin
    // (2 threads on a split row were then slower than 1).
    if (serial || blocks == 1 || rows * row_elements < kParallelElements) {
        for (std::int64_t b = 0; b < blocks; ++b) run(b);
        finish();
    } else {
#pragma omp parallel
        {
#pragma omp for schedule(static) nowait
            for (std::int64_t b = 0; b < blocks; ++b) run(b);
            finish();
        }
    }
    Sum total{};
    for (const Sum& s : sums) total = total + s;
    return total;
}

template <typename Sum, typename BlockFn>
Sum sweep_blocks(std::int64_t rows, std::int64_t row_elements, bool serial, const BlockFn& block) {
    return sweep_blocks<Sum>(rows, row_elements, serial, block, [] {});
}

}  // namespace xentcpp::detail
