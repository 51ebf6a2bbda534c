// Large result arrays, with the most recently freed one kept for reuse.
//
// Note: a new array of tens of MiB costs more than the kernel that fills it. The operating system
// zeroes every page on first touch (5 ms for the 131 MB gradient of 32 768 x 1 000 here, as long as
// the fused kernel itself), and after other libraries have freed memory a first touch can stall for
// tens of milliseconds while huge pages are assembled. A training loop asks for a gradient of the same
// size every step and drops the previous one, so when a large array dies its buffer is kept, idle
// (one buffer at most, up to a byte limit), and the next request of that size gets it back. A request
// of another size frees the idle buffer first, so at most one buffer is ever held beyond the live arrays.
//
// Buffers are 2 MiB-aligned and advised as huge pages, as NumPy does for its large arrays, and are
// reported to tracemalloc in NumPy's domain while an array owns them (traced.c).
//
// The cache is touched only with the GIL held (requests, and the capsule destructors that give
// buffers back), so it needs no lock of its own.
#include "buffer_cache.hpp"
#include "traced.h"

#include <pybind11/stl.h>  // _core.empty takes the shape as a sequence

#include <stdlib.h>  // posix_memalign

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <cstddef>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>

namespace xentcpp::python {

namespace {

constexpr std::size_t kLarge = std::size_t{4} << 20;  // smaller arrays are NumPy's, which malloc recycles
constexpr std::size_t kHugePage = std::size_t{2} << 20;

struct Block {
    void* data = nullptr;
    std::size_t bytes = 0;
};

struct Cache {
    Block idle;
    std::size_t limit = std::size_t{1} << 30;
};

Cache& cache() {
    static Cache instance;
    return instance;
}

void free_idle() {
    Cache& c = cache();
    std::free(c.idle.data);
    c.idle = Block{};
}

// A buffer of at least `bytes`: the idle one when it has the same rounded size, else a new one.
Block take(std::size_t bytes) {
    const std::size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    Cache& c = cache();
    if (c.idle.data != nullptr && c.idle.bytes == rounded) {
        const Block reused = c.idle;
        c.idle = Block{};
        return reused;
    }
    free_idle();
    void* data = nullptr;
    if (posix_memalign(&data, kHugePage, rounded) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(data, rounded, MADV_HUGEPAGE);  // advice only: without huge pages the buffer still works
#endif
    return Block{data, rounded};
}

// Called when the last array on a buffer dies: keep it idle when the limit allows, else free it.
void give_back(Block block) {
    Cache& c = cache();
    if (block.bytes > c.limit) {
        std::free(block.data);
        return;
    }
    free_idle();
    c.idle = block;
}

std::size_t checked_bytes(const py::dtype& dtype, const std::vector<py::ssize_t>& shape) {
    std::size_t bytes = static_cast<std::size_t>(dtype.itemsize());
    for (const py::ssize_t extent : shape) {
        if (extent < 0) throw std::invalid_argument("xentcpp._core: negative dimensions are not allowed");
        const auto n = static_cast<std::size_t>(extent);
        if (n != 0 && bytes > std::numeric_limits<std::size_t>::max() / 2 / n) {
            throw std::invalid_argument("xentcpp._core: array is too big");
        }
        bytes *= n;
    }
    return bytes;
}

}  // namespace

py::array new_array(const py::dtype& dtype, const std::vector<py::ssize_t>& shape) {
    const std::size_t bytes = checked_bytes(dtype, shape);
    if (bytes < kLarge) return py::array(dtype, shape);
    const Block block = take(bytes);
    py::capsule owner;
    try {
        owner = py::capsule(new Block(block), [](void* p) {
            const std::unique_ptr<Block> owned(static_cast<Block*>(p));
            xentcpp_trace_free(owned->data);
            give_back(*owned);
        });
    } catch (...) {
        give_back(block);
        throw;
    }
    xentcpp_trace_alloc(block.data, block.bytes);
    return py::array(dtype, shape, block.data, owner);  // if this throws, the capsule gives the block back
}

void bind_buffer_cache(py::module_& m) {
    m.def("empty", &new_array, py::arg("dtype"), py::arg("shape"),
          "A new uninitialised C-contiguous array; from 4 MiB on, its buffer is kept for reuse when it dies.");
    m.def("empty_cache", [] {
        const std::size_t freed = cache().idle.bytes;
        free_idle();
        return freed;
    }, "Frees the idle buffer kept for reuse; returns its size in bytes (0 when there was none).");
    m.def("set_cache_limit", [](std::size_t limit) {
        const std::size_t previous = cache().limit;
        cache().limit = limit;
        if (cache().idle.bytes > limit) free_idle();
        return previous;
    }, py::arg("limit"), "Sets the largest buffer kept for reuse, in bytes (0: none); returns the previous limit.");
    m.def("cache_limit", [] { return cache().limit; }, "The largest buffer kept for reuse, in bytes.");
    m.def("cached_bytes", [] { return cache().idle.bytes; }, "The size of the idle buffer kept for reuse, in bytes.");
}

}  // namespace xentcpp::python
