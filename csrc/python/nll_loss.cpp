// Binding of nll_loss (xentcpp/functions.hpp): log-probabilities and int64 labels, float32 or float64.
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

double nll(const py::array& log_probs, const py::array& labels, const std::optional<py::array>& weight,
           std::int64_t ignore_index, const std::string& reduction, const std::optional<py::array>& row_losses,
           const std::optional<py::array>& grad, double grad_output, const std::optional<py::array>& grad_output_rows) {
    require(log_probs.ndim() == 2, "log_probs must be 2-D (rows, classes)");
    return with_float_type(log_probs, [&](auto tag) {
        using T = decltype(tag);
        const py::dtype dtype = py::dtype::of<T>();
        const std::int64_t rows = log_probs.shape(0), classes = log_probs.shape(1);
        const T* x = data_of<const T>(log_probs, dtype, log_probs.size(), "log_probs");
        const auto* y = data_of<const std::int64_t>(labels, py::dtype::of<std::int64_t>(), rows, "labels");
        const T* w = weight ? data_of<const T>(*weight, dtype, classes, "weight") : nullptr;
        T* losses = writable_data_of<T>(row_losses, dtype, rows, "row_losses");
        const GradRequest<T> request = request_of<T>(grad, grad_output, grad_output_rows, log_probs.size(), rows);
        const Reduction r = parse_reduction(reduction);
        py::gil_scoped_release release;
        return nll_loss(x, rows, classes, y, w, ignore_index, r, losses, request.grad ? &request : nullptr);
    });
}

}  // namespace

void bind_nll_loss(py::module_& m) {
    m.def("nll_loss", &nll, py::arg("log_probs").noconvert(), py::arg("labels").noconvert(), py::kw_only(),
          py::arg("weight").noconvert() = py::none(), py::arg("ignore_index") = -100, py::arg("reduction") = "mean",
          py::arg("row_losses").noconvert() = py::none(), py::arg("grad").noconvert() = py::none(),
          py::arg("grad_output") = 1.0, py::arg("grad_output_rows").noconvert() = py::none());
}

}  // namespace xentcpp::python
