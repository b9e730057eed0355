"""The runnable examples under examples/: run with small sizes, checked against independent references."""

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"xent_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_examples_against_scipy_and_math(capsys):
    from scipy.stats import entropy

    out = _load("seed_examples").main()
    np.testing.assert_allclose(out["containers_bits"], [entropy([a, 30 - a], base=2) for a in (26, 14, 29)], rtol=1e-14)
    bits, nats = out["four_class"]
    assert bits == pytest.approx(-math.log2(0.775), rel=1e-14) and nats == pytest.approx(-math.log(0.775), rel=1e-14)
    assert out["point_error"] == pytest.approx(-math.log(0.2), rel=1e-15)
    assert out["three_doors"] == pytest.approx(-math.log(0.8 * 0.7 * 0.9), rel=1e-14)
    mu, mean = out["intercept_only"]
    assert mu == pytest.approx(mean, abs=1e-9)
    a, b = out["softmax_vs_sigmoid"]
    assert a == pytest.approx(math.log1p(math.exp(-1.7)), rel=1e-14) and b == pytest.approx(a, rel=1e-14)
    text = capsys.readouterr().out
    for value in ("0.56651", "0.99679", "0.21084", "0.36773", "0.25489", "1.60944", "0.68518"):
        assert value in text


def _unpenalised_logistic_regression():
    import sklearn
    from sklearn.linear_model import LogisticRegression

    major, minor = (int(v) for v in sklearn.__version__.split(".")[:2])
    # scikit-learn 1.8 deprecated penalty=None in favour of C=inf; both mean "no penalty".
    options = {"C": np.inf} if (major, minor) >= (1, 8) else {"penalty": None}
    return LogisticRegression(tol=1e-12, max_iter=10000, **options)


def test_logistic_regression_matches_sklearn(capsys):
    ex = _load("logistic_regression_numpy")
    out = ex.main(n=200, d=3, k=3, seed=1)
    ref = _unpenalised_logistic_regression().fit(out["X"], out["y"])
    np.testing.assert_allclose(out["w"], ref.coef_[0], atol=1e-4)
    assert out["b"] == pytest.approx(ref.intercept_[0], abs=1e-4)
    assert np.all(np.diff(out["losses"]) <= 1e-15)  # gradient descent with step 1/L never goes up

    ref_k = _unpenalised_logistic_regression().fit(out["Xk"], out["yk"])
    # softmax parameters are defined up to a constant per feature across classes: compare centred
    W = out["W"].T - out["W"].T.mean(axis=0)
    Wr = ref_k.coef_ - ref_k.coef_.mean(axis=0)
    np.testing.assert_allclose(W, Wr, atol=1e-4)
    np.testing.assert_allclose(out["bk"] - out["bk"].mean(), ref_k.intercept_ - ref_k.intercept_.mean(), atol=1e-4)
    assert out["intercept_only"] == pytest.approx(out["y"].mean(), abs=1e-9)


def test_intercept_only_converges_to_mean_for_unbalanced_labels():
    ex = _load("logistic_regression_numpy")
    y = np.array([1.0] * 3 + [0.0] * 17)
    b = ex.fit_intercept_only(y)
    assert b == pytest.approx(math.log(0.15 / 0.85), abs=1e-9)  # logit(mean(y))


def test_torch_training_loss_falls(capsys):
    out = _load("torch_training").main(n=300, k=3, steps=60, seed=2)
    losses = out["losses"]
    assert losses[-1] < 0.5 * losses[0] and out["accuracy"] > 0.9
    assert out["grad_gap"] < 1e-6
    assert "mean cross-entropy" in capsys.readouterr().out


def test_likelihood_underflow_against_mpmath(capsys):
    import mpmath

    ex = _load("likelihood_underflow")
    out = ex.main(3000, seed=3)
    assert out["product64"] == 0.0 and out["product32"] == 0.0
    mpmath.mp.dps = 30
    # the exact likelihood, in arbitrary precision (no underflow): its -log is the summed CE
    exact = -mpmath.log(mpmath.fprod(mpmath.mpf(float(v)) for v in out["p_true"]))
    assert out["nll"] == pytest.approx(float(exact), rel=1e-13)
    small = ex.main(40, seed=4)
    assert small["product64"] > 0 and small["product64"] == pytest.approx(math.exp(-small["nll"]), rel=1e-12)


def test_examples_run_as_scripts():
    for name in ("seed_examples", "likelihood_underflow"):
        done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py")], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip()


def test_bundled_data_is_what_make_data_writes(tmp_path):
    import pyarrow.parquet as pq

    make = _load("make_data")
    make.ctr(str(tmp_path / "ctr.parquet"))
    make.ab_clicks(str(tmp_path / "ab.parquet"))
    make.tokens(str(tmp_path / "tokens.parquet"))
    make.species(str(tmp_path / "species.csv"))
    for made, bundled in (("ctr.parquet", "ctr_sample.parquet"), ("tokens.parquet", "tokens_sample.parquet"),
                          ("ab.parquet", "ab_clicks.parquet")):
        assert pq.read_table(tmp_path / made).equals(pq.read_table(EXAMPLES / "data" / bundled)), bundled
    assert (tmp_path / "species.csv").read_text() == (EXAMPLES / "data" / "species_sample.csv").read_text()
    ctr = pq.read_table(EXAMPLES / "data" / "ctr_sample.parquet").to_pydict()
    np.testing.assert_allclose(ctr["p_click"], 1 / (1 + np.exp(-np.asarray(ctr["logit_click"], np.float64))),
                               rtol=1e-6)
