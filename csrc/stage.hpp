// Staging: rows the kernels cannot read as they are (half precision, soft-capped logits) are
// converted piece by piece into per-thread buffers of the compute type, and their gradients carried
// back (the cap's chain rule, the rounding to the storage type).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "simd/kernels.hpp"
#include "threads.hpp"
#include "xentcpp/xentcpp.hpp"

namespace xentcpp::detail {

// The caller's memory as the compute type, when it is already that type (else never called).
template <typename T, typename S>
const T* direct(const S* p) {
    if constexpr (std::is_same_v<S, T>) return p;
    else return nullptr;
}
template <typename T, typename S>
T* direct(S* p) {
    if constexpr (std::is_same_v<S, T>) return p;
    else return nullptr;
}

// Rows that the kernels cannot read as they are (half precision, or soft-capped logits) are staged:
// each piece (a segment of a long row, or a tile of short ones) is converted (and capped) into a
// per-thread buffer of the compute type, and its gradient computed there, carried through the cap and
// rounded back. Pieces are at most `capacity` elements.
template <typename S>
class Stage {
public:
    using T = compute_t<S>;

    Stage(const simd::Kernels<T>& kernels, double softcap, std::int64_t capacity)
        : kernels_(kernels), cap_(static_cast<T>(softcap)), active_(!std::is_same_v<S, T> || softcap != 0.0),
          capacity_(capacity), buffers_(active_ ? sz(max_threads() * 3 * capacity) : 0) {}

    bool active() const { return active_; }

    // This thread's buffers, `capacity` elements each.
    enum Buffer { logits_buffer = 0, probs_buffer = 1, gradient_buffer = 2 };
    T* buffer(Buffer which) { return buffers_.data() + (thread_index() * 3 + which) * capacity_; }

    // x[0, n) as the kernels read it: widened to T, then capped.
    void logits(const S* x, std::int64_t n, T* out) const {
        if (cap_ != T(0)) {
            if constexpr (std::is_same_v<S, T>) return kernels_.softcap(x, n, cap_, out);
        }
        widen(x, n, out);
        if (cap_ != T(0)) kernels_.softcap(out, n, cap_, out);
    }

    // Probability targets t[0, n): the caller's memory when it is T, else widened into `buffer`.
    const T* probs(const S* t, std::int64_t n, T* buffer) const {
        if (t == nullptr) return nullptr;
        if constexpr (std::is_same_v<S, T>) return t;
        widen(t, n, buffer);
        return buffer;
    }

    // The gradient g[0, n) with respect to the staged logits `capped` becomes the gradient with
    // respect to the caller's logits, in out[0, n) (g is overwritten).
    void gradient(T* g, const T* capped, std::int64_t n, S* out) const {
        if constexpr (std::is_same_v<S, T>) {
            if (cap_ != T(0)) kernels_.softcap_grad(g, capped, n, cap_, out);
            else std::copy(g, g + n, out);
        } else {
            if (cap_ != T(0)) kernels_.softcap_grad(g, capped, n, cap_, g);
            narrow(g, n, out);
        }
    }

private:
    void widen(const S* in, std::int64_t n, T* out) const {
        if constexpr (std::is_same_v<S, float16>) kernels_.widen_f16(&in->bits, n, out);
        else if constexpr (std::is_same_v<S, bfloat16>) kernels_.widen_bf16(&in->bits, n, out);
        else std::copy(in, in + n, out);
    }

    void narrow(const T* in, std::int64_t n, S* out) const {
        if constexpr (std::is_same_v<S, float16>) kernels_.narrow_f16(in, n, &out->bits);
        else if constexpr (std::is_same_v<S, bfloat16>) kernels_.narrow_bf16(in, n, &out->bits);
        else std::copy(in, in + n, out);
    }

    const simd::Kernels<T>& kernels_;
    const T cap_;
    const bool active_;
    const std::int64_t capacity_;
    std::vector<T> buffers_;
};

}  // namespace xentcpp::detail
