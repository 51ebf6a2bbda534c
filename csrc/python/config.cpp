// xentcpp._core's build and runtime facts (compiler, SIMD targets, OpenMP) and the thread count, for
// xentcpp.show_config() and xentcpp.set_num_threads(). The Python layer (python/xentcpp/_config.py)
// validates arguments and words the documentation; here are only the facts the compiler and the
// OpenMP runtime know.
#include "bindings.hpp"

#include <pybind11/stl.h>

#include <string>

#include "xentcpp/xentcpp.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(_OPENMP) && (defined(__linux__) || defined(__APPLE__))
#include <dlfcn.h>
#define XENTCPP_HAVE_DLADDR 1
#endif

namespace py = pybind11;

namespace {

std::string compiler() {
#if defined(__clang__)
    return std::string("Clang ") + __clang_version__;
#elif defined(__GNUC__)
    return std::string("GCC ") + __VERSION__;
#elif defined(_MSC_VER)
    return "MSVC " + std::to_string(_MSC_VER);
#else
    return "unknown";
#endif
}

// The file of the OpenMP runtime this module calls (the one threadpoolctl must find), or None.
py::object openmp_library() {
#ifdef XENTCPP_HAVE_DLADDR
    Dl_info info{};
    // Note: the address of an OpenMP entry point lies in the runtime that was loaded for us.
    if (dladdr(reinterpret_cast<void*>(&omp_get_max_threads), &info) != 0 && info.dli_fname != nullptr) {
        return py::str(info.dli_fname);
    }
#endif
    return py::none();
}

py::dict openmp() {
    py::dict d;
#ifdef _OPENMP
    d["enabled"] = true;
    d["version"] = _OPENMP;  // yyyymm of the specification, e.g. 201511 for 4.5
    d["library"] = openmp_library();
    d["max_threads"] = omp_get_max_threads();
    d["processors"] = omp_get_num_procs();
#else
    d["enabled"] = false;
    d["version"] = py::none();
    d["library"] = py::none();
    d["max_threads"] = 1;
    d["processors"] = 1;
#endif
    return d;
}

int get_num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

// Note: OpenMP keeps the thread count per calling thread (the nthreads-var ICV), so this sets it for
// parallel regions started from the calling thread only, as threadpoolctl's limits do.
void set_num_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;  // serial build: every call runs on one thread anyway
#endif
}

}  // namespace

void xentcpp::python::bind_config(py::module_& m) {
    m.def("compiler", &compiler, "The compiler that built the extension, with its version.");
    m.def("openmp", &openmp,
          "OpenMP facts: enabled, version (yyyymm), library (the runtime's file), max_threads (for calls "
          "from this thread), processors.");
    m.def("get_num_threads", &get_num_threads, "omp_get_max_threads() of the calling thread (1 without OpenMP).");
    m.def("set_num_threads", &set_num_threads, py::arg("n"),
          "omp_set_num_threads(n) for the calling thread (nothing without OpenMP); n >= 1, checked by the caller.");
    m.def("simd_target_compiled", [](const std::string& name) { return xentcpp::simd_target_compiled(name.c_str()); },
          "Whether this build includes the named SIMD target.");
}
