"""xentcpp.dask: the loss and gradient of Dask arrays chunked along rows, classes or both equal the in-memory
functions (and the float64 reference) for every option; the same graph gives the same bits twice; on a
LocalCluster of worker processes too, with a worker killed in the middle of a computation; a bad label
gives an IndexError naming its row; and without Dask the import says what to install."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from cases import assert_close, make_problem
from reference import ref_grad, ref_loss

import xentcpp as xc

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
xd = pytest.importorskip("xentcpp.dask")

C = 13
# Chunks of a (12, C) array: one class per chunk, ragged, a single chunk, rows and classes both chunked.
CHUNKINGS = {
    "one class per chunk": (12, 1),
    "ragged": ((5, 7), (3, 1, 6, 3)),
    "single chunk": (12, C),
    "rows and classes": (4, 5),
}
# Options of the in-memory functions, and how make_problem builds the case.
CASES = {
    "plain": ({}, {}),
    "weights, smoothing, ignored": (dict(label_smoothing=0.1), dict(weighted=True, ignored=True)),
    "z_loss, softcap": (dict(z_loss=1e-2, softcap=4.0), {}),
    "probabilities": (dict(label_smoothing=0.2), dict(target="prob", weighted=True)),
}


@pytest.fixture(autouse=True)
def threaded_scheduler():
    """Dask's local threads unless a test runs on the cluster (dask.config is per test)."""
    with dask.config.set(scheduler="threads"):
        yield


def dask_case(rng, chunks, dtype=np.float32, **build):
    x, t, weight = make_problem(rng, (12, C), dtype=dtype, **build)
    X = da.from_array(x, chunks=chunks)
    T = da.from_array(t, chunks=X.chunks if t.shape == x.shape else X.chunks[:1])
    return x, t, weight, X, T


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_loss_and_gradient_equal_the_in_memory_functions(rng, chunking, case):
    options, build = CASES[case]
    x, t, weight, X, T = dask_case(rng, CHUNKINGS[chunking], **build)
    for reduction in ("none", "sum", "mean"):
        (loss, z), grad = xd.cross_entropy_value_and_grad(
            X, T, weight=weight, reduction=reduction, return_z_loss=True, **options
        )
        assert grad.chunks == X.chunks and grad.dtype == X.dtype
        loss_v, z_v, grad_v = dask.compute(loss, z, grad)
        (want, want_z), want_grad = xc.cross_entropy_value_and_grad(
            x, t, weight=weight, reduction=reduction, return_z_loss=True, **options
        )
        assert_close(loss_v, want, np.float32, "loss")
        assert_close(z_v, want_z, np.float32, "loss")
        assert_close(loss_v, ref_loss(x, t, weight=weight, reduction=reduction, **options), np.float32, "loss")
        assert_close(grad_v, want_grad, np.float32, "grad")
        if reduction != "none":
            assert_close(grad_v, ref_grad(x, t, weight=weight, reduction=reduction, **options), np.float32, "grad")
        else:
            assert loss_v.dtype == np.float32 and loss.chunks == X.chunks[:1]
        assert xd.cross_entropy(X, T, weight=weight, reduction=reduction, **options).compute().tobytes() == (
            np.asarray(loss_v).tobytes()
        )


def test_pytorch_layout_half_precision_and_a_row_mask(rng):
    x, t, weight = make_problem(rng, (3, C, 4, 5), axis=1, dtype=np.float16, weighted=True)
    where = rng.random((3, 1, 5)) < 0.7
    X = da.from_array(x, chunks=(2, 5, 4, 3))
    options = dict(axis=1, weight=weight, where=where, label_smoothing=0.05)
    loss, grad = xd.cross_entropy_value_and_grad(X, da.from_array(t, chunks=(1, 2, 5)), **options)
    want, want_grad = xc.cross_entropy_value_and_grad(x, t, **options)
    assert_close(float(loss.compute()), want, np.float16, "loss")
    g = grad.compute()
    assert g.dtype == np.float16 and g.shape == x.shape
    assert_close(g, want_grad, np.float16, "grad")
    per_row = xd.cross_entropy(X, t, reduction="none", **options).compute()
    assert per_row.shape == (3, 4, 5) and per_row.dtype == np.float32
    assert_close(per_row, xc.cross_entropy(x, t, reduction="none", **options), np.float16, "loss")


