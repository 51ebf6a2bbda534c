// Bindings of xentcpp/linear.hpp (_core.linear_cross_entropy) and of the BLAS's facts (_core.blas).
// As module.cpp: arrays taken as they are (a wrong dtype or layout is refused, never copied), sizes
// checked again, the GIL released while the chunks run.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "arrays.hpp"
#include "bindings.hpp"
#include "../blas.hpp"
#include "xentcpp/linear.hpp"

#if defined(__linux__) || defined(__APPLE__)
#include <dlfcn.h>
#define XENTCPP_HAVE_DLADDR 1
#endif

namespace xentcpp::python {
namespace {

// The arguments of _core.linear_cross_entropy, as received.
struct LinearCall {
    py::array input, weight, labels;
    std::optional<py::array> bias, class_weight;
    std::int64_t ignore_index;
    double label_smoothing;
    std::string reduction;
    double z_loss, softcap;
    std::int64_t chunk_rows, workspace_bytes;
    double filter_eps;
    std::optional<py::array> row_losses, row_z_losses, d_input, d_weight, d_bias;
    double grad_output;
    std::optional<py::array> grad_output_rows;
};

template <typename T>
py::tuple linear_typed(const LinearCall& call) {
    const py::dtype dtype = py::dtype::of<T>();
    require(call.input.ndim() == 2 && call.weight.ndim() == 2, "input and weight must be 2-D");
    LinearProblem<T> p;
    p.rows = call.input.shape(0);
    p.hidden = call.input.shape(1);
    p.classes = call.weight.shape(0);
    require(call.weight.shape(1) == p.hidden, "weight must have input's number of columns");
    p.input = data_of<const T>(call.input, dtype, p.rows * p.hidden, "input");
    p.weight = data_of<const T>(call.weight, dtype, p.classes * p.hidden, "weight");
    if (call.bias) p.bias = data_of<const T>(*call.bias, dtype, p.classes, "bias");
    p.labels = data_of<const std::int64_t>(call.labels, py::dtype::of<std::int64_t>(), p.rows, "labels");

    Options<T> options;
    if (call.class_weight) options.weight = data_of<const T>(*call.class_weight, dtype, p.classes, "class_weight");
    options.ignore_index = call.ignore_index;
    options.label_smoothing = call.label_smoothing;
    options.reduction = parse_reduction(call.reduction);
    options.z_loss = call.z_loss;
    options.softcap = call.softcap;

    LinearSettings settings;
    settings.chunk_rows = call.chunk_rows;
    settings.workspace_bytes = call.workspace_bytes;
    settings.filter_eps = call.filter_eps;

    T* losses = writable_data_of<T>(call.row_losses, dtype, p.rows, "row_losses");
    T* z_losses = writable_data_of<T>(call.row_z_losses, dtype, p.rows, "row_z_losses");
    LinearGrads<T> grads;
    grads.input = writable_data_of<T>(call.d_input, dtype, p.rows * p.hidden, "d_input");
    grads.weight = writable_data_of<T>(call.d_weight, dtype, p.classes * p.hidden, "d_weight");
    grads.bias = writable_data_of<T>(call.d_bias, dtype, p.classes, "d_bias");
    require(grads.bias == nullptr || p.bias != nullptr, "d_bias needs a bias");
    grads.grad_output = call.grad_output;
    if (call.grad_output_rows) {
        grads.grad_output_rows = data_of<const T>(*call.grad_output_rows, dtype, p.rows, "grad_output_rows");
    }
    const bool backward = grads.input || grads.weight || grads.bias;

    Totals totals;
    {
        py::gil_scoped_release release;
        totals = linear_cross_entropy<T>(p, options, settings, losses, backward ? &grads : nullptr, z_losses);
    }
    return py::make_tuple(totals.loss, totals.z_loss);
}

py::tuple linear(LinearCall call) {
    const Storage storage = storage_of(call.input);
    require(storage == Storage::float32 || storage == Storage::float64, "input must be float32 or float64");
    return storage == Storage::float32 ? linear_typed<float>(call) : linear_typed<double>(call);
}

// The file of the BLAS library this module calls, or None.
py::object blas_library() {
#ifdef XENTCPP_HAVE_DLADDR
    Dl_info info{};
    if (dladdr(blas::entry_point(), &info) != 0 && info.dli_fname != nullptr) return py::str(info.dli_fname);
#endif
    return py::none();
}

py::dict blas_facts() {
    py::dict d;
    d["name"] = "scipy-openblas32";
    d["config"] = blas::config();
    d["core"] = blas::core_name();
    d["library"] = blas_library();
    d["threads"] = blas::threads();
    return d;
}

}  // namespace

void bind_linear(py::module_& m) {
    m.def(
        "linear_cross_entropy",
        [](py::array input, py::array weight, py::array labels, std::optional<py::array> bias,
           std::optional<py::array> class_weight, std::int64_t ignore_index, double label_smoothing,
           std::string reduction, double z_loss, double softcap, std::int64_t chunk_rows,
           std::int64_t workspace_bytes, double filter_eps, std::optional<py::array> row_losses,
           std::optional<py::array> row_z_losses, std::optional<py::array> d_input,
           std::optional<py::array> d_weight, std::optional<py::array> d_bias, double grad_output,
           std::optional<py::array> grad_output_rows) {
            return linear(LinearCall{std::move(input), std::move(weight), std::move(labels), std::move(bias),
                                     std::move(class_weight), ignore_index, label_smoothing, std::move(reduction),
                                     z_loss, softcap, chunk_rows, workspace_bytes, filter_eps, std::move(row_losses),
                                     std::move(row_z_losses), std::move(d_input), std::move(d_weight),
                                     std::move(d_bias), grad_output, std::move(grad_output_rows)});
        },
        py::arg("input").noconvert(), py::arg("weight").noconvert(), py::arg("labels").noconvert(), py::kw_only(),
        py::arg("bias").noconvert() = py::none(), py::arg("class_weight").noconvert() = py::none(),
        py::arg("ignore_index") = -100, py::arg("label_smoothing") = 0.0, py::arg("reduction") = "mean",
        py::arg("z_loss") = 0.0, py::arg("softcap") = 0.0, py::arg("chunk_rows") = 0,
        py::arg("workspace_bytes") = LinearSettings{}.workspace_bytes, py::arg("filter_eps") = 0.0,
        py::arg("row_losses").noconvert() = py::none(), py::arg("row_z_losses").noconvert() = py::none(),
        py::arg("d_input").noconvert() = py::none(), py::arg("d_weight").noconvert() = py::none(),
        py::arg("d_bias").noconvert() = py::none(), py::arg("grad_output") = 1.0,
        py::arg("grad_output_rows").noconvert() = py::none());
    m.def("linear_chunk_rows", [](std::int64_t rows, std::int64_t classes, std::int64_t element_bytes,
                                  std::int64_t chunk_rows, std::int64_t workspace_bytes) {
        LinearSettings s;
        s.chunk_rows = chunk_rows;
        s.workspace_bytes = workspace_bytes;
        return linear_chunk_rows(rows, classes, element_bytes, s);
    }, py::arg("rows"), py::arg("classes"), py::arg("element_bytes"), py::arg("chunk_rows") = 0,
       py::arg("workspace_bytes") = LinearSettings{}.workspace_bytes);
    m.def("blas", &blas_facts, "The BLAS of linear_cross_entropy: name, config, core, library (its file), threads.");
}

}  // namespace xentcpp::python
