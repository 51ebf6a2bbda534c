// xentcpp: softmax cross-entropy of a linear layer's output, `logits = input @ weight.T + bias`, with its
// gradients with respect to the layer's input, weight and bias, without the rows × classes logits.
//
// The rows are taken in chunks. For each chunk, GEMMs (blas.hpp) write its logits into one workspace of
// chunk × classes; the fused kernel of xentcpp.hpp (`compute`) turns them into the chunk's losses and,
// in place, its logit gradient G; GEMMs then fold G into the gradients: d_input rows = G @ weight, and
// d_weight += G.T @ input rows (accumulated in the output, beta = 1), d_bias += the column sums of G.
// Memory beyond the outputs: the workspace, chunk × classes elements (64 MiB by default, whatever the
// number of rows), plus a row of classes doubles for d_bias.
//
// Semantics are those of `compute` on the whole logits array, class-index targets only, every option
// of `Options` that applies to logits (weight, ignore_index, label_smoothing, reduction, z_loss,
// softcap). Results equal an unfused computation (the logits, then the loss) to the rounding of the
// GEMMs; for a given chunk size they are bitwise the same for any number of OpenMP threads (each GEMM
// tile is one single-threaded BLAS call whose bounds depend on the shape alone). Another chunk size
// changes how d_weight and the reduced loss are summed, so their last bits.
//
// Errors, before anything is written to an output: std::invalid_argument for sizes, null buffers and
// options (those of `compute` too), std::out_of_range for a label outside [0, classes) that is not
// ignore_index (every label is checked before the first chunk).
#pragma once

#include <cstdint>

#include "xentcpp/xentcpp.hpp"

namespace xentcpp {

// The layer and the targets. All row-major and C-contiguous. T: float or double.
template <typename T>
struct LinearProblem {
    const T* input = nullptr;              // rows × hidden
    const T* weight = nullptr;             // classes × hidden (torch.nn.Linear's layout)
    const T* bias = nullptr;               // classes, or nullptr for none
    const std::int64_t* labels = nullptr;  // rows
    std::int64_t rows = 0;
    std::int64_t hidden = 0;
    std::int64_t classes = 0;
};

// The gradients to compute: a null pointer skips that one (and its GEMM). They must not overlap each
// other or the problem's buffers. Reduction none takes the upstream gradient per row.
template <typename T>
struct LinearGrads {
    T* input = nullptr;                    // rows × hidden
    T* weight = nullptr;                   // classes × hidden, overwritten (not added to)
    T* bias = nullptr;                     // classes
    double grad_output = 1.0;              // upstream gradient of a reduced loss (sum, mean)
    const T* grad_output_rows = nullptr;   // reduction none: `rows` entries, or nullptr for ones
};

// How the work is cut, and the opt-in gradient filter.
struct LinearSettings {
    // Rows per chunk; 0 chooses them so that the chunk's logits fill at most `workspace_bytes`.
    std::int64_t chunk_rows = 0;
    std::int64_t workspace_bytes = std::int64_t{64} << 20;
    // > 0: the backward GEMMs skip each stripe of the logit gradient (chunk rows × kStripeClasses
    // classes) whose entries are all, in absolute value, below filter_eps times the gradient's scale
    // (the upstream gradient, over the summed w[y] for a mean; for none the chunk's largest per-row
    // upstream gradient): with plain targets, the stripes whose softmax values are all below filter_eps
    // and hold no target. What the skipped entries add to d_input and d_weight is lost (the loss and
    // d_bias stay exact). 0: off.
    double filter_eps = 0.0;
};

// The classes of one stripe of the gradient filter: it keeps or skips stripes whole.
inline constexpr std::int64_t kStripeClasses = 512;

// The rows of a chunk (the last one may have fewer): settings.chunk_rows when set, else at most as many
// as fill the workspace budget with rows of `classes` elements of `element_bytes` each (at least 1),
// evened out over the chunks `rows` needs. Depends on the shape and settings alone.
std::int64_t linear_chunk_rows(std::int64_t rows, std::int64_t classes, std::int64_t element_bytes,
                               const LinearSettings& settings);

// Returns the totals as `compute` does (the reduced loss with the z-loss term, and the z-loss term;
// for none their plain sums), writes per-row losses (z-loss included) and z-losses where the pointers
// are not null, and the gradients asked for in `grads` (null: the loss only).
template <typename T>
Totals linear_cross_entropy(const LinearProblem<T>& problem, const Options<T>& options,
                            const LinearSettings& settings, Out<T> row_losses, const LinearGrads<T>* grads,
                            Out<T> row_z_losses = nullptr);

}  // namespace xentcpp
