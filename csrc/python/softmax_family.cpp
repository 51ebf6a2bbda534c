// Binding of the softmax family (xentcpp/functions.hpp): logsumexp, softmax and log_softmax of a
// C-contiguous (outer, classes, inner) block, float32 or float64, checked as the other bindings.
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

// Which function _core.softmax_family computes (_core.SoftmaxOp).
enum class SoftmaxFunction : int { logsumexp, softmax, log_softmax };

void softmax_family(const py::array& x, std::int64_t outer, std::int64_t classes, std::int64_t inner, SoftmaxFunction op,
                    const py::array& out) {
    require(outer >= 0 && classes >= 1 && inner >= 1, "bad layout");
    with_float_type(x, [&](auto tag) {
        using T = decltype(tag);
        const py::dtype dtype = py::dtype::of<T>();
        const Columns layout{outer, classes, inner};
        const T* in = data_of<const T>(x, dtype, outer * classes * inner, "input");
        require(out.writeable(), "out is read-only");
        T* result = data_of<T>(out, dtype, op == SoftmaxFunction::logsumexp ? outer * inner : outer * classes * inner, "out");
        py::gil_scoped_release release;
        switch (op) {
            case SoftmaxFunction::logsumexp: logsumexp(in, layout, result); break;
            case SoftmaxFunction::softmax: softmax(in, layout, result); break;
            case SoftmaxFunction::log_softmax: log_softmax(in, layout, result); break;
        }
        return 0;
    });
}

}  // namespace

void bind_softmax_family(py::module_& m) {
    py::enum_<SoftmaxFunction>(m, "SoftmaxOp", "Which of the softmax family _core.softmax_family computes.")
        .value("logsumexp", SoftmaxFunction::logsumexp)
        .value("softmax", SoftmaxFunction::softmax)
        .value("log_softmax", SoftmaxFunction::log_softmax);
    m.def("softmax_family", &softmax_family, py::arg("input").noconvert(), py::arg("outer"), py::arg("classes"),
          py::arg("inner"), py::arg("op"), py::arg("out").noconvert(),
          "logsumexp, softmax or log_softmax (op) of a C-contiguous (outer, classes, inner) block into out.");
}

}  // namespace xentcpp::python
