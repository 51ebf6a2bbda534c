// xentcpp: cross-entropy of rows whose classes are split into shards (a vocabulary split across arrays,
// processes or machines), from per-row partial statistics that merge exactly.
//
// The algebra. Cut the classes [0, C) of a row x into disjoint shards B. With per-class multipliers
// v (v = w, the class weights, for class-index targets; v = w t' for probability targets t, smoothed
// to t' = (1 - a) t + a / C), a shard's RowPartial holds
//     m_B = max_{c in B} x_c                              (NaN skipped)
//     s_B = sum_{c in B} exp(x_c - m_B)                   as at_max (how many x_c equal m_B: each adds
//                                                         exp(0) = 1) and below_max (the other terms)
//     d_B = sum_{c in B, v_c != 0} v_c (x_c - m_B),   M_B = sum_{c in B} v_c
//     x_y                                                 when the row's target class y lies in B
// from one read of the shard. Two shards' records merge exactly (the same formula joins the blocks of
// one row inside the kernels):
//     m = max(m_A, m_B),   s = s_A exp(m_A - m) + s_B exp(m_B - m),
//     d = d_A + M_A (m_A - m) + d_B + M_B (m_B - m),   M = M_A + M_B,
// commutative and associative up to rounding (a record's 1s become terms below the max when the
// other's max is higher). Once the records of every shard of a row are merged, lse = m + log(s) with
// log(s) = log1p((at_max - 1) + below_max), which keeps a confident row's loss to full relative
// precision, and the row's loss is that of xentcpp.hpp:
//     (1 - a) w_y (log s - (x_y - m)) + (a / C) (W log s - d)     class index y, W = sum_c w_c
//     M log s - d                                                 probability target
// plus z_loss * lse^2. The gradient of any shard needs only the row's merged record:
//     g_c = scale (p_c K - u_c) + 2 z_loss lse z_scale p_c,   p_c = exp((x_c - m) - log s),
// with K = (1 - a) w_y + (a / C) W and u_c = (a / C) w_c for a class index y (the entry at y computed
// in double, from p_y - 1 = -(s - e_y) / s), or K = M and u_c = v_c for probability targets.
// Merging the partials of any split of the class axis gives cross_entropy of the whole row to the
// rounding of the compute type.
//
// Values: NaN in a shard makes its below_max NaN, and the merged row's loss NaN; +inf gives NaN as in
// xentcpp.hpp (inf - inf); a shard whose every logit is -inf has m_B = -inf and s_B = 0, and merges
// as nothing (d_B = -inf where some v_c > 0, as the whole row's d would be); a row whose every logit
// is -inf has a NaN loss and gradient. Rows that are ignored (label == ignore_index) or masked
// (row_mask 0) get an empty record (m = -inf, sums 0, targets 0): their statistics are not computed,
// and merge as nothing.
//
// Errors, by exceptions before anything is written: std::invalid_argument for sizes, null buffers,
// options out of range, and records that do not cover each counted row's classes exactly once
// (classes != C, or its target covered other than once); std::out_of_range for a label outside
// [0, C) that is not ignore_index, naming the first such row of the call.
#pragma once

#include <cstdint>

#include "xentcpp/xentcpp.hpp"

