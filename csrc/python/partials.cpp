// Bindings of xentcpp/partials.hpp: shards of float32 or float64 logits, records as a NumPy structured
// dtype (RowPartial's fields, 64 bytes), checked as in module.cpp, the GIL released while the core runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>

#include "arrays.hpp"
#include "bindings.hpp"
#include "xentcpp/partials.hpp"

namespace xentcpp::python {
namespace {

// The records' dtype, registered by bind_partials (at import).
py::dtype record_dtype() { return py::dtype::of<RowPartial>(); }

// The records of `array`: the record dtype, C-contiguous, aligned, `rows` of them.
RowPartial* records_of(const py::array& array, py::ssize_t rows, const std::string& name) {
    require(array.dtype().equal(record_dtype()), name + " must have the partials' record dtype");
    require((array.flags() & py::array::c_style) != 0, name + " must be C-contiguous");
    require(aligned(array), name + " is not aligned");
    require(array.size() == rows, name + " has the wrong size");
    return static_cast<RowPartial*>(const_cast<void*>(array.data()));
}

// A shard's arguments as received: logits (rows, width), class indices (rows,) or probabilities (rows, width).
template <typename T>
ClassShard<T> shard_of(const py::array& input, const py::array& target, std::int64_t class_start,
                       std::int64_t classes, const std::optional<py::array>& row_mask) {
    require(input.ndim() == 2, "input must be 2-D (rows, width)");
    const py::dtype dtype = py::dtype::of<T>();
    ClassShard<T> shard;
    shard.logits = data_of<const T>(input, dtype, input.size(), "input");
    shard.rows = input.shape(0);
    shard.width = input.shape(1);
    shard.class_start = class_start;
    shard.classes = classes;
    if (target.ndim() == 1) {
        shard.labels = data_of<const std::int64_t>(target, py::dtype::of<std::int64_t>(), shard.rows, "labels");
    } else {
        require(target.ndim() == 2 && target.shape(0) == shard.rows && target.shape(1) == shard.width,
                "probability targets must have the input's shape");
        shard.probs = data_of<const T>(target, dtype, input.size(), "probability targets");
    }
    if (row_mask) shard.row_mask = data_of<const std::uint8_t>(*row_mask, py::dtype::of<bool>(), shard.rows, "where");
    return shard;
}

template <typename T>
PartialOptions<T> options_of(const std::optional<py::array>& weight, std::int64_t classes, std::int64_t ignore_index,
                             double label_smoothing, double z_loss, double softcap) {
    PartialOptions<T> options;
    if (weight) options.weight = data_of<const T>(*weight, py::dtype::of<T>(), classes, "weight");
    options.ignore_index = ignore_index;
    options.label_smoothing = label_smoothing;
    options.z_loss = z_loss;
    options.softcap = softcap;
    return options;
}

void row_partials_py(const py::array& input, const py::array& target, std::int64_t class_start, std::int64_t classes,
                     const std::optional<py::array>& weight, std::int64_t ignore_index, double label_smoothing,
                     double softcap, const std::optional<py::array>& row_mask, const py::array& out) {
    with_float_type(input, [&](auto tag) {
        using T = decltype(tag);
        const ClassShard<T> shard = shard_of<T>(input, target, class_start, classes, row_mask);
        const PartialOptions<T> options = options_of<T>(weight, classes, ignore_index, label_smoothing, 0.0, softcap);
        require(out.writeable(), "out is read-only");
        RowPartial* records = records_of(out, shard.rows, "out");
        py::gil_scoped_release release;
        row_partials<T>(shard, options, records);
    });
}

void merge_partials_py(const py::array& a, const py::array& b, const py::array& out) {
    const py::ssize_t rows = a.size();
    const RowPartial* left = records_of(a, rows, "a");
    const RowPartial* right = records_of(b, rows, "b");
    require(out.writeable(), "out is read-only");
    RowPartial* merged = records_of(out, rows, "out");
    py::gil_scoped_release release;
    merge_partials(left, right, rows, merged);
}

py::tuple sums_tuple(const PartialSums& s) {
    return py::make_tuple(s.loss, s.z_loss, s.nll, s.smooth, s.weight, s.rows);
}

py::tuple loss_from_partials_py(const py::array& partials, const std::optional<py::array>& labels, std::int64_t classes,
                                const std::optional<py::array>& weight, std::int64_t ignore_index,
                                double label_smoothing, double z_loss, const std::optional<py::array>& row_mask,
                                const std::optional<py::array>& row_losses,
                                const std::optional<py::array>& row_z_losses) {
    const py::ssize_t rows = partials.size();
    const RowPartial* records = records_of(partials, rows, "partials");
    const py::dtype float64 = py::dtype::of<double>();
    const std::int64_t* y =
        labels ? data_of<const std::int64_t>(*labels, py::dtype::of<std::int64_t>(), rows, "labels") : nullptr;
    const std::uint8_t* mask =
        row_mask ? data_of<const std::uint8_t>(*row_mask, py::dtype::of<bool>(), rows, "where") : nullptr;
    const PartialOptions<double> options =
        options_of<double>(weight, classes, ignore_index, label_smoothing, z_loss, 0.0);
    double* losses = writable_data_of<double>(row_losses, float64, rows, "row_losses");
    double* z_losses = writable_data_of<double>(row_z_losses, float64, rows, "row_z_losses");
    PartialSums sums;
    {
        py::gil_scoped_release release;
        sums = loss_from_partials(records, rows, classes, y, mask, options, losses, z_losses);
    }
    return sums_tuple(sums);
}

py::tuple count_targets_py(const py::array& labels, std::int64_t classes, const std::optional<py::array>& weight,
                           std::int64_t ignore_index, const std::optional<py::array>& row_mask) {
    const py::ssize_t rows = labels.size();
    const auto* y = data_of<const std::int64_t>(labels, py::dtype::of<std::int64_t>(), rows, "labels");
    const std::uint8_t* mask =
        row_mask ? data_of<const std::uint8_t>(*row_mask, py::dtype::of<bool>(), rows, "where") : nullptr;
    const double* w = weight ? data_of<const double>(*weight, py::dtype::of<double>(), classes, "weight") : nullptr;
    PartialSums sums;
    {
        py::gil_scoped_release release;
        sums = count_targets(y, rows, classes, ignore_index, w, mask);
    }
    return py::make_tuple(sums.weight, sums.rows);
}

void grad_from_partials_py(const py::array& input, const py::array& target, const py::array& partials,
                           std::int64_t class_start, std::int64_t classes, const std::optional<py::array>& weight,
                           std::int64_t ignore_index, double label_smoothing, double z_loss, double softcap,
                           const std::optional<py::array>& row_mask, double scale, double z_scale,
                           const std::optional<py::array>& scale_rows, bool zero_weight_mean, const py::array& grad) {
    with_float_type(input, [&](auto tag) {
        using T = decltype(tag);
        const ClassShard<T> shard = shard_of<T>(input, target, class_start, classes, row_mask);
        const PartialOptions<T> options = options_of<T>(weight, classes, ignore_index, label_smoothing, z_loss, softcap);
        const RowPartial* records = records_of(partials, shard.rows, "partials");
        PartialScales scales;
        scales.scale = scale;
        scales.z_scale = z_scale;
        if (scale_rows) scales.scale_rows = data_of<const double>(*scale_rows, py::dtype::of<double>(), shard.rows, "grad_output");
        scales.zero_weight_mean = zero_weight_mean;
        require(grad.writeable(), "grad is read-only");
        T* out = data_of<T>(grad, py::dtype::of<T>(), input.size(), "grad");
        py::gil_scoped_release release;
        grad_from_partials<T>(shard, records, options, scales, out);
    });
}

}  // namespace

void bind_partials(py::module_& m) {
    PYBIND11_NUMPY_DTYPE(RowPartial, max, at_max, below_max, dot, mass, target_logit, classes, targets);
    m.attr("partial_dtype") = record_dtype();
    m.def("row_partials", &row_partials_py, py::arg("input").noconvert(), py::arg("target").noconvert(), py::kw_only(),
          py::arg("class_start"), py::arg("classes"), py::arg("weight").noconvert() = py::none(),
          py::arg("ignore_index") = -100, py::arg("label_smoothing") = 0.0, py::arg("softcap") = 0.0,
          py::arg("row_mask").noconvert() = py::none(), py::arg("out").noconvert(),
          "One record per row of a (rows, width) shard of classes [class_start, class_start + width) into out.");
    m.def("merge_partials", &merge_partials_py, py::arg("a").noconvert(), py::arg("b").noconvert(),
          py::arg("out").noconvert(), "out = the merge of the records a and b, row by row (out may be a or b).");
    m.def("loss_from_partials", &loss_from_partials_py, py::arg("partials").noconvert(),
          py::arg("labels").noconvert() = py::none(), py::kw_only(), py::arg("classes"),
          py::arg("weight").noconvert() = py::none(), py::arg("ignore_index") = -100,
          py::arg("label_smoothing") = 0.0, py::arg("z_loss") = 0.0, py::arg("row_mask").noconvert() = py::none(),
          py::arg("row_losses").noconvert() = py::none(), py::arg("row_z_losses").noconvert() = py::none(),
          "The sums (loss, z_loss, nll, smooth, weight, rows) of merged records; per-row losses when asked.");
    m.def("count_targets", &count_targets_py, py::arg("labels").noconvert(), py::kw_only(), py::arg("classes"),
          py::arg("weight").noconvert() = py::none(), py::arg("ignore_index") = -100,
          py::arg("row_mask").noconvert() = py::none(),
          "The mean's denominators (summed w[y], counted rows) of class-index targets; IndexError for a bad label.");
    m.def("grad_from_partials", &grad_from_partials_py, py::arg("input").noconvert(), py::arg("target").noconvert(),
          py::arg("partials").noconvert(), py::kw_only(), py::arg("class_start"), py::arg("classes"),
          py::arg("weight").noconvert() = py::none(), py::arg("ignore_index") = -100,
          py::arg("label_smoothing") = 0.0, py::arg("z_loss") = 0.0, py::arg("softcap") = 0.0,
          py::arg("row_mask").noconvert() = py::none(), py::arg("scale") = 1.0, py::arg("z_scale") = 1.0,
          py::arg("scale_rows").noconvert() = py::none(), py::arg("zero_weight_mean") = false,
          py::arg("grad").noconvert(), "The gradient of a shard from the rows' merged records, into grad.");
}

}  // namespace xentcpp::python
