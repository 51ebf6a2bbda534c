// The kernel families of one SIMD target, each in its own source (csrc/simd/target/*.cpp, compiled once
// per target inside namespace XENTCPP_TARGET): each fills its entries of the Kernels table by name
// (table.cpp calls them all). The bandwidth probes and the vector-math test hooks are tables of
// their own (csrc/simd/probes.hpp).
#pragma once

#include "../kernels.hpp"
#include "../probes.hpp"

#ifndef XENTCPP_TARGET
#error "compile the SIMD kernels with -DXENTCPP_TARGET=<namespace of the target>"
#endif

namespace xentcpp::simd::XENTCPP_TARGET {

template <typename T>
void add_row_stats(Kernels<T>& k);       // row_stats.cpp: stats, softmax_grad, scaled_grad, fence
template <typename T>
void add_few_classes(Kernels<T>& k);     // few_classes.cpp: small_rows
template <typename T>
void add_softmax_family(Kernels<T>& k);  // softmax_family.cpp: columns, small_family, shifted
template <typename T>
void add_binary(Kernels<T>& k);          // binary.cpp: bce_with_logits
template <typename T>
void add_information(Kernels<T>& k);     // information.cpp: sum_p_log_p, sum_p_log_p_over_q
template <typename T>
void add_conversions(Kernels<T>& k);     // conversions.cpp: softcap, softcap_grad, half precision
template <typename T>
void add_labels(Kernels<T>& k);          // labels.cpp: count_labels

// This target's tables (table.cpp, bandwidth_probes.cpp, vector_math_hooks.cpp), for dispatch.cpp.
const Kernels<float>& float_kernels();
const Kernels<double>& double_kernels();
const BandwidthProbes& bandwidth_probes();
template <typename T>
const VectorMathHooks<T>& vector_math_hooks();

}  // namespace xentcpp::simd::XENTCPP_TARGET
