// Few classes (<= kSmallClasses): rows too short for a vector are processed in groups of `lanes`
// rows, each lane owning a row, the group transposed in registers into class-major vectors. Shared by
// the cross-entropy of few classes (few_classes.cpp) and the softmax family (softmax_family.cpp).
#pragma once

#include <cstdint>
#include <type_traits>

#include "common.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {

constexpr std::int64_t kSmallPrefetchBytes = 4096;  // how far ahead a group's rows are fetched

// A full group of `lanes` rows (rows × n, n <= kSmallClasses) as class-major vectors: lane j of
// col[c] is rows[j * n + c]. Each row is loaded as ceil(n / lanes) vectors, which are transposed in
// registers; lanes past a row's end hold the next row's start (or 0 at the end of the group) and
// land in col[c >= n], which nobody reads.
template <typename T>
XENTCPP_INLINE void load_columns(const T* rows, std::int64_t n, V<T>* col) {
    constexpr int L = Vec<T>::lanes;
    const std::int64_t parts = (n + L - 1) / L;
    for (std::int64_t p = 0; p < parts; ++p) {
        // A few columns left (8 lanes or fewer): gathered one by one, cheaper than a transpose.
        if (L <= 8 && n - p * L <= L / 4) {
            for (std::int64_t c = p * L; c < n; ++c) {
                XENTCPP_UNROLL
                for (int j = 0; j < L; ++j) col[c][j] = rows[j * n + c];
            }
            break;
        }
        V<T> r[L];
        XENTCPP_UNROLL
        for (int j = 0; j < L; ++j) {
            const std::int64_t at = j * n + p * L;
            r[j] = at + L <= L * n ? load(rows + at) : load_partial(rows + at, n - p * L < L ? n - p * L : L, T(0));
        }
        transpose<T>(r);
        for (int i = 0; i < L && p * L + i < n; ++i) col[p * L + i] = r[i];
    }
}

// The inverse of load_columns: col[0, n) back into the rows of the group.
// Note: rows are stored in memory order with whole vectors; the lanes past a row's end spill into
// the next rows, which are stored afterwards and overwrite them. Only a store that would leave the
// group is cut to the row's length.
template <typename T>
XENTCPP_INLINE void store_columns(const V<T>* col, std::int64_t n, T* rows) {
    constexpr int L = Vec<T>::lanes;
    constexpr std::int64_t kMaxParts = (kSmallClasses + L - 1) / L;
    const std::int64_t parts = (n + L - 1) / L;
    V<T> r[kMaxParts][L];
    for (std::int64_t p = 0; p < parts; ++p) {
        for (int i = 0; i < L; ++i) r[p][i] = p * L + i < n ? col[p * L + i] : splat(T(0));
        transpose<T>(r[p]);
    }
    for (int j = 0; j < L; ++j) {
        for (std::int64_t p = 0; p < parts; ++p) {
            const std::int64_t at = j * n + p * L;
            if (at + L <= L * n) store(rows + at, r[p][j]);
            else store_partial(rows + at, n - p * L < L ? n - p * L : L, r[p][j]);
        }
    }
}

// A group of `valid` rows (up to `lanes`) as class-major vectors, and back: a full group through
// the transposes above, a partial one (the last rows) element by element, its missing rows 0.
template <typename T>
XENTCPP_INLINE void load_group(const T* rows, std::int64_t n, std::int64_t valid, V<T>* col) {
    constexpr int L = Vec<T>::lanes;
    if (valid == L) return load_columns<T>(rows, n, col);
    for (std::int64_t c = 0; c < n; ++c) {
        for (int j = 0; j < L; ++j) col[c][j] = j < valid ? rows[j * n + c] : T(0);
    }
}

template <typename T>
XENTCPP_INLINE void store_group(const V<T>* col, std::int64_t n, std::int64_t valid, T* rows) {
    if (valid == Vec<T>::lanes) return store_columns<T>(col, n, rows);
    for (std::int64_t j = 0; j < valid; ++j) {
        for (std::int64_t c = 0; c < n; ++c) rows[j * n + c] = col[c][j];
    }
}

// v[0] + ... + v[n - 1] (n <= kSmallClasses), added pairwise: neighbours, then neighbouring pairs...
// Note: in one running sum, the small terms added to the max's 1 one by one all round the same way
// (25 terms of exp(-7.5) put a float sum 20 ulp high, and p - 1 at the target 1.2e-6 off); pairwise,
// a term meets at most log2(n) additions, for the same number of them.
template <typename T>
XENTCPP_INLINE V<T> tree_sum(const V<T>* v, std::int64_t n) {
    V<T> t[(kSmallClasses + 1) / 2];
    std::int64_t m = 0;
    for (std::int64_t i = 0; i < n; i += 2) t[m++] = i + 1 < n ? v[i] + v[i + 1] : v[i];
    while (m > 1) {
        std::int64_t k = 0;
        for (std::int64_t i = 0; i < m; i += 2) t[k++] = i + 1 < m ? t[i] + t[i + 1] : t[i];
        m = k;
    }
    return t[0];
}

// fn(std::integral_constant<int, kN>{}): the most common small class counts get a copy of the
// kernel with the count built in (kN = classes); any other count runs the generic copy (kN = 0).
template <typename Fn>
XENTCPP_INLINE auto with_class_count(std::int64_t classes, const Fn& fn) {
    switch (classes) {
        case 2: return fn(std::integral_constant<int, 2>{});
        case 3: return fn(std::integral_constant<int, 3>{});
        case 4: return fn(std::integral_constant<int, 4>{});
        case 5: return fn(std::integral_constant<int, 5>{});
        case 8: return fn(std::integral_constant<int, 8>{});
        case 10: return fn(std::integral_constant<int, 10>{});
        case 16: return fn(std::integral_constant<int, 16>{});
        default: return fn(std::integral_constant<int, 0>{});
    }
}

}  // namespace xentcpp::simd::XENTCPP_TARGET
