// The sweep over rows that the drivers share: rows are grouped in tiles whose boundaries depend on
// the shape only, each tile's partial sum is computed by whichever thread runs it, and the partial sums
// are added in tile order, so that results do not depend on the number of OpenMP threads.
// Words: a tile is a run of whole rows (about kTileElements elements); a segment is a slice of one long
// row (LogitsRows); a block is the kernels' L1 unit inside a span (simd::kBlock).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "fork_guard.hpp"

namespace xentcpp::detail {

inline constexpr std::int64_t kTileElements = std::int64_t{1} << 15;     // ~128 KiB of floats: L2-resident
inline constexpr std::int64_t kParallelElements = std::int64_t{1} << 16;  // below this, fork/join costs more

// The sum of tile(begin, end) over the tiles of the rows [0, rows), about kTileElements elements each
// (rows of `row_elements`), in tile order. Tiles go to threads unless `serial` (e.g. each row is
// itself split across them); each thread takes consecutive tiles in order, then calls finish() once.
template <typename Sum, typename TileFn, typename FinishFn>
Sum sweep_tiles(std::int64_t rows, std::int64_t row_elements, bool serial, const TileFn& tile,
                 const FinishFn& finish) {
    const std::int64_t per_tile = std::max<std::int64_t>(1, kTileElements / row_elements);
    const std::int64_t tiles = (rows + per_tile - 1) / per_tile;
    std::vector<Sum> sums(static_cast<std::size_t>(tiles));
    const auto run = [&](std::int64_t b) {
        sums[static_cast<std::size_t>(b)] = tile(b * per_tile, std::min(rows, (b + 1) * per_tile));
    };
    install_fork_guard();  // before this region and any opened by `tile` (a row split across threads)
    // Note: a plain loop when serial, not `omp parallel if (false)`: regions a split row opens inside
    // an inactive one are nested, and get threads of their own while the pool's threads still spin
    // (2 threads on a split row were then slower than 1).
    if (serial || tiles == 1 || rows * row_elements < kParallelElements) {
        for (std::int64_t b = 0; b < tiles; ++b) run(b);
        finish();
    } else {
#pragma omp parallel
        {
#pragma omp for schedule(static) nowait
            for (std::int64_t b = 0; b < tiles; ++b) run(b);
            finish();
        }
    }
    Sum total{};
    for (const Sum& s : sums) total = total + s;
    return total;
}

template <typename Sum, typename TileFn>
Sum sweep_tiles(std::int64_t rows, std::int64_t row_elements, bool serial, const TileFn& tile) {
    return sweep_tiles<Sum>(rows, row_elements, serial, tile, [] {});
}

}  // namespace xentcpp::detail
