// The label pass shared by the losses on class indices: every label checked, the rows that count
// counted, before any output is written.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fork_guard.hpp"

namespace xentcpp::detail {

// The mean's denominator (the summed weight of the rows that count) and the number of such rows.
struct Counted {
    double weight = 0.0;
    double rows = 0.0;
};

// In fixed blocks of rows (in parallel, summed in block order, so the sums do not depend on the
// threads); a bad label is reported for the first bad row: std::out_of_range.
template <typename W>
Counted count_labels(const std::int64_t* labels, std::int64_t rows, std::int64_t classes, std::int64_t ignore_index,
                     const W* weight) {
    constexpr std::int64_t kLabelBlock = std::int64_t{1} << 16;
    const std::int64_t blocks = (rows + kLabelBlock - 1) / kLabelBlock;
    std::vector<Counted> sums(static_cast<std::size_t>(blocks));
    std::vector<std::int64_t> first_bad(static_cast<std::size_t>(blocks), -1);
    const auto count_block = [&](std::int64_t b) {
        Counted sum;
        const std::int64_t end = std::min(rows, (b + 1) * kLabelBlock);
        for (std::int64_t i = b * kLabelBlock; i < end; ++i) {
            const std::int64_t y = labels[i];
            if (y == ignore_index) continue;
            if (y < 0 || y >= classes) {
                first_bad[static_cast<std::size_t>(b)] = i;
                break;
            }
            sum.weight += weight ? static_cast<double>(weight[y]) : 1.0;
            sum.rows += 1.0;
        }
        sums[static_cast<std::size_t>(b)] = sum;
    };
    install_fork_guard();
    if (blocks == 1) {  // no serial region: it costs about a microsecond
        count_block(0);
    } else {
#pragma omp parallel for schedule(static)
        for (std::int64_t b = 0; b < blocks; ++b) count_block(b);
    }
    Counted total;
    for (std::int64_t b = 0; b < blocks; ++b) {
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
