// Portable SIMD vectors for the kernels: GCC/Clang vector extensions, as wide as the target this
// translation unit is compiled for (64 bytes with AVX-512, 32 with AVX2, 16 otherwise: SSE2 on
// x86-64, NEON on aarch64). Each dispatch target compiles the kernels once, inside its own namespace
// XENTCPP_TARGET, so that the copies never meet at link time.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#ifndef XENTCPP_TARGET
#error "compile the SIMD kernels with -DXENTCPP_TARGET=<namespace of the target>"
#endif

// For the small helpers of hot loops, which GCC otherwise leaves as calls that pass vectors through memory.
#define XENTCPP_INLINE inline __attribute__((always_inline))

// Before a loop over the classes of a group of few rows (lane_groups.hpp): unrolled completely, so
// that its vectors stay in registers. Note: GCC's size estimate left the two-group forward's class loop
// rolled, its columns and labels on the stack, once the target's term became a masked subtraction
// (few classes, forward, AVX-512: 22 % slower than before it; 6 % with the loops unrolled).
#define XENTCPP_UNROLL _Pragma("GCC unroll 32")

// Note: AddressSanitizer does not check AVX-512 masked loads and stores, so a partial vector past
// the end of a buffer would go unseen; sanitizer builds take the memcpy path, which it checks.
#if defined(__SANITIZE_ADDRESS__)
#define XENTCPP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XENTCPP_ASAN 1
#endif
#endif

namespace xentcpp::simd::XENTCPP_TARGET {

#if defined(__AVX512F__)
inline constexpr int kVectorBytes = 64;
#elif defined(__AVX2__)
inline constexpr int kVectorBytes = 32;
#else
inline constexpr int kVectorBytes = 16;
#endif

// Vec<T>::type holds lanes of T; Vec<T>::bits holds the same lanes as signed integers of T's width.
template <typename T>
struct Vec;
template <>
struct Vec<float> {
    typedef float type __attribute__((vector_size(kVectorBytes)));
    typedef std::int32_t bits __attribute__((vector_size(kVectorBytes)));
    static constexpr int lanes = kVectorBytes / 4;
};
template <>
struct Vec<double> {
    typedef double type __attribute__((vector_size(kVectorBytes)));
    typedef std::int64_t bits __attribute__((vector_size(kVectorBytes)));
    static constexpr int lanes = kVectorBytes / 8;
};

template <typename T>
using V = typename Vec<T>::type;

template <typename T>
inline V<T> splat(T value) {
    return V<T>{} + value;
}

template <typename T>
inline V<T> load(const T* p) {
    V<T> v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

#if defined(__AVX512F__)
// The lanes [0, n) of a vector, as an AVX-512 mask.
template <typename T>
inline auto first_lanes(std::int64_t n) {
    if constexpr (std::is_same_v<T, float>) return static_cast<__mmask16>((1u << n) - 1u);
    else return static_cast<__mmask8>((1u << n) - 1u);
}
#endif

// The first n (< lanes) elements of p; the other lanes hold `fill`.
// Note: with AVX-512 a masked load (one instruction, no fault past n) instead of a memcpy of
// run-time length, which is a library call.
template <typename T>
inline V<T> load_partial(const T* p, std::int64_t n, T fill) {
    V<T> v = splat(fill);
#if defined(__AVX512F__) && !defined(XENTCPP_ASAN)
    if constexpr (std::is_same_v<T, float>) {
        return reinterpret_cast<V<T>>(_mm512_mask_loadu_ps(reinterpret_cast<__m512>(v), first_lanes<T>(n), p));
    } else {
        return reinterpret_cast<V<T>>(_mm512_mask_loadu_pd(reinterpret_cast<__m512d>(v), first_lanes<T>(n), p));
    }
#else
    std::memcpy(&v, p, static_cast<std::size_t>(n) * sizeof(T));
    return v;
#endif
}

template <typename T>
inline void store(T* p, V<T> v) {
    std::memcpy(p, &v, sizeof v);
}

// A store that bypasses the caches (no read for ownership): for outputs larger than the caches.
// p must be aligned to the vector size; call stream_fence() before the data is read elsewhere.
template <typename T>
inline void store_stream(T* p, V<T> v) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) _mm512_stream_ps(p, reinterpret_cast<__m512>(v));
    else _mm512_stream_pd(p, reinterpret_cast<__m512d>(v));
#elif defined(__AVX__)
    if constexpr (std::is_same_v<T, float>) _mm256_stream_ps(p, reinterpret_cast<__m256>(v));
    else _mm256_stream_pd(p, reinterpret_cast<__m256d>(v));
#elif defined(__SSE2__)
    if constexpr (std::is_same_v<T, float>) _mm_stream_ps(p, reinterpret_cast<__m128>(v));
    else _mm_stream_pd(p, reinterpret_cast<__m128d>(v));
#else
    store(p, v);
#endif
}

