"""The examples of examples/, each run in a small configuration and checked against an independent result.

train_digits.py and ce_vs_mse.py need the `examples` extra (scikit-learn, matplotlib), dask_perplexity.py
the `dask` extra, which scripts/run_tests.sh installs; without them their tests are skipped, and the others
still run.
"""

from __future__ import annotations

import importlib
import runpy
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from scipy.special import logsumexp

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))  # the examples import their shared progress bar as a sibling module

import linear_head  # noqa: E402
import perplexity  # noqa: E402
from progress import Progress  # noqa: E402


def _example(name: str, *needs: str) -> ModuleType:
    """The example module `name`, or a skip when a package of the examples extra that it imports is missing."""
    for package in needs:
        pytest.importorskip(package, reason=f"examples/{name}.py needs the examples extra ({package})")
    return importlib.import_module(name)


@pytest.fixture
def train_digits() -> ModuleType:
    return _example("train_digits", "sklearn")


@pytest.fixture
def ce_vs_mse() -> ModuleType:
    return _example("ce_vs_mse", "sklearn", "matplotlib")


def test_progress_bar_draws_every_step(capsys):
    bar = Progress(4, label="work", width=8)
    for step in range(4):
        bar.update(info=f"step {step}")
    lines = capsys.readouterr().err.splitlines()  # not a terminal: one line per update
    assert len(lines) == 4
    assert lines[0].startswith("work [##......] 1/4  25%")
    assert lines[-1].startswith("work [########] 4/4 100%") and lines[-1].endswith("step 3")
    with pytest.raises(ValueError, match="at least 1"):
        Progress(0)


def test_linear_head_learns_and_matches_the_unfused_loss(capsys):
    results = linear_head.main(["--tokens", "1024", "--vocab", "256", "--hidden", "32", "--batch", "256"])
    assert abs(results["initial"] - results["unfused"]) <= 1e-6 * results["unfused"]
    assert abs(results["initial"] - np.log(256)) < 1e-5  # a zero layer predicts the uniform distribution
    assert results["final"] < 0.5 * results["initial"]
    assert "5/5 100%" in capsys.readouterr().err


def test_train_digits_matches_logistic_regression(capsys, train_digits):
    results = train_digits.main(["--epochs", "40"])
    reference = results["logistic_regression"]
    assert reference > 0.9  # sanity of the reference itself
    assert results["softmax"] >= reference - 0.01
    assert results["mlp"] >= reference - 0.01
    assert results["mlp_final_loss"] < 0.05
    err = capsys.readouterr().err
    assert err.count("\n") == 80 and "40/40 100%" in err  # a bar line per epoch and model


def test_ce_vs_mse_sweep_against_closed_forms(ce_vs_mse):
    s = ce_vs_mse.sweep(classes=10, points=50)
    p = s["p"]
    np.testing.assert_allclose(s["ce"], -np.log(p), rtol=1e-12)
    # logits [z, 0, ...]: the other nine classes share 1 - p, so |p - onehot| has a closed form.
    q = (1 - p) / 9
    np.testing.assert_allclose(s["ce_grad"], np.sqrt((1 - p) ** 2 + 9 * q**2), rtol=1e-12)
    np.testing.assert_allclose(s["mse"], (1 - p) ** 2 + 9 * q**2, rtol=1e-12)
    # Squared error saturates where the prediction is most wrong; cross-entropy does not.
    assert s["mse_grad"][0] < 0.01 < 1.0 < s["ce_grad"][0]


def test_ce_vs_mse_gradient_matches_finite_differences(rng, ce_vs_mse):
    x = rng.standard_normal((3, 5))
    y = np.array([0, 4, 2])
    _, grad = ce_vs_mse.mse_value_and_grad(x, y)
    h = 1e-6
    for i, c in [(0, 0), (1, 3), (2, 2)]:
        up, down = x.copy(), x.copy()
        up[i, c] += h
        down[i, c] -= h
        numeric = (ce_vs_mse.mse_value_and_grad(up, y)[0][i] - ce_vs_mse.mse_value_and_grad(down, y)[0][i]) / (2 * h)
        assert grad[i, c] == pytest.approx(numeric, abs=1e-8)


