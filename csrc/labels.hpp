// The label pass shared by the losses on class indices: every label checked, the rows that count
// counted, before any output is written.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fork_guard.hpp"
#include "simd/kernels.hpp"

namespace xentcpp::detail {

// The mean's denominator (the summed weight of the rows that count) and the number of such rows.
struct Counted {
    double weight = 0.0;
    double rows = 0.0;
};

// In fixed tiles of rows (in parallel, summed in tile order, so the sums do not depend on the
// threads); a bad label is reported for the first bad row: std::out_of_range. Rows whose `row_mask`
// entry is 0 (when it is given) count as ignored: their labels are not read.
template <typename W>
Counted count_labels(const std::int64_t* labels, std::int64_t rows, std::int64_t classes, std::int64_t ignore_index,
                     const W* weight, const std::uint8_t* row_mask = nullptr) {
    constexpr std::int64_t kLabelTile = std::int64_t{1} << 16;
    const std::int64_t tiles = (rows + kLabelTile - 1) / kLabelTile;
    std::vector<Counted> sums(static_cast<std::size_t>(tiles));
    std::vector<std::int64_t> first_bad(static_cast<std::size_t>(tiles), -1);
    const auto count_tile = [&](std::int64_t b) {
        const std::int64_t begin = b * kLabelTile, end = std::min(rows, (b + 1) * kLabelTile);
        const auto in_range = [&](std::int64_t y) {
            return static_cast<std::uint64_t>(y) < static_cast<std::uint64_t>(classes);
        };
        const auto ignored_at = [&](std::int64_t i) {
            return (row_mask != nullptr && row_mask[i] == 0) || labels[i] == ignore_index;
        };
        // Note: one branch-free pass; a bad label is looked for only when there is one. Rows are
        // counted in integers (in SIMD lanes when unweighted) and weights summed in four running
        // sums (their order fixed by the shape): a single chain of dependent double additions cost 4
        // cycles a label, and the label pass took 40 % of a 2 000 000 x 10 forward on 1 thread (8.7
        // ms; 6.8 with scalar integer counts, 6.0 with SIMD ones).
        std::int64_t counted = 0, bad = 0;
        double partial[4] = {0.0, 0.0, 0.0, 0.0};
        if (!weight && !row_mask) {
            simd::kernels<double>().count_labels(labels + begin, end - begin, classes, ignore_index, &counted, &bad);
        } else {
            for (std::int64_t i = begin; i < end; ++i) {
                const bool ignored = ignored_at(i);
                const std::int64_t y = ignored ? 0 : labels[i];
                const bool ok = in_range(y);
                counted += !ignored;
                bad += !ignored & !ok;
                const double w = weight ? static_cast<double>(weight[ok ? y : 0]) : 1.0;
                partial[i & 3] += ok && !ignored ? w : 0.0;
            }
        }
        if (bad != 0) {
            for (std::int64_t i = begin; i < end; ++i) {
                if (!ignored_at(i) && !in_range(labels[i])) {
                    first_bad[static_cast<std::size_t>(b)] = i;
                    return;
                }
            }
        }
        const double n = static_cast<double>(counted);
        sums[static_cast<std::size_t>(b)] = {weight || row_mask ? (partial[0] + partial[1]) + (partial[2] + partial[3]) : n, n};
    };
    install_fork_guard();
    if (tiles == 1) {  // no serial region: it costs about a microsecond
        count_tile(0);
    } else {
#pragma omp parallel for schedule(static)
        for (std::int64_t b = 0; b < tiles; ++b) count_tile(b);
    }
    Counted total;
    for (std::int64_t b = 0; b < tiles; ++b) {
        const std::int64_t i = first_bad[static_cast<std::size_t>(b)];
        if (i >= 0) {
            throw std::out_of_range("target[" + std::to_string(i) + "] = " + std::to_string(labels[i]) +
                                    " is out of range: expected 0 <= label < " + std::to_string(classes) +
                                    " or ignore_index (" + std::to_string(ignore_index) + ")");
        }
        total.weight += sums[static_cast<std::size_t>(b)].weight;
        total.rows += sums[static_cast<std::size_t>(b)].rows;
    }
    return total;
}

}  // namespace xentcpp::detail
