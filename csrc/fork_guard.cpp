#include "fork_guard.hpp"

#if defined(_OPENMP) && defined(__unix__)
#include <omp.h>
#include <pthread.h>
#endif

namespace xentcpp::detail {

#if defined(_OPENMP) && defined(__unix__)
namespace {
// Runs in the child only, in the thread that called fork(); sets that thread's OpenMP thread count.
void on_fork_child() { omp_set_num_threads(1); }

bool register_handler() { return pthread_atfork(nullptr, nullptr, on_fork_child) == 0; }
}  // namespace

void install_fork_guard() {
    static const bool registered = register_handler();  // thread-safe, once
    (void)registered;
}
#else
void install_fork_guard() {}
#endif

}  // namespace xentcpp::detail
