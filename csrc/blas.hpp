// The BLAS behind linear_cross_entropy: row-major GEMM in float and double, and the facts and thread
// count of the library. The only file that names the library's symbols is blas.cpp.
//
// The library is scipy-openblas32 (OpenBLAS built by the NumPy/SciPy project: 32-bit integers, every
// symbol prefixed `scipy_`, kernels chosen for the CPU at run time, a pthreads thread pool). The prefix
// keeps it apart from any other BLAS in the process (NumPy's scipy_openblas64_, PyTorch's).
#pragma once

#include <cstdint>
#include <string>

namespace xentcpp::blas {

enum class Op : bool { none, transpose };

// C = alpha * op(A) @ op(B) + beta * C, row-major; op(A) is m x k, op(B) k x n, C m x n. beta = 0
// ignores what C held (NaN included). Sizes and leading dimensions must fit the library's 32-bit ints
// (checked: std::invalid_argument).
void gemm(Op op_a, Op op_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);
void gemm(Op op_a, Op op_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
          std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc);

// Whether a size fits the library's integers.
bool fits(std::int64_t n);

// The library's own description ("OpenBLAS 0.3.34 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64"),
// the kernels it chose for this CPU, and the size of its thread pool for calls made outside xentcpp.
std::string config();
std::string core_name();
int threads();

// The address of one of the library's functions (dladdr on it names the library's file).
const void* entry_point();

// While one exists (in any thread), the library runs every call on its caller's thread only: the
// GEMM tiles of linear_cross_entropy are shared out by OpenMP, each one a single-threaded call, so the
// BLAS's own pool must stay idle (OpenBLAS's pthreads pool, called from OpenMP threads, would put
// several callers' jobs on one pool and oversubscribe the cores). The first scope saves the library's
// thread count and sets 1; the last one to end restores it. The setting is process-wide: BLAS calls
// from other threads made meanwhile (e.g. by SciPy on the same library) also run on one thread.
class SingleThreaded {
public:
    SingleThreaded();
    ~SingleThreaded();
    SingleThreaded(const SingleThreaded&) = delete;
    SingleThreaded& operator=(const SingleThreaded&) = delete;
};

}  // namespace xentcpp::blas