def test_ce_vs_mse_saves_plots_and_ce_trains_faster(tmp_path, ce_vs_mse):
    results = ce_vs_mse.main(["--out", str(tmp_path), "--epochs", "15"])
    for path in results["paths"]:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    curves = results["curves"]
    assert curves["cross-entropy"][0] < 0.1 and curves["squared error"][0] < 0.1  # both start wrong
    assert curves["cross-entropy"][-1] > 0.8 > 0.5 > curves["squared error"][-1]


def _direct_losses(logits, labels):
    """Per-token losses in float64, straight from the formula; 0 for padding."""
    x = np.asarray(logits, np.float64)
    scored = labels != perplexity.PAD
    losses = logsumexp(x, axis=1) - x[np.arange(len(labels)), np.where(scored, labels, 0)]
    return np.where(scored, losses, 0.0), scored


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_perplexity_of_a_file_matches_float64(tmp_path, rng, dtype):
    tokens, vocab = 3000, 700
    logits = (rng.standard_normal((tokens, vocab)) * 3).astype(dtype)
    logits[::97] += 1e4  # large offsets: the row maximum must be subtracted
    labels = rng.integers(0, vocab, tokens)
    labels[rng.random(tokens) < 0.1] = perplexity.PAD
    np.save(tmp_path / "logits.npy", logits)
    np.save(tmp_path / "labels.npy", labels)
    results = perplexity.main(["--logits", str(tmp_path / "logits.npy"), "--labels",
                               str(tmp_path / "labels.npy"), "--chunk", "256"])
    expected, scored = _direct_losses(logits, labels)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results["losses"], expected, rtol=tol, atol=tol)
    assert results["scored"] == scored.sum()
    mean = expected.sum() / scored.sum()
    assert results["mean_loss"] == pytest.approx(mean, rel=tol)
    assert results["perplexity"] == pytest.approx(np.exp(mean), rel=10 * tol)


def test_perplexity_synthetic_stream_is_chunking_independent(capsys):
    small = perplexity.main(["--tokens", "300", "--vocab", "1000", "--chunk", "64"])
    whole = perplexity.main(["--tokens", "300", "--vocab", "1000", "--chunk", "300"])
    np.testing.assert_array_equal(small["losses"], whole["losses"])
    expected, _ = _direct_losses(*perplexity.synthetic_chunk(0, 300, 1000, seed=0))
    np.testing.assert_allclose(small["losses"], expected, rtol=1e-5, atol=1e-5)
    assert 1.0 < small["perplexity"] < 1000.0
    assert "300/300 100%" in capsys.readouterr().err


def test_dask_perplexity_matches_the_in_memory_example(capsys):
    dask_perplexity = _example("dask_perplexity", "dask")
    args = ["--tokens", "300", "--vocab", "1000", "--chunk", "64"]
    got = dask_perplexity.main([*args, "--vocab-chunk", "300"])  # 5 x 4 blocks, the last ones ragged
    want = perplexity.main(args)
    assert got["scored"] == want["scored"]
    assert got["mean_loss"] == pytest.approx(want["mean_loss"], rel=1e-6)
    assert "100% Completed" in capsys.readouterr().err  # Dask's progress bar


def test_scripts_run_as_commands(tmp_path, monkeypatch, capsys, ce_vs_mse):
    """Each script's __main__ path, as the README runs it."""
    monkeypatch.chdir(tmp_path)
    for script, args in [("perplexity.py", ["--tokens", "64", "--vocab", "50", "--chunk", "16"]),
                         ("ce_vs_mse.py", ["--epochs", "2"])]:
        monkeypatch.setattr(sys, "argv", [script, *args])
        runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    out = capsys.readouterr().out
    assert "perplexity" in out and "saved" in out
    assert (tmp_path / "ce_vs_mse_training.png").exists()
