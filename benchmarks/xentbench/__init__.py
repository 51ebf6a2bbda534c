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
  of the process is pinned to ``THREADS`` of them at the start (which also bounds the probes' threads).
  NumPy's elementwise ufuncs run on one thread whatever the setting.
* Timing: per shape, every (implementation, operation) pair is warmed up (JAX compiles then), given a
  number of calls per sample so that a sample lasts at least ``min_sample_s`` (many calls for tiny
  shapes: the result is the time per call), then sampled round-robin over all pairs for several rounds,
  the order rotated each round. Reported: the median per call. Inputs of the peers (``torch.from_numpy``
  views, JAX device arrays) are made before timing; every call returns a new gradient, except
  xentcpp's ``fused out=`` row, which writes into a pre-faulted buffer. xentcpp's ``fused`` gradient
  gets, from the second call on, the buffer the previous call's gradient left (xentcpp keeps it for
  reuse); its ``fused, cache off`` row turns that off, so each call allocates as the peers' do.
* Agreement: the first (warm-up) result of each peer is compared with xentcpp's (loss, and the gradient
  for fused calls); a disagreement is listed under anomalies, it is not an error.
* Bus, measured beside the kernels: xentcpp's C++ probes (``_core.read_probe``: the OR of every byte;
  ``_core.copy_probe``: streaming stores, 40 % faster here than ``memcpy``), with ``THREADS`` threads,
  each on one contiguous part of a pre-faulted float32 array several times the last-level cache, are two
  more calls in every case's round-robin. read = bytes / the read probe's median; copy = 2 * bytes / the
  copy probe's median (STREAM counts a copy of B bytes as 2B moved). Why not once per run, or the best
  of many: this machine's bus drifts between about 39 and 75 GB/s read within minutes (its neighbours),
  so only a bound timed in the same rounds as a kernel compares like with like; the best of many picks
  the bursts.
* Roofline, as xentcpp's performance targets define it: forward bound = ``N*C*itemsize / read`` (the logits only;
  the ``N*8`` bytes of int64 labels are read too but not counted, and listed in a note); fused bound =
  ``2*N*C*itemsize / copy``, i.e. the time of a plain copy of the logits into a pre-faulted buffer, with
  each case's own read and copy. Reported per xentcpp median: time / bound, and % of bus = bound / time.
  ``fused out=`` is compared with the same fused bound; ``fused`` also pays for faulting in its new
  gradient, which the bound does not.
  A time under its bound (the kernel got more bandwidth than the measurement) is listed under anomalies.
* Targets: xentcpp's performance targets (time / bound at most a limit; speed-up over a peer at least a limit) are
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
