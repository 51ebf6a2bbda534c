#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "traced.h"

enum { kNumpyTraceDomain = 389047 }; /* numpy.lib.tracemalloc_domain */

void xentcpp_trace_alloc(const void* data, size_t bytes) {
    PyTraceMalloc_Track(kNumpyTraceDomain, (uintptr_t)data, bytes);
}

void xentcpp_trace_free(const void* data) { PyTraceMalloc_Untrack(kNumpyTraceDomain, (uintptr_t)data); }
