// The argument checks the drivers share: std::invalid_argument, raised before anything is written.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace xentcpp::detail {

inline void require(bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("xentcpp: ") + what);
}

// rows × classes × inner elements, addressable with 64-bit indices.
inline void check_shape(std::int64_t rows, std::int64_t classes, std::int64_t inner = 1) {
    require(rows >= 0 && inner >= 1, "rows must be >= 0 and inner >= 1");
    require(classes >= 1, "classes must be >= 1 (the class axis is empty)");
    require(rows <= std::numeric_limits<std::int64_t>::max() / classes / inner, "the size overflows a 64-bit index");
}

// Class weights may be any finite numbers, negative ones included, as in PyTorch (whose reference
// samples use them); NaN and +-inf are refused (PyTorch takes them silently, and the loss is NaN).
template <typename T>
void check_weights(const T* weight, std::int64_t classes) {
    for (std::int64_t c = 0; weight != nullptr && c < classes; ++c) {
        require(std::isfinite(weight[c]), "weight must be finite for every class (no NaN, no +-inf)");
    }
}

}  // namespace xentcpp::detail
