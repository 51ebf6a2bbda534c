// Bindings of xentcpp/functions.hpp: float32 and float64 arrays, checked as in module.cpp, the GIL
// released while the kernels run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "arrays.hpp"
#include "xentcpp/functions.hpp"

namespace xentcpp::python {
namespace {

// Calls fn(T{}) with T the compute type of x (float or double); other dtypes are refused.
template <typename Fn>
auto with_float_type(const py::array& x, const Fn& fn) {
    const Storage storage = storage_of(x);
    require(storage == Storage::float32 || storage == Storage::float64, "input must be float32 or float64");
    return storage == Storage::float32 ? fn(float{}) : fn(double{});
}

void softmax_family(const py::array& x, std::int64_t outer, std::int64_t classes, std::int64_t inner, int op,
                    const py::array& out) {
    require(op >= 0 && op <= 2, "op must be 0 (logsumexp), 1 (softmax) or 2 (log_softmax)");
    require(outer >= 0 && classes >= 1 && inner >= 1, "bad layout");
    with_float_type(x, [&](auto tag) {
        using T = decltype(tag);
        const py::dtype dtype = py::dtype::of<T>();
        const Columns layout{outer, classes, inner};
        const T* in = data_of<const T>(x, dtype, outer * classes * inner, "input");
        require(out.writeable(), "out is read-only");
        T* result = data_of<T>(out, dtype, op == 0 ? outer * inner : outer * classes * inner, "out");
        py::gil_scoped_release release;
        if (op == 0) logsumexp(in, layout, result);
        else if (op == 1) softmax(in, layout, result);
        else log_softmax(in, layout, result);
        return 0;
    });
}

// The gradient request of a binding: grad and the upstream gradient (scalar, or per row / element).
template <typename T>
GradRequest<T> request_of(const std::optional<py::array>& grad, double grad_output,
                          const std::optional<py::array>& grad_output_rows, py::ssize_t size, py::ssize_t rows) {
    const py::dtype dtype = py::dtype::of<T>();
    GradRequest<T> request;
    request.grad = writable_data_of<T>(grad, dtype, size, "grad");
    request.grad_output = grad_output;
    if (grad_output_rows) request.grad_output_rows = data_of<const T>(*grad_output_rows, dtype, rows, "grad_output");
    return request;
}

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

void bind_functions(py::module_& m) {
    m.def("softmax_family", &softmax_family, py::arg("input").noconvert(), py::arg("outer"), py::arg("classes"),
          py::arg("inner"), py::arg("op"), py::arg("out").noconvert(),
          "op 0: logsumexp, 1: softmax, 2: log_softmax of a C-contiguous (outer, classes, inner) block into out.");
    m.def("nll_loss", &nll, py::arg("log_probs").noconvert(), py::arg("labels").noconvert(), py::kw_only(),
          py::arg("weight").noconvert() = py::none(), py::arg("ignore_index") = -100, py::arg("reduction") = "mean",
          py::arg("row_losses").noconvert() = py::none(), py::arg("grad").noconvert() = py::none(),
          py::arg("grad_output") = 1.0, py::arg("grad_output_rows").noconvert() = py::none());
    m.def("bce_with_logits", &bce, py::arg("input").noconvert(), py::arg("target").noconvert(), py::kw_only(),
          py::arg("weight").noconvert() = py::none(), py::arg("class_weight").noconvert() = py::none(),
          py::arg("pos_weight").noconvert() = py::none(), py::arg("reduction") = "mean",
          py::arg("losses").noconvert() = py::none(), py::arg("grad").noconvert() = py::none(),
          py::arg("grad_output") = 1.0, py::arg("grad_output_elements").noconvert() = py::none());
    m.def("information", &information, py::arg("p").noconvert(), py::arg("q").noconvert() = py::none(),
          py::arg("out").noconvert(), "Per-row entropy of p (q None) or KL(p || q), in nats, into out (see xentcpp/functions.hpp).");
}

}  // namespace xentcpp::python
