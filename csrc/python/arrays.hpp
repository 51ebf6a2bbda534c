// Checks shared by the bindings: the arrays' dtypes, layouts and sizes, so that no caller can make
// the core read or write out of bounds, whatever the Python layer did before.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <stdexcept>
#include <string>

#include "xentcpp/xentcpp.hpp"

namespace xentcpp::python {

namespace py = pybind11;

inline void require(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("xentcpp._core: " + what);
}

inline xentcpp::Reduction parse_reduction(const std::string& name) {
    if (name == "none") return xentcpp::Reduction::none;
    if (name == "sum") return xentcpp::Reduction::sum;
    if (name == "mean") return xentcpp::Reduction::mean;
    throw std::invalid_argument("xentcpp._core: reduction must be 'none', 'sum' or 'mean', got '" + name + "'");
}

// The storage types of inputs, told apart by dtype (bfloat16 is ml_dtypes' extension type).
enum class Storage { float32, float64, float16, bfloat16 };

inline bool native_order(const py::dtype& dtype) {
    const char order = dtype.byteorder();
    constexpr char kNative = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? '<' : '>';
    return order == '=' || order == '|' || order == kNative;
}

inline Storage storage_of(const py::array& input) {
    const py::dtype dtype = input.dtype();
    require(native_order(dtype), "input must be in native byte order");
    if (dtype.kind() == 'f' && dtype.itemsize() == 4) return Storage::float32;
    if (dtype.kind() == 'f' && dtype.itemsize() == 8) return Storage::float64;
    if (dtype.kind() == 'f' && dtype.itemsize() == 2) return Storage::float16;
    if (dtype.itemsize() == 2 && py::str(dtype.attr("name")).cast<std::string>() == "bfloat16") return Storage::bfloat16;
    throw std::invalid_argument("xentcpp._core: input must be float16, bfloat16, float32 or float64");
}

// Whether the array's data is aligned for its dtype: the kernels read elements as their type, never unaligned.
inline bool aligned(const py::array& array) {
    return (array.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0;
}

// The data of `array`: of `dtype` (same type number, native order), C-contiguous, aligned, `size` elements.
template <typename A>
A* data_of(const py::array& array, const py::dtype& dtype, py::ssize_t size, const std::string& name) {
    require(array.dtype().normalized_num() == dtype.normalized_num() && native_order(array.dtype()),
            name + " must have dtype " + py::str(dtype).cast<std::string>());
    require((array.flags() & py::array::c_style) != 0, name + " must be C-contiguous");
    require(aligned(array), name + " is not aligned");
    require(array.size() == size, name + " has the wrong size");
    return static_cast<A*>(const_cast<void*>(array.data()));
}

template <typename A>
A* writable_data_of(const std::optional<py::array>& array, const py::dtype& dtype, py::ssize_t size,
                    const std::string& name) {
    if (!array) return nullptr;
    require(array->writeable(), name + " is read-only");
    return data_of<A>(*array, dtype, size, name);
}

// Binds the functions of xentcpp/functions.hpp (functions.cpp in this folder).
void bind_functions(py::module_& m);

// Binds xentcpp/linear.hpp and the BLAS's facts (linear.cpp in this folder).
void bind_linear(py::module_& m);

}  // namespace xentcpp::python
