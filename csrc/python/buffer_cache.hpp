// Result arrays of the bindings. Large ones come from a cache that keeps the most recently freed
// buffer for the next request of its size (buffer_cache.cpp says why); small ones are NumPy's own.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <vector>

namespace xentcpp::python {

namespace py = pybind11;

// A new, uninitialised, C-contiguous array of `shape` and `dtype`.
py::array new_array(const py::dtype& dtype, const std::vector<py::ssize_t>& shape);

// Binds _core.empty, empty_cache, set_cache_limit, cache_limit and cached_bytes.
void bind_buffer_cache(py::module_& m);

}  // namespace xentcpp::python
