// xentcpp._core: the pybind11 face of the C++ core. Thin on purpose: the Python layer has already
// checked and converted everything; each binding file (bindings.hpp) takes arrays as they are, checks
// their sizes again, and releases the GIL while the kernel runs.
//
// C++ exceptions become Python ones: std::invalid_argument -> ValueError, std::out_of_range -> IndexError.
#include <pybind11/pybind11.h>

#include <string>

#include "bindings.hpp"
#include "xentcpp/xentcpp.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
    m.doc() = "xentcpp's C++ kernels. Private: call the functions of the xentcpp package instead.";
    using namespace xentcpp::python;
    bind_cross_entropy(m);
    bind_softmax_family(m);
    bind_nll_loss(m);
    bind_binary_cross_entropy(m);
    bind_information(m);
    bind_partials(m);
    bind_buffer_cache(m);
    bind_bandwidth_probes(m);
    m.def("simd_target", &xentcpp::simd_target,
          "The SIMD target the kernels run on: 'avx512', 'avx2' or 'baseline' (XENTCPP_SIMD can force a lower one).");
    m.def("simd_target_supported", [](const std::string& name) { return xentcpp::simd_target_supported(name.c_str()); },
          "Whether this build and CPU can run the named SIMD target.");
    bind_linear(m);
    m.attr("__version__") = XENTCPP_VERSION;
    bind_config(m);  // compiler, SIMD targets, OpenMP and the thread count (config.cpp)
}