namespace xentcpp {

// One row's statistics over a shard of its classes (see above). Plain doubles and integers: a record
// can be sent anywhere as 64 bytes.
struct RowPartial {
    double max;           // m_B, or -inf for an empty record
    double at_max;        // how many logits equal the max
    double below_max;     // sum of exp(x_c - m_B) over the others
    double dot;           // d_B (computed with label smoothing or probability targets, else 0)
    double mass;          // M_B (likewise)
    double target_logit;  // x_y when `targets` is 1, else 0 (the logit after softcap)
    std::int64_t classes; // how many classes the record covers
    std::int64_t targets; // how many times it covers the row's target class (class-index targets)
};

// A shard of classes [class_start, class_start + width) of rows whose whole class axis has `classes`
// entries. `logits` is rows × width (C-contiguous); exactly one of `labels` (rows entries) and
// `probs` (rows × width: the shard's columns of the probability targets) is given.
template <typename T>
struct ClassShard {
    const T* logits = nullptr;
    std::int64_t rows = 0;
    std::int64_t width = 0;
    std::int64_t class_start = 0;
    std::int64_t classes = 0;
    const std::int64_t* labels = nullptr;
    const T* probs = nullptr;
    const std::uint8_t* row_mask = nullptr;  // optional: rows whose entry is 0 count for nothing
};

// The options that shape the statistics, the loss and the gradient; as in Options, with `weight`
// holding all `classes` entries (indexed by class, not by the shard's columns).
template <typename T>
struct PartialOptions {
    const T* weight = nullptr;
    std::int64_t ignore_index = -100;
    double label_smoothing = 0.0;
    double z_loss = 0.0;   // used by loss_from_partials and grad_from_partials
    double softcap = 0.0;  // used by row_partials and grad_from_partials (the logits as given, before the cap)
};

// Writes one record per row of `shard` into `out` (rows entries).
template <typename T>
void row_partials(const ClassShard<T>& shard, const PartialOptions<T>& options, RowPartial* out);

// out[i] = merge(a[i], b[i]) for i < rows; out may be a or b.
void merge_partials(const RowPartial* a, const RowPartial* b, std::int64_t rows, RowPartial* out);

// Sums over the rows of a loss_from_partials call: what its reductions, and those of many calls over
// the rows of one batch, are made of.
struct PartialSums {
    double loss = 0.0;    // sum of the cross-entropy terms (z-loss excluded)
    double z_loss = 0.0;  // sum of the z-loss terms
    double nll = 0.0;     // sum of w_y (lse - x_y) over counted rows (class-index targets)
    double smooth = 0.0;  // sum of (1 / C) sum_c w_c (lse - x_c) (with label smoothing)
    double weight = 0.0;  // the mean's denominator: summed w_y (class indices) or counted rows (probabilities)
    double rows = 0.0;    // counted rows (the z-loss mean's denominator)
};

// The sums of two calls over different rows (each field added).
inline PartialSums operator+(const PartialSums& a, const PartialSums& b) {
    PartialSums s;
    s.loss = a.loss + b.loss;
    s.z_loss = a.z_loss + b.z_loss;
    s.nll = a.nll + b.nll;
    s.smooth = a.smooth + b.smooth;
    s.weight = a.weight + b.weight;
    s.rows = a.rows + b.rows;
    return s;
}

// The loss of `rows` rows from their merged records. `labels` (rows entries), or null for probability
// targets (whose multipliers the records hold). `weight` (classes entries, double) as given to
// row_partials. Writes per-row losses (z-loss included) and z-losses when those are not null.
PartialSums loss_from_partials(const RowPartial* partials, std::int64_t rows, std::int64_t classes,
                               const std::int64_t* labels, const std::uint8_t* row_mask,
                               const PartialOptions<double>& options, double* row_losses, double* row_z_losses);

// The mean's denominators of class-index targets without any logits: summed w[y] and counted rows
// (the `weight` and `rows` of PartialSums); std::out_of_range for a bad label.
PartialSums count_targets(const std::int64_t* labels, std::int64_t rows, std::int64_t classes,
                          std::int64_t ignore_index, const double* weight, const std::uint8_t* row_mask);

// How the gradient of each row is scaled: `scale` for the cross-entropy term and `z_scale` for the
// z-loss term (1 / the mean's denominators, times the upstream gradient), or `scale_rows` (rows
// entries) for both. `zero_weight_mean`: a mean whose counted weights sum to zero, whose gradient is
// that of the sum (scale = the upstream gradient) divided by that zero afterwards, as in xentcpp.hpp.
struct PartialScales {
    double scale = 1.0;
    double z_scale = 1.0;
    const double* scale_rows = nullptr;
    bool zero_weight_mean = false;
};

// The gradient of `shard` (rows × width, into `grad`, which may be shard.logits) from the rows'
// merged records. Ignored and masked rows get 0.
template <typename T>
void grad_from_partials(const ClassShard<T>& shard, const RowPartial* partials, const PartialOptions<T>& options,
                        const PartialScales& scales, T* grad);

}  // namespace xentcpp
