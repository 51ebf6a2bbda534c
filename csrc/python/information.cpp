// Binding of the information measures (xentcpp/functions.hpp): entropy and KL per row, float32 or float64.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "arrays.hpp"
#include "bindings.hpp"
#include "xentcpp/functions.hpp"

namespace xentcpp::python {
namespace {

void information(const py::array& p, const std::optional<py::array>& q, const py::array& out) {
    require(p.ndim() == 2, "p must be 2-D (rows, classes)");
    with_float_type(p, [&](auto tag) {
        using T = decltype(tag);
        const py::dtype dtype = py::dtype::of<T>();
        const std::int64_t rows = p.shape(0), classes = p.shape(1);
        const T* pp = data_of<const T>(p, dtype, p.size(), "p");
        const T* qq = q ? data_of<const T>(*q, dtype, p.size(), "q") : nullptr;
        require(out.writeable(), "out is read-only");
        T* result = data_of<T>(out, dtype, rows, "out");
        py::gil_scoped_release release;
        if (qq) kl_div(pp, qq, rows, classes, result);
        else entropy(pp, rows, classes, result);
        return 0;
    });
}

}  // namespace

void bind_information(py::module_& m) {
    m.def("information", &information, py::arg("p").noconvert(), py::arg("q").noconvert() = py::none(),
          py::arg("out").noconvert(), "Per-row entropy of p (q None) or KL(p || q), in nats, into out (see xentcpp/functions.hpp).");
}

}  // namespace xentcpp::python
