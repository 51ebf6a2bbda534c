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

#include "arrays.hpp"
#include "buffers.hpp"
#include "config.hpp"
#include "xentcpp/memory_probe.hpp"
#include "xentcpp/xentcpp.hpp"

namespace py = pybind11;
using namespace xentcpp::python;

namespace {

template <typename T>
using Array = py::array_t<T, py::array::c_style>;
using Labels = py::array_t<std::int64_t, py::array::c_style>;

// The arguments of _core.cross_entropy, as received.
struct Call {
    py::array input, target;
    std::optional<py::array> weight;
    std::int64_t ignore_index;
    double label_smoothing;
    std::string reduction;
    bool from_logits;
    double epsilon, z_loss, softcap;
    std::optional<py::array> row_losses, row_z_losses, grad;
    double grad_output;
    std::optional<py::array> grad_output_rows;
};

// Loss and z-loss totals (returned), per-row losses and z-losses, and the gradient (into grad), as asked.
template <typename S>
py::tuple cross_entropy_typed(const Call& call) {
    using T = xentcpp::compute_t<S>;
    const py::array& input = call.input;
    const py::array& target = call.target;
    const py::dtype storage = input.dtype();
    const py::dtype compute = py::dtype::of<T>();
    xentcpp::Problem<S> problem;
    problem.input = data_of<const S>(input, storage, input.size(), "input");
    problem.rows = input.shape(0);
    problem.classes = input.shape(1);
    if (target.ndim() == 1) {
        problem.labels = data_of<const std::int64_t>(target, py::dtype::of<std::int64_t>(), problem.rows, "labels");
    } else {
        require(target.ndim() == 2 && target.shape(0) == problem.rows && target.shape(1) == problem.classes,
                "probability targets must have the input's shape");
        problem.probs = data_of<const S>(target, storage, input.size(), "probability targets");
    }

    xentcpp::Options<T> options;
    if (call.weight) options.weight = data_of<const T>(*call.weight, compute, problem.classes, "weight");
    options.ignore_index = call.ignore_index;
    options.label_smoothing = call.label_smoothing;
    options.reduction = parse_reduction(call.reduction);
    options.from_logits = call.from_logits;
    options.epsilon = call.epsilon;
    options.z_loss = call.z_loss;
    options.softcap = call.softcap;

    T* losses = writable_data_of<T>(call.row_losses, compute, problem.rows, "row_losses");
    T* z_losses = writable_data_of<T>(call.row_z_losses, compute, problem.rows, "row_z_losses");
    xentcpp::GradRequest<S> request;
    request.grad = writable_data_of<S>(call.grad, storage, input.size(), "grad");
    request.grad_output = call.grad_output;
    if (call.grad_output_rows) {
        request.grad_output_rows = data_of<const T>(*call.grad_output_rows, compute, problem.rows, "grad_output");
    }

    xentcpp::Totals totals;
    {
        py::gil_scoped_release release;
        totals = xentcpp::compute<S>(problem, options, losses, request.grad ? &request : nullptr, z_losses);
    }
    return py::make_tuple(totals.loss, totals.z_loss);
}

py::tuple cross_entropy(py::array input, py::array target, std::optional<py::array> weight, std::int64_t ignore_index,
                        double label_smoothing, std::string reduction, bool from_logits, double epsilon, double z_loss,
                        double softcap, std::optional<py::array> row_losses, std::optional<py::array> row_z_losses,
                        std::optional<py::array> grad, double grad_output,
                        std::optional<py::array> grad_output_rows) {
    require(input.ndim() == 2, "input must be 2-D (rows, classes)");
    const Call call{std::move(input),      std::move(target),     std::move(weight),     ignore_index,
                    label_smoothing,        std::move(reduction),  from_logits,           epsilon,
                    z_loss,                 softcap,               std::move(row_losses), std::move(row_z_losses),
                    std::move(grad),        grad_output,           std::move(grad_output_rows)};
    switch (storage_of(call.input)) {
        case Storage::float32: return cross_entropy_typed<float>(call);
        case Storage::float64: return cross_entropy_typed<double>(call);
        case Storage::float16: return cross_entropy_typed<xentcpp::float16>(call);
        case Storage::bfloat16: return cross_entropy_typed<xentcpp::bfloat16>(call);
    }
    throw std::logic_error("unreachable");
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
        py::array a = out_array ? py::array(*out_array) : new_array(py::dtype::of<T>(), {rows, classes});
        request.grad = static_cast<T*>(a.mutable_data());
        request.grad_output = grad_output;
        grad = std::move(a);
    }
    double total;
    {
        py::gil_scoped_release release;
        total = xentcpp::compute<T>(problem, options, losses_data, request.grad ? &request : nullptr).loss;
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

// The memory probes take any C-contiguous array as bytes (the benchmark's roofline, measured beside the kernels).
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

PYBIND11_MODULE(_core, m) {
    m.doc() = "xentcpp's C++ kernels. Private: call the functions of the xentcpp package instead.";
    m.def("cross_entropy", &cross_entropy, py::arg("input").noconvert(), py::arg("target").noconvert(), py::kw_only(),
          py::arg("weight").noconvert() = py::none(), py::arg("ignore_index") = -100, py::arg("label_smoothing") = 0.0,
          py::arg("reduction") = "mean", py::arg("from_logits") = true, py::arg("epsilon") = 1e-7,
          py::arg("z_loss") = 0.0, py::arg("softcap") = 0.0, py::arg("row_losses").noconvert() = py::none(),
          py::arg("row_z_losses").noconvert() = py::none(), py::arg("grad").noconvert() = py::none(),
          py::arg("grad_output") = 1.0, py::arg("grad_output_rows").noconvert() = py::none());
    m.def("fast", &fast, py::arg("input"), py::arg("target"), py::arg("want"), py::arg("reduction"),
          py::arg("ignore_index"), py::arg("label_smoothing"), py::arg("grad_output"), py::arg("out") = py::none());
    m.def("simd_target", &xentcpp::simd_target,
          "The SIMD target the kernels run on: 'avx512', 'avx2' or 'baseline' (XENTCPP_SIMD can force a lower one).");
    m.def("simd_target_supported", [](const std::string& name) { return xentcpp::simd_target_supported(name.c_str()); },
          "Whether this build and CPU can run the named SIMD target.");
    m.def("read_probe", &read_probe, py::arg("data"),
          "The bitwise OR of every byte of a C-contiguous array, read by the kernels' threads with no arithmetic.");
    m.def("copy_probe", &copy_probe, py::arg("dst"), py::arg("src"),
          "Copies the bytes of src into dst (C-contiguous, same size, not overlapping) with the kernels' threads.");
    bind_functions(m);
    bind_linear(m);
    bind_buffers(m);
    m.attr("__version__") = XENTCPP_VERSION;
    xentcpp_bind_config(m);  // compiler, SIMD targets, OpenMP and the thread count (config.cpp)
}
