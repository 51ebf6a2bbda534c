// Binds xentcpp._core's introspection and thread-count functions (config.cpp).
#pragma once

#include <pybind11/pybind11.h>

void xentcpp_bind_config(pybind11::module_& m);
