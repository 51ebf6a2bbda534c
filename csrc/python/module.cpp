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

// Whether the array's data is aligned for its dtype: the kernels read elements as T, never unaligned.
bool aligned(const py::array& a) {
    return (a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0;
}

template <typename T>
T* writable_rows(std::optional<Array<T>>& array, py::ssize_t size, const char* name) {
    if (!array) return nullptr;
    require(array->size() == size, std::string(name) + " has the wrong size");
    require(aligned(*array), std::string(name) + " is not aligned");
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
    require(aligned(input) && aligned(target), "input and target must be aligned");
    xentcpp::Problem<T> problem;
    problem.input = input.data();
    problem.rows = input.shape(0);
    problem.classes = input.shape(1);
    set_target(problem, target);

    xentcpp::Options<T> options;
    if (weight) {
        require(weight->size() == problem.classes, "weight must have one entry per class");
        require(aligned(*weight), "weight is not aligned");
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
        require(aligned(*grad_output_rows), "grad_output is not aligned");
        request.grad_output_rows = grad_output_rows->data();
    }

    py::gil_scoped_release release;
    return xentcpp::compute<T>(problem, options, losses, request.grad ? &request : nullptr);
}

// What the fast path computes.
enum class Want : int { loss = 0, grad = 1, value_and_grad = 2 };

// Whether two arrays' bytes overlap.
bool overlap(const py::array& a, const py::array& b) {
    const auto* a0 = static_cast<const char*>(a.data());
    const auto* b0 = static_cast<const char*>(b.data());
    return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

template <typename T>
py::object fast_typed(const Array<T>& input, const Labels& labels, Want want, xentcpp::Reduction reduction,
                      std::int64_t ignore_index, double label_smoothing, double grad_output, py::handle out) {
    const py::ssize_t rows = input.shape(0), classes = input.shape(1);
    if (labels.ndim() != 1 || labels.shape(0) != rows || classes == 0) return py::none();
    if (!aligned(input) || !aligned(labels)) return py::none();  // the general path copies them
    // out= must be the input itself, or a writeable C-contiguous array of its shape and dtype that
    // overlaps neither the input nor the labels; anything else goes the general way.
    std::optional<Array<T>> out_array;
    if (!out.is_none()) {
        if (!Array<T>::check_(out)) return py::none();
        auto a = py::reinterpret_borrow<Array<T>>(out);
        const bool same = a.data() == input.data() && a.ndim() == 2;
        if (!a.writeable() || !aligned(a) || a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != classes || overlap(a, labels) ||
            (!same && overlap(a, input))) {
            return py::none();
        }
        out_array = std::move(a);
    }
    xentcpp::Problem<T> problem;
    problem.input = input.data();
    problem.rows = rows;
    problem.classes = classes;
    problem.labels = labels.data();
    xentcpp::Options<T> options;
    options.ignore_index = ignore_index;
    options.label_smoothing = label_smoothing;
    options.reduction = reduction;

    py::object losses = py::none(), grad = py::none();
    T* losses_data = nullptr;
    xentcpp::GradRequest<T> request;
    if (want != Want::grad && reduction == xentcpp::Reduction::none) {
        Array<T> a(rows);
        losses_data = a.mutable_data();
        losses = std::move(a);
    }
    if (want != Want::loss) {
        Array<T> a = out_array ? *out_array : Array<T>({rows, classes});
        request.grad = a.mutable_data();
        request.grad_output = grad_output;
        grad = std::move(a);
    }
    double total;
    {
        py::gil_scoped_release release;
        total = xentcpp::compute<T>(problem, options, losses_data, request.grad ? &request : nullptr);
    }
    if (want == Want::grad) return grad;
    py::object loss = losses_data ? losses : py::float_(total);
    if (want == Want::loss) return loss;
    return py::make_tuple(loss, grad);
}

// The common call, checked here in a few hundred nanoseconds rather than in Python: input a
// C-contiguous 2-D float32/float64 array, target a C-contiguous int64 array with one label per row,
// options that need no conversion, out= absent or usable as it is. Anything else returns None, and
// the Python layer takes its general path (which also words the errors).
py::object fast(py::handle input, py::handle target, int want, py::handle reduction, py::handle ignore_index,
                py::handle label_smoothing, double grad_output, py::handle out) {
    // A bool ignore_index is an int to Python; the general path refuses it.
    if (!Labels::check_(target) || !py::isinstance<py::str>(reduction) || !py::isinstance<py::int_>(ignore_index) ||
        PyBool_Check(ignore_index.ptr()) ||
        !py::isinstance<py::float_>(label_smoothing)) {
        return py::none();
    }
    const std::string name = reduction.cast<std::string>();
    xentcpp::Reduction r;
    if (name == "mean") r = xentcpp::Reduction::mean;
    else if (name == "sum") r = xentcpp::Reduction::sum;
    else if (name == "none") r = xentcpp::Reduction::none;
    else return py::none();
    const double smoothing = label_smoothing.cast<double>();
    if (!(smoothing >= 0.0 && smoothing <= 1.0)) return py::none();
    int overflow = 0;
    const long long ignore = PyLong_AsLongLongAndOverflow(ignore_index.ptr(), &overflow);
    if (overflow != 0) return py::none();
    const auto labels = py::reinterpret_borrow<Labels>(target);
    const Want w = static_cast<Want>(want);
    if (Array<float>::check_(input)) {
        const auto x = py::reinterpret_borrow<Array<float>>(input);
        if (x.ndim() == 2) return fast_typed<float>(x, labels, w, r, ignore, smoothing, grad_output, out);
    } else if (Array<double>::check_(input)) {
        const auto x = py::reinterpret_borrow<Array<double>>(input);
        if (x.ndim() == 2) return fast_typed<double>(x, labels, w, r, ignore, smoothing, grad_output, out);
    }
    return py::none();
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
    m.def("fast", &fast, py::arg("input"), py::arg("target"), py::arg("want"), py::arg("reduction"),
          py::arg("ignore_index"), py::arg("label_smoothing"), py::arg("grad_output"), py::arg("out") = py::none());
    m.def("simd_target", &xentcpp::simd_target,
          "The SIMD target the kernels run on: 'avx512', 'avx2' or 'baseline' (XENTCPP_SIMD can force a lower one).");
    m.def("simd_target_supported", [](const std::string& name) { return xentcpp::simd_target_supported(name.c_str()); },
          "Whether this build and CPU can run the named SIMD target.");
    m.attr("__version__") = XENTCPP_VERSION;
}