def test_a_single_row_and_numpy_inputs(rng):
    x, t, _ = make_problem(rng, (C,))
    loss, grad = xd.cross_entropy_value_and_grad(x, t, reduction="none")
    assert loss.shape == () and grad.shape == (C,)
    want, want_grad = xc.cross_entropy_value_and_grad(x, t, reduction="none")
    assert_close(loss.compute(), want, np.float64, "loss")
    assert_close(grad.compute(), want_grad, np.float64, "grad")


def test_the_same_graph_gives_the_same_bits_twice(rng):
    _, _, weight, X, T = dask_case(rng, (5, 3), weighted=True)
    loss, grad = xd.cross_entropy_value_and_grad(X, T, weight=weight, label_smoothing=0.1, z_loss=1e-3)
    first = dask.compute(loss, grad)
    with dask.config.set(scheduler="synchronous"):
        second = dask.compute(loss, grad)
    assert first[0].tobytes() == second[0].tobytes() and first[1].tobytes() == second[1].tobytes()


def test_a_bad_label_in_some_chunk_names_its_row(rng):
    _, t, _, X, _ = dask_case(rng, (5, 4))
    t[7] = C
    with pytest.raises(IndexError, match=rf"target\[7\] = {C} is out of range"):
        xd.cross_entropy(X, da.from_array(t, chunks=5)).compute()
    t2 = rng.integers(0, C, (4, 6))
    t2[3, 4] = -1
    with pytest.raises(IndexError, match=r"target\[3, 4\] = -1"):
        xd.cross_entropy(da.zeros((4, 6, C), chunks=(2, 4, 7)), t2).compute()


