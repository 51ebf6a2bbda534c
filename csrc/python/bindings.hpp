// The binding files of xentcpp._core, one per area of the core, each adding its functions to the
// module (module.cpp calls them all).
#pragma once

#include <pybind11/pybind11.h>

namespace xentcpp::python {

namespace py = pybind11;

void bind_cross_entropy(py::module_& m);      // cross_entropy.cpp: cross_entropy, fast, Want
void bind_softmax_family(py::module_& m);     // softmax_family.cpp: softmax_family, SoftmaxOp
void bind_nll_loss(py::module_& m);           // nll_loss.cpp
void bind_binary_cross_entropy(py::module_& m);  // binary_cross_entropy.cpp: bce_with_logits
void bind_information(py::module_& m);        // information.cpp: entropy and KL
void bind_partials(py::module_& m);           // partials.cpp: cross-entropy from shards of the class axis
void bind_linear(py::module_& m);             // linear.cpp: linear_cross_entropy, the BLAS's facts
void bind_buffer_cache(py::module_& m);       // buffer_cache.cpp: empty, empty_cache, set_cache_limit, ...
void bind_bandwidth_probes(py::module_& m);   // bandwidth_probes.cpp: read_probe, copy_probe
void bind_config(py::module_& m);             // config.cpp: compiler, OpenMP, threads

}  // namespace xentcpp::python
