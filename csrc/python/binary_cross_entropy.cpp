// Binding of binary_cross_entropy_with_logits (xentcpp/functions.hpp), float32 or float64.
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

double bce(const py::array& input, const py::array& target, const std::optional<py::array>& weight,
           const std::optional<py::array>& class_weight, const std::optional<py::array>& pos_weight,
           const std::string& reduction, const std::optional<py::array>& losses, const std::optional<py::array>& grad,
           double grad_output, const std::optional<py::array>& grad_output_elements) {
    require(input.ndim() == 2, "input must be 2-D (rows, classes)");
    return with_float_type(input, [&](auto tag) {
        using T = decltype(tag);
        const py::dtype dtype = py::dtype::of<T>();
        const std::int64_t rows = input.shape(0), classes = input.shape(1), size = input.size();
        const T* x = data_of<const T>(input, dtype, size, "input");
        const T* t = data_of<const T>(target, dtype, size, "target");
        const T* w = weight ? data_of<const T>(*weight, dtype, size, "weight") : nullptr;
        const T* cw = class_weight ? data_of<const T>(*class_weight, dtype, classes, "class weight") : nullptr;
        const T* pw = pos_weight ? data_of<const T>(*pos_weight, dtype, classes, "pos_weight") : nullptr;
        T* out = writable_data_of<T>(losses, dtype, size, "losses");
        const GradRequest<T> request = request_of<T>(grad, grad_output, grad_output_elements, size, size);
        const Reduction r = parse_reduction(reduction);
        py::gil_scoped_release release;
        return binary_cross_entropy_with_logits(x, t, rows, classes, w, cw, pw, r, out,
                                                request.grad ? &request : nullptr);
    });
}

}  // namespace

void bind_binary_cross_entropy(py::module_& m) {
    m.def("bce_with_logits", &bce, py::arg("input").noconvert(), py::arg("target").noconvert(), py::kw_only(),
          py::arg("weight").noconvert() = py::none(), py::arg("class_weight").noconvert() = py::none(),
          py::arg("pos_weight").noconvert() = py::none(), py::arg("reduction") = "mean",
          py::arg("losses").noconvert() = py::none(), py::arg("grad").noconvert() = py::none(),
          py::arg("grad_output") = 1.0, py::arg("grad_output_elements").noconvert() = py::none());
}

}  // namespace xentcpp::python
