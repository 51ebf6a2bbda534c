"""z-loss (PaLM) and logit soft-capping (Gemma 2): values and gradients against the float64
reference, finite differences, PyTorch written out by hand, and every kernel path (few classes,
one-segment rows, long rows cut in segments, long rows split across threads)."""

from __future__ import annotations

import numpy as np
import pytest
from cases import FLOATS, REDUCTIONS, assert_close, make_problem
from reference import central_difference, ref_grad, ref_loss

import xentcpp as xc

# (rows, classes) reaching each kernel path: lanes own rows (C <= 32), one segment per row, rows of
# several 32768-class segments (5 rows: shared out by rows; 2 rows: each row split across threads).
PATH_SHAPES = [(37, 10), (9, 1000), (5, 70000), (2, 70000)]
OPTIONS = [
    dict(z_loss=1e-3),
    dict(softcap=4.0),
    dict(z_loss=0.25, softcap=30.0),
]


def _grad_output(rng, reduction, rows):
    return rng.uniform(0.5, 2.0, rows) if reduction == "none" else 1.3


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", PATH_SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_paths_match_reference(rng, dtype, shape, reduction, options):
    x, t, w = make_problem(rng, shape, dtype=dtype, weighted=True, ignored=True)
    kw = dict(weight=w, reduction=reduction, label_smoothing=0.1, **options)
    go = _grad_output(rng, reduction, shape[0])

    loss, z = xc.cross_entropy(x, t, return_z_loss=True, **kw)
    expected_loss, expected_z = ref_loss(x, t, return_z_loss=True, **kw)
    assert_close(loss, expected_loss, dtype, "loss")
    assert_close(z, expected_z, dtype, "loss")
    assert_close(xc.cross_entropy(x, t, **kw), expected_loss, dtype, "loss")

    g = xc.cross_entropy_grad(x, t, go, **kw)
    assert_close(g, ref_grad(x, t, go, **kw), dtype, "grad")
    (loss, z), g = xc.cross_entropy_value_and_grad(x, t, return_z_loss=True, **kw)
    assert_close(loss, expected_loss, dtype, "loss")
    assert_close(z, expected_z, dtype, "loss")
    assert_close(g, ref_grad(x, t, 1.0 if reduction != "none" else np.ones(shape[0]), **kw), dtype, "grad")


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_probability_targets(rng, reduction, options):
    x, t, w = make_problem(rng, (6, 9), target="prob", weighted=True)
    kw = dict(weight=w, reduction=reduction, label_smoothing=0.2, **options)
    go = _grad_output(rng, reduction, 6)
    assert_close(xc.cross_entropy(x, t, **kw), ref_loss(x, t, **kw), np.float64, "loss")
    assert_close(xc.cross_entropy_grad(x, t, go, **kw), ref_grad(x, t, go, **kw), np.float64, "grad")


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("classes", [5, 40])
def test_finite_differences(rng, classes, reduction, options):
    x, t, w = make_problem(rng, (4, classes), weighted=True, ignored=True)
    go = _grad_output(rng, reduction, 4)
    kw = dict(weight=w, reduction=reduction, label_smoothing=0.1, **options)

    def f(xx):
        return float(np.sum(go * np.asarray(xc.cross_entropy(xx, t, **kw))))

    g = xc.cross_entropy_grad(x, t, go, **kw)
    np.testing.assert_allclose(g, central_difference(f, x), rtol=1e-6, atol=1e-7)


def test_z_loss_is_unweighted_and_counts_rows_not_weights(rng):
    # Liger-Kernel's convention: the mean divides the z term by the number of counted rows, while the
    # cross-entropy term is divided by their summed weight.
    x, t, w = make_problem(rng, (8, 6), weighted=True, ignored=True)
    counted = t != -100
    lse = np.log(np.sum(np.exp(x), axis=1))
    _, z = xc.cross_entropy(x, t, weight=w, z_loss=0.5, return_z_loss=True)
    assert z == pytest.approx(0.5 * np.mean(lse[counted] ** 2), rel=1e-12)
    _, z_rows = xc.cross_entropy(x, t, weight=w, z_loss=0.5, reduction="none", return_z_loss=True)
    np.testing.assert_allclose(z_rows, np.where(counted, 0.5 * lse**2, 0.0), rtol=1e-12)