// acc + e where z != 0 (NaN included), acc where z == 0; the lanes where z != 0 are added to
// `nonzero` (so that the caller counts the zeros as the lanes it passed minus those).
// For a sum of exponentials exp(z) of z = x - max that keeps the max's exp(0) = 1s apart (SpanStats).
// Note: on AVX-512 a compare into a mask register and a masked add, the count by popcount on the
// integer side; the portable form (two selects and a vector count) cost 4 vector operations an element
// instead of 1, and the forward of long rows 10 % (1 thread).
template <typename T>
XENTCPP_INLINE V<T> add_unless_zero(V<T> acc, V<T> z, V<T> e, std::uint32_t& nonzero) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
        const __mmask16 set = _mm512_cmp_ps_mask(reinterpret_cast<__m512>(z), _mm512_setzero_ps(), _CMP_NEQ_UQ);
        nonzero += static_cast<std::uint32_t>(__builtin_popcount(set));
        return reinterpret_cast<V<T>>(_mm512_mask_add_ps(reinterpret_cast<__m512>(acc), set,
                                                         reinterpret_cast<__m512>(acc), reinterpret_cast<__m512>(e)));
    } else {
        const __mmask8 set = _mm512_cmp_pd_mask(reinterpret_cast<__m512d>(z), _mm512_setzero_pd(), _CMP_NEQ_UQ);
        nonzero += static_cast<std::uint32_t>(__builtin_popcount(set));
        return reinterpret_cast<V<T>>(_mm512_mask_add_pd(reinterpret_cast<__m512d>(acc), set,
                                                         reinterpret_cast<__m512d>(acc), reinterpret_cast<__m512d>(e)));
    }
#else
    const auto set = z != T(0);  // true for NaN
#if defined(__AVX__)
    if constexpr (std::is_same_v<T, float>) nonzero += __builtin_popcount(_mm256_movemask_ps(reinterpret_cast<__m256>(set)));
    else nonzero += __builtin_popcount(_mm256_movemask_pd(reinterpret_cast<__m256d>(set)));
#elif defined(__SSE2__)
    if constexpr (std::is_same_v<T, float>) nonzero += __builtin_popcount(_mm_movemask_ps(reinterpret_cast<__m128>(set)));
    else nonzero += __builtin_popcount(_mm_movemask_pd(reinterpret_cast<__m128d>(set)));
#else
    for (int i = 0; i < Vec<T>::lanes; ++i) nonzero += set[i] != 0;
#endif
    return acc + reinterpret_cast<V<T>>(set & reinterpret_cast<typename Vec<T>::bits>(e));
#endif
}

// In the lanes whose label is c: z into `picked` (and e into `*picked_e` when given), and e - 1
// returned; e elsewhere. The few-classes kernels' per-class step for a row's target (its shift, its
// exponential, and its term entering the sum as e - 1).
// Note: on AVX-512 one compare into a mask register, a masked blend (two with picked_e) and a masked
// subtraction; the portable form compiles to a compare, two blends (three) and a subtraction.
template <typename T>
XENTCPP_INLINE V<T> pick_target(V<T> label, T c, V<T> z, V<T> e, V<T>& picked, V<T>* picked_e = nullptr) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
        const __mmask16 hit = _mm512_cmp_ps_mask(reinterpret_cast<__m512>(label), _mm512_set1_ps(c), _CMP_EQ_OQ);
        picked = reinterpret_cast<V<T>>(_mm512_mask_blend_ps(hit, reinterpret_cast<__m512>(picked), reinterpret_cast<__m512>(z)));
        if (picked_e) {
            *picked_e = reinterpret_cast<V<T>>(
                _mm512_mask_blend_ps(hit, reinterpret_cast<__m512>(*picked_e), reinterpret_cast<__m512>(e)));
        }
        return reinterpret_cast<V<T>>(_mm512_mask_sub_ps(reinterpret_cast<__m512>(e), hit, reinterpret_cast<__m512>(e),
                                                         _mm512_set1_ps(1.0f)));
    } else {
        const __mmask8 hit = _mm512_cmp_pd_mask(reinterpret_cast<__m512d>(label), _mm512_set1_pd(c), _CMP_EQ_OQ);
        picked = reinterpret_cast<V<T>>(_mm512_mask_blend_pd(hit, reinterpret_cast<__m512d>(picked), reinterpret_cast<__m512d>(z)));
        if (picked_e) {
            *picked_e = reinterpret_cast<V<T>>(
                _mm512_mask_blend_pd(hit, reinterpret_cast<__m512d>(*picked_e), reinterpret_cast<__m512d>(e)));
        }
        return reinterpret_cast<V<T>>(_mm512_mask_sub_pd(reinterpret_cast<__m512d>(e), hit, reinterpret_cast<__m512d>(e),
                                                         _mm512_set1_pd(1.0)));
    }
