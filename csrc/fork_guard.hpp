// After fork() the child process has one thread, but GCC's libgomp still counts the parent's worker
// threads in its pool: the child's next parallel region waits for them forever. The guard makes a
// forked child compute on one thread (as PyTorch's CPU kernels do); results do not depend on the
// thread count, so they are the same bits.
#pragma once

namespace xentcpp::detail {

// Registers the fork handler once per process; cheap to call again. Called before any parallel region.
void install_fork_guard();

}  // namespace xentcpp::detail