def test_softcap_bounds_logits_and_its_gradient_vanishes_far_out():
    x = np.array([[1e4, 0.0, -1e4]])
    loss, g = xc.cross_entropy_value_and_grad(x, [1], softcap=2.0)
    expected = np.log(np.exp(2.0) + 1.0 + np.exp(-2.0))  # logits capped to (2, 0, -2)
    assert loss == pytest.approx(expected, rel=1e-14)
    assert g[0, 0] == 0.0 and g[0, 2] == 0.0  # 1 - tanh^2 underflows far beyond the cap
    assert g[0, 1] < 0.0


def test_large_softcap_is_the_identity_to_rounding(rng):
    x, t, _ = make_problem(rng, (5, 11))
    assert xc.cross_entropy(x, t, softcap=1e8) == pytest.approx(xc.cross_entropy(x, t), rel=1e-12)


def test_in_place_gradient_with_options(rng):
    for shape in [(7, 10), (4, 300), (2, 70000)]:
        x, t, _ = make_problem(rng, shape, dtype=np.float32)
        kw = dict(z_loss=1e-2, softcap=10.0)
        expected = xc.cross_entropy_value_and_grad(x, t, **kw)
        loss, g = xc.cross_entropy_value_and_grad(x, t, out=x, **kw)
        assert g is x
        assert loss == expected[0]
        np.testing.assert_array_equal(g, expected[1])


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(z_loss=-1.0), "z_loss"),
        (dict(z_loss=float("nan")), "z_loss"),
        (dict(z_loss=float("inf")), "z_loss"),
        (dict(softcap=0.0), "softcap"),
        (dict(softcap=-3.0), "softcap"),
        (dict(softcap=float("inf")), "softcap"),
        (dict(softcap=float("nan")), "softcap"),
        (dict(z_loss=0.1, from_logits=False), "from_logits"),
        (dict(softcap=5.0, from_logits=False), "from_logits"),
    ],
)
def test_bad_options(options, message):
    x = np.full((2, 3), 0.3)
    for function in (xc.cross_entropy, xc.cross_entropy_grad, xc.cross_entropy_value_and_grad):
        with pytest.raises(ValueError, match=message):
            function(x, [0, 1], **options)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("cap", [1e300, 1e-50])
def test_softcap_out_of_the_compute_types_range_is_refused(dtype, cap):
    # float32 arithmetic (also for halves): 1e300 would be inf (inf * tanh(0) = NaN), 1e-50 would be 0 (no cap).
    x = np.full((2, 3), 0.3, dtype)
    with pytest.raises(ValueError, match="softcap must be finite and > 0 in the compute type"):
        xc.cross_entropy(x, [0, 1], softcap=cap)
    assert np.isfinite(xc.cross_entropy(x.astype(np.float64), [0, 1], softcap=cap))  # fine in float64


def _torch_reference(torch, x, t, w, reduction, smoothing, z_loss, softcap):
    """The same loss written with PyTorch operations, differentiated by autograd."""
    tx = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t)
    logits = softcap * torch.tanh(tx / softcap) if softcap else tx
    ce = torch.nn.functional.cross_entropy(logits, tt, weight=torch.tensor(w), reduction=reduction,
                                           label_smoothing=smoothing)
    counted = (tt != -100).to(tx.dtype)
    z_rows = z_loss * torch.logsumexp(logits, dim=1) ** 2 * counted
    z = {"none": z_rows, "sum": z_rows.sum(), "mean": z_rows.sum() / counted.sum()}[reduction]
    loss = ce + z
    loss.sum().backward()
    return loss.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", FLOATS)
def test_torch_parity(torch, rng, dtype, reduction):
    x, t, w = make_problem(rng, (10, 13), dtype=dtype, weighted=True, ignored=True)
    expected_loss, expected_grad = _torch_reference(torch, x, t, w, reduction, 0.1, 1e-2, 6.0)
    loss, g = xc.cross_entropy_value_and_grad(x, t, weight=w, reduction=reduction, label_smoothing=0.1,
                                              z_loss=1e-2, softcap=6.0)
    assert_close(loss, expected_loss, dtype, "loss")
    assert_close(g, expected_grad, dtype, "grad")