def test_bad_arguments_are_refused_when_the_graph_is_built(rng):
    X = da.zeros((4, C), chunks=2)
    with pytest.raises(TypeError, match="input must be a float16"):
        xd.cross_entropy(X.astype(int), np.zeros(4, int))
    with pytest.raises(ValueError, match="expected class indices of shape"):
        xd.cross_entropy(X, np.zeros(5, int))
    with pytest.raises(TypeError, match="class-index targets must be integers"):
        xd.cross_entropy(X, np.zeros(4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        xd.cross_entropy(X, np.zeros(4, int), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        xd.cross_entropy(X, np.zeros(4, int), label_smoothing=-1.0)
    with pytest.raises(ValueError, match="weight must have shape"):
        xd.cross_entropy(X, np.zeros(4, int), weight=np.ones(3))


LINEAR_CASES = {
    "plain": {},
    "bias, weights, smoothing, z_loss, softcap": dict(bias=True, weighted=True, label_smoothing=0.1, z_loss=1e-3,
                                                      softcap=20.0),
    "row mask": dict(where=True),
}


@pytest.mark.parametrize("case", LINEAR_CASES)
def test_linear_cross_entropy_equals_the_in_memory_layer(rng, case):
    options = dict(LINEAR_CASES[case])
    h = rng.standard_normal((3, 10, 16)).astype(np.float32)
    w = rng.standard_normal((C, 16)).astype(np.float32)
    t = rng.integers(0, C, (3, 10))
    t[1, ::3] = -100
    if options.pop("bias", False):
        options["linear_bias"] = rng.standard_normal(C).astype(np.float32)
    if options.pop("weighted", False):
        options["weight"] = rng.uniform(0.5, 2.0, C).astype(np.float32)
    where = options.pop("where", False)
    mask = rng.random((3, 10)) < 0.7 if where else np.ones((3, 10), bool)
    H = da.from_array(h, chunks=(2, (3, 7), 8))  # the hidden axis split too: taken whole
    for reduction in ("none", "sum", "mean"):
        loss, z = xd.linear_cross_entropy(H, w, da.from_array(t, chunks=(1, 5)), reduction=reduction,
                                          return_z_loss=True, where=mask if where else None, **options)
        got, got_z = dask.compute(loss, z)
        # The in-memory layer on the rows that count (a mask ignores its rows, as ignore_index does).
        want, want_z = xc.linear_cross_entropy(h, w, np.where(mask, t, -100), reduction=reduction,
                                               return_z_loss=True, **options)
        assert_close(got, want, np.float32, "loss")
        assert_close(got_z, want_z, np.float32, "loss")
        logits = np.einsum("abh,vh->abv", h.astype(np.float64), w.astype(np.float64)) + options.get("linear_bias", 0.0)
        ref = ref_loss(logits, np.where(mask, t, -100), reduction=reduction, weight=options.get("weight"),
                       label_smoothing=options.get("label_smoothing", 0.0), z_loss=options.get("z_loss", 0.0),
                       softcap=options.get("softcap"))
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_linear_cross_entropy_over_weights_summing_to_zero_and_a_bad_label(rng):
    h = rng.standard_normal((8, 6))
    w = rng.standard_normal((5, 6))
    t = np.array([0, 1, 0, 1, -100, 0, 1, -100])
    weight = np.array([1.0, -1.0, 0.5, 2.0, 1.0])  # the counted rows' weights sum to zero
    H = da.from_array(h, chunks=3)
    for a in (0.0, 0.3):
        got = float(xd.linear_cross_entropy(H, w, t, weight=weight, label_smoothing=a).compute())
        want = xc.linear_cross_entropy(h, w, t, weight=weight, label_smoothing=a)
        assert np.isnan(want) or np.isinf(want)
        np.testing.assert_array_equal(got, want)
    t[7] = 5
    with pytest.raises(IndexError, match=r"target\[7\] = 5 is out of range"):
        xd.linear_cross_entropy(H, w, t).compute()


def test_importing_without_dask_says_what_to_install():
    code = "import sys; sys.modules['dask'] = None; import xentcpp.dask"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "ImportError: xentcpp.dask needs Dask's arrays" in result.stderr
    assert 'pip install "xentcpp[dask]"' in result.stderr


# ---------------------------------------------------------------------------------------------------------
# On a LocalCluster of two single-threaded worker processes (loopback only).

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
    ) as cluster, distributed.Client(cluster) as c:
        yield c


def slow_logits(block_id=None, block_info=None, seconds=0.0):
    """A chunk of deterministic logits (from its position), taking `seconds` to make."""
    time.sleep(seconds)
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    rows, cols = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
    return (np.sin(rows * 0.37 + cols * 1.13) * 4.0).astype(np.float32)


def produced(shape, chunks, seconds=0.0):
    return da.map_blocks(slow_logits, seconds=seconds, chunks=da.core.normalize_chunks(chunks, shape),
                         dtype=np.float32, meta=np.empty((0, 0), np.float32))


def test_on_a_cluster_the_results_are_the_in_memory_ones(client, rng):
    X = produced((60, 40), (20, 15))
    x = X.compute(scheduler="threads")
    t = rng.integers(0, 40, 60)
    t[::7] = -100
    loss, grad = xd.cross_entropy_value_and_grad(X, t, label_smoothing=0.1, z_loss=1e-3)
    first = client.compute([loss, grad], sync=True)
    second = client.compute([loss, grad], sync=True)
    want, want_grad = xc.cross_entropy_value_and_grad(x, t, label_smoothing=0.1, z_loss=1e-3)
    assert_close(float(first[0]), want, np.float32, "loss")
    assert_close(first[1], want_grad, np.float32, "grad")
    assert first[0].tobytes() == second[0].tobytes() and first[1].tobytes() == second[1].tobytes()
    local = dask.compute(loss, grad, scheduler="threads")
    assert local[0].tobytes() == first[0].tobytes() and local[1].tobytes() == first[1].tobytes()
    t[33] = 40
    with pytest.raises(IndexError, match=r"target\[33\] = 40"):
        client.compute(xd.cross_entropy(X, t), sync=True)
    h = np.random.default_rng(5).standard_normal((60, 8)).astype(np.float32)
    w = np.random.default_rng(6).standard_normal((40, 8)).astype(np.float32)
    t[33] = 1
    head = xd.linear_cross_entropy(da.from_array(h, chunks=25), w, t, label_smoothing=0.1)
    first, second = (client.compute(head, sync=True) for _ in range(2))
    assert_close(float(first), xc.linear_cross_entropy(h, w, t, label_smoothing=0.1), np.float32, "loss")
    assert first.tobytes() == second.tobytes()


def test_a_killed_worker_is_replaced_and_the_result_stays_exact(client):
    X = produced((200, 60), (10, 20), seconds=0.05)  # 60 chunks of 50 ms: about 1.5 s per worker
    t = (np.arange(200) * 7) % 60
    loss = xd.cross_entropy(X, t)
    want = client.compute(loss, sync=True)
    future = client.compute(loss)
    victim, deadline = None, time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:  # a worker that holds results of this graph
        held = {w: keys for w, keys in client.has_what().items() if keys}
        victim = next(iter(held), None)
        time.sleep(0.02)
    assert victim is not None and not future.done()
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    got = future.result(timeout=120)
    assert got.tobytes() == want.tobytes()
    assert_close(float(got), xc.cross_entropy(X.compute(scheduler="threads"), t), np.float32, "loss")
    client.wait_for_workers(2, timeout=60)
