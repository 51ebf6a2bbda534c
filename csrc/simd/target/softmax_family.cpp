// The softmax family (logsumexp, softmax, log_softmax) for one SIMD target: along a middle axis
// (Kernels::columns), over rows of few classes (small_family: lanes own rows, lane_groups.hpp), and the
// log-softmax of a row whose statistics are known (shifted).
#include <cstdint>

#include "families.hpp"
#include "lane_groups.hpp"

namespace xentcpp::simd::XENTCPP_TARGET {
namespace {

// The softmax family of one group of up to `lanes` rows of few classes, lane j owning row j, with
// the arithmetic of the per-row path: m = max (NaN skipped), s = sum of exp_sum(x - m) added
// pairwise (shift 0 for a row of -inf only), then logsumexp: m + log s; softmax: exp((x - m) - log s);
// log_softmax: (x - m) - log s. out: the group's first result (one per row for logsumexp, else
// rows × n; may be x).
template <typename T, int kN>
XENTCPP_INLINE void family_group(const T* x, std::int64_t classes, std::int64_t valid, SoftmaxOp op, T* out) {
    constexpr int L = Vec<T>::lanes;
    const std::int64_t n = kN > 0 ? kN : classes;
    V<T> col[kSmallClasses], e[kSmallClasses];
    load_group<T>(x, n, valid, col);
    V<T> m = splat(kMinusInf<T>);
    for (std::int64_t c = 0; c < n; ++c) m = max_skip_nan(m, col[c]);
    const V<T> shift = m == kMinusInf<T> ? splat(T(0)) : m;
    V<T> log_sum;
    if (op == SoftmaxOp::softmax) {  // p = exp(z - log s): log s to an absolute eps keeps every p to a relative one
        for (std::int64_t c = 0; c < n; ++c) e[c] = exp_sum(col[c] - shift);
        log_sum = log<true>(tree_sum<T>(e, n));
    } else {  // logsumexp and log_softmax: the max's 1s counted apart, as in stats
        V<T> at_max{};
        for (std::int64_t c = 0; c < n; ++c) {
            const V<T> z = col[c] - shift;
            const auto is_max = z == T(0);
            e[c] = is_max ? splat(T(0)) : exp_sum(z);
            at_max += is_max ? splat(T(1)) : splat(T(0));
        }
        log_sum = log1p_excess<T>((at_max - T(1)) + tree_sum<T>(e, n));
    }
    if (op == SoftmaxOp::logsumexp) {
        const V<T> lse = shift + log_sum;
        if (valid == L) store(out, lse);
        else store_partial(out, valid, lse);
        return;
    }
    for (std::int64_t c = 0; c < n; ++c) {
        const V<T> z = (col[c] - m) - log_sum;  // the max and the log-sum subtracted separately
        col[c] = op == SoftmaxOp::softmax ? exp<true>(z) : z;
    }
    store_group<T>(col, n, valid, out);
}

template <typename T>
void small_family(const T* x, std::int64_t rows, std::int64_t classes, SoftmaxOp op, T* out) {
    constexpr int L = Vec<T>::lanes;
    with_class_count(classes, [&](auto count) {
        for (std::int64_t r0 = 0; r0 < rows; r0 += L) {
            const char* ahead = reinterpret_cast<const char*>(x + r0 * classes) + kSmallPrefetchBytes;
            for (std::int64_t b = 0; b < L * classes * static_cast<std::int64_t>(sizeof(T)); b += 64) {
                __builtin_prefetch(ahead + b);
            }
            family_group<T, decltype(count)::value>(x + r0 * classes, classes, rows - r0 < L ? rows - r0 : L, op,
                                                    out + r0 * (op == SoftmaxOp::logsumexp ? 1 : classes));
        }
    });
}

template <typename T>
void columns(const T* x, std::int64_t classes, std::int64_t inner, SoftmaxOp op, T* out) {
    constexpr int L = Vec<T>::lanes;
    for (std::int64_t i = 0; i < inner; i += L) {
        const std::int64_t valid = inner - i < L ? inner - i : L;
        const auto at = [&](std::int64_t c) {
            const T* p = x + c * inner + i;
            return valid == L ? load(p) : load_partial(p, valid, kMinusInf<T>);
        };
        const auto put = [&](T* p, V<T> v) {
            if (valid == L) store(p, v);
            else store_partial(p, valid, v);
        };
        V<T> m = splat(kMinusInf<T>);
        for (std::int64_t c = 0; c < classes; ++c) m = max_skip_nan(m, at(c));
        const V<T> shift = m == kMinusInf<T> ? splat(T(0)) : m;  // all -inf: lse -inf, softmax NaN
        // Note: the sum in runs of 16 classes, the runs added in double: one chain of float additions
        // over 1 000 000 classes was 31 ulp off in logsumexp (the row kernels' sums: under 1). The
        // max's 1s are counted apart, as in stats, so that log s = log1p((at_max - 1) + below).
        WideDouble<T> below{}, at_max{};
        V<T> run{}, run_at_max{};
        const auto end_run = [&] {
            below += __builtin_convertvector(run, WideDouble<T>);
            at_max += __builtin_convertvector(run_at_max, WideDouble<T>);
            run = run_at_max = V<T>{};
        };
        for (std::int64_t c = 0; c < classes; ++c) {
            const V<T> z = at(c) - shift;
            const auto is_max = z == T(0);
            run += is_max ? splat(T(0)) : exp(z);
            run_at_max += is_max ? splat(T(1)) : splat(T(0));
            if (c % 16 == 15) end_run();
        }
        end_run();
        const WideDouble<T> excess = (at_max - 1.0) + below;
        const V<T> log_sum = log1p_excess<T>(__builtin_convertvector(excess, V<T>));
        if (op == SoftmaxOp::logsumexp) {
            put(out + i, shift + log_sum);
            continue;
        }
        for (std::int64_t c = 0; c < classes; ++c) {
            const V<T> z = (at(c) - m) - log_sum;
            put(out + c * inner + i, op == SoftmaxOp::softmax ? exp(z) : z);
        }
    }
}

template <typename T>
void shifted(const T* x, std::int64_t n, T shift, T log_sum, T* out) {
    for (std::int64_t c = 0; c < n; ++c) out[c] = (x[c] - shift) - log_sum;
}

}  // namespace

template <typename T>
void add_softmax_family(Kernels<T>& k) {
    k.columns = &columns<T>;
    k.small_family = &small_family<T>;
    k.shifted = &shifted<T>;
}

template void add_softmax_family<float>(Kernels<float>&);
template void add_softmax_family<double>(Kernels<double>&);

}  // namespace xentcpp::simd::XENTCPP_TARGET
