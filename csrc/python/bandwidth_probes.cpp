// The bandwidth probes (xentcpp/bandwidth_probe.hpp): plain read and copy passes over any C-contiguous
// array as bytes, with the kernels' threads and no arithmetic, for the benchmark's roofline.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "arrays.hpp"
#include "bindings.hpp"
#include "xentcpp/bandwidth_probe.hpp"

namespace xentcpp::python {
namespace {

// The probes take any C-contiguous array as bytes.
const void* bytes_of(const py::array& array, const char* name) {
    require((array.flags() & py::array::c_style) != 0, std::string(name) + " must be C-contiguous");
    return array.data();
}

int read_probe(const py::array& data) {
    const void* p = bytes_of(data, "data");
    const auto n = static_cast<std::int64_t>(data.nbytes());
    py::gil_scoped_release release;
    return xentcpp::read_probe(p, n);
}

void copy_probe(py::array& dst, const py::array& src) {
    require(dst.writeable(), "dst must be writeable");
    require(dst.nbytes() == src.nbytes(), "dst and src must have the same number of bytes");
    void* d = dst.mutable_data();
    const void* s = bytes_of(src, "src");
    bytes_of(dst, "dst");
    const auto n = static_cast<std::int64_t>(src.nbytes());
    py::gil_scoped_release release;
    xentcpp::copy_probe(d, s, n);
}

}  // namespace

void bind_bandwidth_probes(py::module_& m) {
    m.def("read_probe", &read_probe, py::arg("data"),
          "The bitwise OR of every byte of a C-contiguous array, read by the kernels' threads with no arithmetic.");
    m.def("copy_probe", &copy_probe, py::arg("dst"), py::arg("src"),
          "Copies the bytes of src into dst (C-contiguous, same size, not overlapping) with the kernels' threads.");
}

}  // namespace xentcpp::python
