"""Perplexity of a language model over more tokens than one machine holds, on Dask: the logits as a Dask
array chunked along the tokens and the vocabulary, reduced exactly by ``xentcpp.dask.cross_entropy``,
with Dask's own progress bar.

The logits are made chunk by chunk inside the graph (the synthetic model of perplexity.py, so the two
examples give the same perplexity); a real evaluation would build the Dask array from its files
(``da.from_zarr``, ``da.from_array`` of a memory-mapped ``.npy``) or from the model's own tasks.

Run: python examples/dask_perplexity.py [--tokens 8192 --vocab 32000 --chunk 512 --vocab-chunk 8000]
     python examples/dask_perplexity.py --workers 2                   # a LocalCluster of 2 processes
     python examples/dask_perplexity.py --scheduler tcp://HOST:8786   # a running cluster
"""

from __future__ import annotations

import argparse
import math
import sys

import dask
import dask.array as da
import numpy as np
from perplexity import PAD, synthetic_chunk

import xentcpp.dask


def corpus(tokens: int, vocab: int, chunk: int, vocab_chunk: int, seed: int) -> tuple[da.Array, da.Array]:
    """The logits ``(tokens, vocab)``, chunked ``(chunk, vocab_chunk)``, and the labels, as Dask arrays:
    each chunk of tokens is one task whose two outputs are its logits and its labels."""
    logits, labels = [], []
    for start in range(0, tokens, chunk):
        stop = min(start + chunk, tokens)
        made = dask.delayed(synthetic_chunk, nout=2, pure=True)(start, stop, vocab, seed)
        logits.append(da.from_delayed(made[0], shape=(stop - start, vocab), dtype=np.float32))
        labels.append(da.from_delayed(made[1], shape=(stop - start,), dtype=np.int64))
    return da.concatenate(logits).rechunk({1: vocab_chunk}), da.concatenate(labels)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192, help="synthetic tokens (default 8192)")
    parser.add_argument("--vocab", type=int, default=32000, help="vocabulary (default 32000)")
    parser.add_argument("--chunk", type=int, default=512, help="tokens per chunk (default 512)")
    parser.add_argument("--vocab-chunk", type=int, default=8000, help="classes per chunk (default 8000)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    parser.add_argument("--workers", type=int, default=0, help="worker processes of a LocalCluster (0: threads)")
    parser.add_argument("--scheduler", help="the address of a running Dask scheduler, e.g. tcp://HOST:8786")
    args = parser.parse_args(argv)

    logits, labels = corpus(args.tokens, args.vocab, args.chunk, args.vocab_chunk, args.seed)
    loss = xentcpp.dask.cross_entropy(logits, labels, ignore_index=PAD)  # the mean over scored tokens
    scored = (labels != PAD).sum()
    print(f"logits {logits.shape[0]} x {logits.shape[1]} in {logits.numblocks[0]} x {logits.numblocks[1]} chunks, "
          f"{len(loss.__dask_graph__())} tasks", file=sys.stderr)
    if args.scheduler or args.workers:
        from distributed import Client, LocalCluster, progress

        cluster = None if args.scheduler else LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                                           dashboard_address=None)
        with Client(args.scheduler or cluster) as client:
            client.upload_file(__file__.replace("dask_perplexity.py", "perplexity.py"))  # the model, on every worker
            futures = client.compute([loss, scored])
            progress(futures)  # Dask's progress bar for a cluster (the dashboard shows more)
            mean, count = (f.result() for f in futures)
        if cluster is not None:
            cluster.close()
    else:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):  # Dask's progress bar for its local schedulers
            mean, count = dask.compute(loss, scored)
    mean = float(mean)
    print(f"{int(count)} scored tokens of {args.tokens}: mean loss {mean:.6f} nats, perplexity {math.exp(mean):.4f}")
    return {"perplexity": math.exp(mean), "mean_loss": mean, "scored": int(count)}


if __name__ == "__main__":
    main()
