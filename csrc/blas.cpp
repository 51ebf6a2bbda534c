// scipy-openblas32 behind blas.hpp. Its header declares every function with the `scipy_` prefix.
#include "blas.hpp"

#include <cblas.h>

#include <limits>
#include <mutex>
#include <stdexcept>

namespace xentcpp::blas {
namespace {

CBLAS_TRANSPOSE trans(Op op) { return op == Op::transpose ? CblasTrans : CblasNoTrans; }

blasint to_int(std::int64_t n, const char* what) {
    if (!fits(n)) {
        throw std::invalid_argument(std::string("xentcpp: ") + what +
                                    " exceeds the BLAS's 32-bit integers (2 147 483 647)");
    }
    return static_cast<blasint>(n);
}

// The scopes alive, the count they replaced, and the lock that orders their starts and ends.
std::mutex scope_lock;
int scopes = 0;
int saved_threads = 1;

}  // namespace

bool fits(std::int64_t n) { return n >= 0 && n <= std::numeric_limits<blasint>::max(); }

void gemm(Op op_a, Op op_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
    scipy_cblas_sgemm(CblasRowMajor, trans(op_a), trans(op_b), to_int(m, "m"), to_int(n, "n"), to_int(k, "k"), alpha,
                      a, to_int(lda, "lda"), b, to_int(ldb, "ldb"), beta, c, to_int(ldc, "ldc"));
}

void gemm(Op op_a, Op op_b, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
          std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
    scipy_cblas_dgemm(CblasRowMajor, trans(op_a), trans(op_b), to_int(m, "m"), to_int(n, "n"), to_int(k, "k"), alpha,
                      a, to_int(lda, "lda"), b, to_int(ldb, "ldb"), beta, c, to_int(ldc, "ldc"));
}

std::string config() { return scipy_openblas_get_config(); }

std::string core_name() { return scipy_openblas_get_corename(); }

int threads() { return scipy_openblas_get_num_threads(); }

const void* entry_point() { return reinterpret_cast<const void*>(&scipy_openblas_get_config); }

SingleThreaded::SingleThreaded() {
    const std::lock_guard<std::mutex> lock(scope_lock);
    if (scopes++ == 0) {
        saved_threads = scipy_openblas_get_num_threads();
        if (saved_threads != 1) scipy_openblas_set_num_threads(1);
    }
}

SingleThreaded::~SingleThreaded() {
    const std::lock_guard<std::mutex> lock(scope_lock);
    if (--scopes == 0 && saved_threads != 1) scipy_openblas_set_num_threads(saved_threads);
}

}  // namespace xentcpp::blas
