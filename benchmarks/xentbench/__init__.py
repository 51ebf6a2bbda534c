"""Benchmarks of xentcpp against NumPy, PyTorch and JAX, with a memory-bandwidth roofline.

Run from the repository root::

    python benchmarks/bench.py                 # full run (minutes on 2 cores, ~5 GiB peak)
    python benchmarks/bench.py --quick         # smoke test for CI (< 1 min)
    python benchmarks/bench.py --out DIR       # where results.md, results.json, bench.png go

Method
------
* Threads: every library gets ``THREADS`` (2) threads. ``OMP_NUM_THREADS`` and friends are set below,
  before NumPy is imported (importing this package sets them, so import it first); ``torch.set_num_threads``;
  JAX sizes its CPU pool from the CPUs the process may run on, so on a machine with more CPUs every thread
  of the process is pinned to ``THREADS`` of them at the start (which also bounds the bandwidth threads).
  NumPy's elementwise ufuncs run on one thread whatever the setting.
* Timing: per shape, every (implementation, operation) pair is warmed up (JAX compiles then), given a
  number of calls per sample so that a sample lasts at least ``min_sample_s`` (many calls for tiny
  shapes: the result is the time per call), then sampled round-robin over all pairs for several rounds,
  the order rotated each round. Reported: the median per call. Inputs of the peers (``torch.from_numpy``
  views, JAX device arrays) are made before timing; every call returns a fresh gradient, except
  xentcpp's ``fused out=`` row, which writes into a pre-faulted buffer.
* Agreement: the first (warm-up) result of each peer is compared with xentcpp's (loss, and the gradient
  for fused calls); a disagreement is listed under anomalies, it is not an error.
* Bandwidth, measured in this run: at the start, after each shape and at the end; the best is used, as
  noise only slows. ``THREADS`` Python threads each work on one contiguous slice of a >= 1 GiB float32
  array (NumPy releases the GIL inside reductions and copies of numeric arrays). read: the faster of
  ``np.add.reduce`` (float32) and ``np.bitwise_or.reduce`` (uint64 view), bytes read per second; write:
  ``np.copyto`` of a scalar into a pre-faulted array, bytes written per second; copy: ``np.copyto`` of
  the array into the pre-faulted one, counted as STREAM does, (bytes read + bytes written) / time, so a
  copy of B bytes moves 2B. Each is the best of several repeats, as STREAM reports.
* Roofline, as the project's issue defines it: forward bound = ``N*C*itemsize / read`` (the logits only;
  the ``N*8`` bytes of int64 labels are read too but not counted, and listed in a note); fused bound =
  ``2*N*C*itemsize / copy``, i.e. the time of a plain copy of the logits into a pre-faulted buffer.
  Reported per xentcpp time: time / bound, and % of bus = bound / time. ``fused out=`` is compared with
  the same fused bound; ``fused`` also pays for faulting in its new gradient, which the bound does not.
  A time under its bound (the kernel got more bandwidth than the measurement) is listed under anomalies.
* Targets: the issue's targets (time / bound at most a limit; speed-up over a peer at least a limit) are
  in :mod:`xentbench.roofline`; the table marks each one met or not, and the report lists them all.
* Memory: one fresh subprocess per (implementation, operation), on ~250 MiB of float32 logits: inputs
  made, one warm-up call, the peak RSS reset (``/proc/self/clear_refs``), one call kept alive, then the
  extra peak = VmHWM - RSS before the call. Without ``clear_refs``: no warm-up, and
  ``ru_maxrss`` after the call minus ``ru_maxrss`` before it.

No timing is ever asserted: this package measures and reports.
"""

import os

# Two threads for every library; set before NumPy, PyTorch or JAX is imported (they read it then).
os.environ.update(OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2",
                  NUMEXPR_NUM_THREADS="2", JAX_PLATFORMS="cpu")

THREADS = int(os.environ["OMP_NUM_THREADS"])

__all__ = ["THREADS"]
