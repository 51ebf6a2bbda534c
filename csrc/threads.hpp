// The OpenMP thread count and index, or 1 and 0 without OpenMP.
#pragma once

#include <cstddef>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace xentcpp::detail {

inline int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline std::int64_t thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

inline std::size_t sz(std::int64_t i) { return static_cast<std::size_t>(i); }

}  // namespace xentcpp::detail