#else
    const auto hit = label == c;
    picked = hit ? z : picked;
    if (picked_e) *picked_e = hit ? e : *picked_e;
    return hit ? e - T(1) : e;
#endif
}

// a * b + c, rounded once where the target has FMA and twice where it has not: the same bits at
// every call site (under fp-contract the compiler would choose per site whether to fuse).
template <typename T>
XENTCPP_INLINE V<T> mul_add(V<T> a, V<T> b, V<T> c) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
        return reinterpret_cast<V<T>>(_mm512_fmadd_ps(reinterpret_cast<__m512>(a), reinterpret_cast<__m512>(b),
                                                      reinterpret_cast<__m512>(c)));
    } else {
        return reinterpret_cast<V<T>>(_mm512_fmadd_pd(reinterpret_cast<__m512d>(a), reinterpret_cast<__m512d>(b),
                                                      reinterpret_cast<__m512d>(c)));
    }
#elif defined(__FMA__) && defined(__AVX__)
    if constexpr (std::is_same_v<T, float>) {
        return reinterpret_cast<V<T>>(_mm256_fmadd_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b),
                                                      reinterpret_cast<__m256>(c)));
    } else {
        return reinterpret_cast<V<T>>(_mm256_fmadd_pd(reinterpret_cast<__m256d>(a), reinterpret_cast<__m256d>(b),
                                                      reinterpret_cast<__m256d>(c)));
    }
#elif defined(__FP_FAST_FMA) || defined(__ARM_FEATURE_FMA)
    V<T> out;
    for (int i = 0; i < Vec<T>::lanes; ++i) out[i] = __builtin_fma(a[i], b[i], c[i]);
    return out;
#else
    return a * b + c;  // no fused instruction to contract into
#endif
}

