// xentcpp._core: the pybind11 face of the C++ core. Thin on purpose: the Python layer has already
// checked and converted everything; here arrays are taken as they are (noconvert: a wrong dtype or
// layout is refused, never silently copied), the sizes are checked again so no caller can make the
// core read or write out of bounds, and the GIL is released while the kernel runs.
//
// C++ exceptions become Python ones: std::invalid_argument -> ValueError, std::out_of_range -> IndexError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "xentcpp/xentcpp.hpp"

namespace py = pybind11;

namespace {

template <typename T>
using Array = py::array_t<T, py::array::c_style>;
using Labels = py::array_t<std::int64_t, py::array::c_style>;

void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("xentcpp._core: " + what);
}

xentcpp::Reduction parse_reduction(const std::string& name) {
    if (name == "none") return xentcpp::Reduction::none;
    if (name == "sum") return xentcpp::Reduction::sum;
    if (name == "mean") return xentcpp::Reduction::mean;
    throw std::invalid_argument("xentcpp._core: reduction must be 'none', 'sum' or 'mean', got '" + name + "'");
}

template <typename T>
void set_target(xentcpp::Problem<T>& problem, const Labels& labels) {
    require(labels.size() == problem.rows, "labels must have one entry per row");
    problem.labels = labels.data();
}

template <typename T>
void set_target(xentcpp::Problem<T>& problem, const Array<T>& probs) {
    require(probs.ndim() == 2 && probs.shape(0) == problem.rows && probs.shape(1) == problem.classes,
            "probability targets must have the input's shape");
    problem.probs = probs.data();
}

template <typename T>
T* writable_rows(std::optional<Array<T>>& array, py::ssize_t size, const char* name) {
    if (!array) return nullptr;
    require(array->size() == size, std::string(name) + " has the wrong size");
    return array->mutable_data();  // raises if the array is read-only
}

// Loss (returned), per-row losses (into row_losses) and gradient (into grad), as asked.
template <typename T, typename Target>
double cross_entropy(const Array<T>& input, const Target& target, const std::optional<Array<T>>& weight,
                     std::int64_t ignore_index, double label_smoothing, const std::string& reduction,
                     bool from_logits, double epsilon, std::optional<Array<T>> row_losses,
                     std::optional<Array<T>> grad, double grad_output,
                     const std::optional<Array<T>>& grad_output_rows) {
    require(input.ndim() == 2, "input must be 2-D (rows, classes)");
    xentcpp::Problem<T> problem;
    problem.input = input.data();
    problem.rows = input.shape(0);
    problem.classes = input.shape(1);
    set_target(problem, target);

    xentcpp::Options<T> options;
    if (weight) {
        require(weight->size() == problem.classes, "weight must have one entry per class");
        options.weight = weight->data();
    }
    options.ignore_index = ignore_index;
    options.label_smoothing = label_smoothing;
    options.reduction = parse_reduction(reduction);
    options.from_logits = from_logits;
    options.epsilon = epsilon;

    T* losses = writable_rows(row_losses, problem.rows, "row_losses");
    xentcpp::GradRequest<T> request;
    request.grad = writable_rows(grad, input.size(), "grad");
    request.grad_output = grad_output;
    if (grad_output_rows) {
        require(grad_output_rows->size() == problem.rows, "grad_output must have one entry per row");
        request.grad_output_rows = grad_output_rows->data();
    }

    py::gil_scoped_release release;
    return xentcpp::compute<T>(problem, options, losses, request.grad ? &request : nullptr);
}

template <typename T, typename Target>
void bind(py::module_& m) {
    m.def("cross_entropy", &cross_entropy<T, Target>, py::arg("input").noconvert(), py::arg("target").noconvert(),
          py::kw_only(), py::arg("weight").noconvert() = py::none(), py::arg("ignore_index") = -100,
          py::arg("label_smoothing") = 0.0, py::arg("reduction") = "mean", py::arg("from_logits") = true,
          py::arg("epsilon") = 1e-7, py::arg("row_losses").noconvert() = py::none(),
          py::arg("grad").noconvert() = py::none(), py::arg("grad_output") = 1.0,
          py::arg("grad_output_rows").noconvert() = py::none());
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "xentcpp's C++ kernels. Private: call the functions of the xentcpp package instead.";
    bind<float, Labels>(m);
    bind<float, Array<float>>(m);
    bind<double, Labels>(m);
    bind<double, Array<double>>(m);
    m.attr("__version__") = XENTCPP_VERSION;
}
