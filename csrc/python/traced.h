/* Reports the bindings' own array buffers to tracemalloc, in NumPy's domain, as NumPy does for its own.
 * Written in C because Python 3.11's tracemalloc.h declares PyTraceMalloc_Track and _Untrack without
 * extern "C": C++ code calling them links against names the interpreter does not export. */
#ifndef XENTCPP_TRACED_H
#define XENTCPP_TRACED_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void xentcpp_trace_alloc(const void* data, size_t bytes);
void xentcpp_trace_free(const void* data);

#ifdef __cplusplus
}
#endif

#endif