inline void stream_fence() {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

// The first n (< lanes) lanes of v to p[0, n).
template <typename T>
inline void store_partial(T* p, std::int64_t n, V<T> v) {
#if defined(__AVX512F__) && !defined(XENTCPP_ASAN)
    if constexpr (std::is_same_v<T, float>) _mm512_mask_storeu_ps(p, first_lanes<T>(n), reinterpret_cast<__m512>(v));
    else _mm512_mask_storeu_pd(p, first_lanes<T>(n), reinterpret_cast<__m512d>(v));
#else
    std::memcpy(p, &v, static_cast<std::size_t>(n) * sizeof(T));
#endif
}

// One stage of transpose(): swaps bit B of the vector index with bit B of the lane index, for the
// pair (a, b) = (r[i], r[i + B]) with i & B == 0.
template <int B, typename W, std::size_t... I>
XENTCPP_INLINE void swap_bit(W& a, W& b, std::index_sequence<I...>) {
    constexpr int L = static_cast<int>(sizeof...(I));
    const W low = __builtin_shufflevector(a, b, ((I & B) ? static_cast<int>(I) - B + L : static_cast<int>(I))...);
    const W high = __builtin_shufflevector(a, b, ((I & B) ? static_cast<int>(I) + L : static_cast<int>(I) + B)...);
    a = low;
    b = high;
}

template <int B, typename T>
XENTCPP_INLINE void transpose_stage(V<T>* r) {
    constexpr int L = Vec<T>::lanes;
    if constexpr (B >= 1) {
        for (int i = 0; i < L; ++i) {
            if ((i & B) == 0) swap_bit<B>(r[i], r[i + B], std::make_index_sequence<L>{});
        }
        transpose_stage<B / 2, T>(r);
    }
}

// In-register transpose of `lanes` vectors: lane l of r[i] becomes lane i of r[l].
// Note: log2(lanes) stages of two-source shuffles, each exchanging one bit between the vector
// and the lane index (the order of the stages does not matter): 64 shuffles for 16 x 16 floats.
template <typename T>
XENTCPP_INLINE void transpose(V<T>* r) {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
        // Note: GCC turns some of the generic stages into two-source permutes (vpermt2ps); the
        // classic sequence of in-lane unpacks and shuffles, then 128-bit block shuffles, costs as
        // many instructions but only cheap ones.
        __m512 t[16], u[16];
        for (int k = 0; k < 16; k += 2) {
            const __m512 a = reinterpret_cast<__m512>(r[k]), b = reinterpret_cast<__m512>(r[k + 1]);
            t[k] = _mm512_unpacklo_ps(a, b);      // per 128-bit block q: a0 b0 a1 b1 (of columns 4q..)
            t[k + 1] = _mm512_unpackhi_ps(a, b);  // a2 b2 a3 b3
        }
        for (int k = 0; k < 16; k += 4) {
            u[k] = _mm512_shuffle_ps(t[k], t[k + 2], 0x44);  // column 4q of rows k..k+3
            u[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], 0xEE);
            u[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0x44);
            u[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
        }
        for (int i = 0; i < 4; ++i) {  // blocks q of u[i], u[4 + i], u[8 + i], u[12 + i] make column 4q + i
            const __m512 v1 = _mm512_shuffle_f32x4(u[i], u[4 + i], 0x88), v2 = _mm512_shuffle_f32x4(u[i], u[4 + i], 0xDD);
            const __m512 w1 = _mm512_shuffle_f32x4(u[8 + i], u[12 + i], 0x88);
            const __m512 w2 = _mm512_shuffle_f32x4(u[8 + i], u[12 + i], 0xDD);
            r[i] = reinterpret_cast<V<T>>(_mm512_shuffle_f32x4(v1, w1, 0x88));
            r[8 + i] = reinterpret_cast<V<T>>(_mm512_shuffle_f32x4(v1, w1, 0xDD));
            r[4 + i] = reinterpret_cast<V<T>>(_mm512_shuffle_f32x4(v2, w2, 0x88));
            r[12 + i] = reinterpret_cast<V<T>>(_mm512_shuffle_f32x4(v2, w2, 0xDD));
        }
        return;
    }
#endif
    transpose_stage<Vec<T>::lanes / 2, T>(r);
}

// Lane-wise max that skips NaN in `x`: a NaN lane of x leaves m unchanged.
template <typename W>
inline W max_skip_nan(W m, W x) {
    return x > m ? x : m;
}

template <typename W>
using Lane = std::remove_reference_t<decltype(W{}[0])>;

// Whether any lane of a comparison's result (all bits set, or none, per lane) is set.
template <typename M>
XENTCPP_INLINE bool any(M mask) {
    Lane<M> bits = 0;
    for (std::size_t i = 0; i < sizeof(M) / sizeof(Lane<M>); ++i) bits |= mask[i];
    return bits != 0;
}

template <typename W>
inline Lane<W> reduce_max(W v) {
    Lane<W> m = v[0];
    for (std::size_t i = 1; i < sizeof(W) / sizeof(Lane<W>); ++i) m = v[i] > m ? v[i] : m;
    return m;
}

// The sum of the lanes of a vector of doubles, halving it: lane i + lane i + half, recursively.
template <typename D, std::size_t... I>
XENTCPP_INLINE double halving_sum(D d, std::index_sequence<I...>) {
    constexpr std::size_t kHalf = sizeof...(I);
    const auto sum = __builtin_shufflevector(d, d, I...) + __builtin_shufflevector(d, d, (I + kHalf)...);
    if constexpr (kHalf == 1) return sum[0];
    else return halving_sum(sum, std::make_index_sequence<kHalf / 2>{});
}

// Lane sum, in double, pairwise over the lanes (in vector registers: a loop over an array of the
// lanes went through memory).
template <typename W>
XENTCPP_INLINE double reduce_sum(W v) {
    constexpr std::size_t kLanes = sizeof(W) / sizeof(Lane<W>);
    typedef double Doubles __attribute__((vector_size(kLanes * sizeof(double))));
    if constexpr (kLanes == 1) return static_cast<double>(v[0]);
    else return halving_sum(__builtin_convertvector(v, Doubles), std::make_index_sequence<kLanes / 2>{});
}

}  // namespace xentcpp::simd::XENTCPP_TARGET
