"""Metric states against scikit-learn, by hand, across kernels and under any split."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit, softmax
from sklearn.metrics import accuracy_score, brier_score_loss, d2_log_loss_score, log_loss

from xent.metrics import BinaryState, MulticlassState

EPS32 = float(np.finfo(np.float32).eps)


def _binary_data(n=3000, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    p = expit(rng.normal(-0.5, 2.0, n)).astype(dtype)
    y = (rng.random(n) < p).astype(np.int8)
    w = rng.random(n) * 3
    return y, p, w


def _multi_data(n=2000, k=4, seed=1):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, (n, k))
    y = rng.integers(0, k, n)
    return y, z, softmax(z, axis=1), rng.random(n)


@pytest.fixture(params=["native", "numpy"])
def kernel(request, monkeypatch):
    monkeypatch.setenv("XENT_SCORE_KERNEL", request.param)
    return request.param


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_equals_sklearn(kernel, weighted, dtype):
    y, p, w = _binary_data(dtype=dtype)
    p[:3] = [0.0, 1.0, 0.5]  # clipped ends and the accuracy threshold
    y[:3] = [1, 0, 1]
    sw = w if weighted else None
    r = BinaryState().update(y, p, weights=sw).compute()
    eps = float(np.finfo(dtype).eps)
    # sklearn clips at the eps of its input dtype: give it float64 pre-clipped at ours
    pc = np.clip(p.astype(np.float64), eps, 1 - eps)
    assert r.log_loss == pytest.approx(log_loss(y, pc, sample_weight=sw), rel=1e-12)
    assert r.log_loss_bits == pytest.approx(r.log_loss / math.log(2), rel=1e-15)
    assert r.perplexity == pytest.approx(math.exp(r.log_loss), rel=1e-15)
    assert r.brier == pytest.approx(brier_score_loss(y, p.astype(np.float64), sample_weight=sw), rel=1e-12)
    assert r.rig == pytest.approx(d2_log_loss_score(y, pc, sample_weight=sw), rel=1e-10)
    assert r.accuracy == pytest.approx(accuracy_score(y, p >= 0.5, sample_weight=sw), rel=1e-12)
    ww = np.ones(len(y)) if sw is None else sw
    assert r.calibration_ratio_pred_over_obs == pytest.approx((ww * p).sum() / (ww * y).sum(), rel=1e-12)
    assert r.rows == len(y) and r.weight == pytest.approx(ww.sum(), rel=1e-14)


def test_binary_logits_equal_probabilities(kernel):
    rng = np.random.default_rng(3)
    z = rng.normal(0, 3, 500)
    y = (rng.random(500) < expit(z)).astype(np.int64)
    r = BinaryState(from_logits=True).update(y, z).compute()
    assert r.log_loss == pytest.approx(log_loss(y, expit(z)), rel=1e-12)
    assert r.brier == pytest.approx(brier_score_loss(y, expit(z)), rel=1e-12)
    # huge logits: never overflow, exact log-sigmoid
    big = BinaryState(from_logits=True).update(np.array([0, 1]), np.array([800.0, -800.0])).compute()
    assert big.log_loss == pytest.approx(800.0, rel=1e-15)


@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_equals_sklearn(kernel, weighted):
    y, z, P, w = _multi_data()
    sw = w if weighted else None
    labels = list(range(4))
    for state, pred in ((MulticlassState(4), P), (MulticlassState(4, from_logits=True), z)):
        r = state.update(y, pred, weights=sw).compute()
        assert r.log_loss == pytest.approx(log_loss(y, P, sample_weight=sw, labels=labels), rel=1e-12)
        assert r.brier == pytest.approx(brier_score_loss(y, P, sample_weight=sw, labels=labels), rel=1e-12)
        assert r.rig == pytest.approx(d2_log_loss_score(y, P, sample_weight=sw, labels=labels), rel=1e-10)
        assert r.accuracy == pytest.approx(accuracy_score(y, P.argmax(1), sample_weight=sw), rel=1e-12)
        ww = np.ones(len(y)) if sw is None else sw
        for k, row in enumerate(r.classes):
            m = y == k
            assert row.rows == m.sum()
            assert row.prior == pytest.approx(ww[m].sum() / ww.sum(), rel=1e-12)
            assert row.log_loss == pytest.approx(log_loss(y[m], P[m], sample_weight=ww[m], labels=labels), rel=1e-12)
            assert row.calibration_ratio_pred_over_obs == pytest.approx((ww * P[:, k]).sum() / ww[m].sum(), rel=1e-12)


def test_batch_lacking_classes_is_fine(kernel):
    y, _, P, _ = _multi_data(n=400)
    s = MulticlassState(4)
    order = np.argsort(y, kind="stable")  # batches hold one class each
    for chunk in np.array_split(order, 8):
        s.update(y[chunk], P[chunk])
    assert s.compute().log_loss == pytest.approx(log_loss(y, P, labels=range(4)), rel=1e-12)


def test_kernels_agree(monkeypatch):
    y, p, w = _binary_data(n=20000)
    yk, _, P, wk = _multi_data(n=5000)
    out = {}
    for k in ("native", "numpy"):
        monkeypatch.setenv("XENT_SCORE_KERNEL", k)
        out[k] = (BinaryState().update(y, p, weights=w).compute().to_dict(),
                  MulticlassState(4).update(yk, P, weights=wk).compute().to_dict())
    for a, b in zip(out["native"], out["numpy"]):
        for key, v in a.items():
            if isinstance(v, float):
                assert v == pytest.approx(b[key], rel=1e-12), key
        assert [x["rows"] for x in a["reliability"]["bins"]] == [x["rows"] for x in b["reliability"]["bins"]]


def test_ece_by_hand_bin_edges(kernel):
    # 4 bins: [0, .25) [.25, .5) [.5, .75) [.75, 1]; p = 0 -> bin 0, p = 1 -> bin 3, p = .5 -> bin 2
    p = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 0.1])
    y = np.array([0, 1, 0, 1, 1, 0, 0])
    r = BinaryState(n_bins=4).update(y, p).compute().reliability
    assert r.rows == (2, 1, 1, 3)
    conf = [0.05, 0.25, 0.5, (0.75 + 2) / 3]
    obs = [0.0, 1.0, 0.0, 2 / 3]
    assert np.allclose(r.mean_predicted, conf, rtol=1e-15)
    assert np.allclose(r.observed, obs, rtol=1e-15)
    gaps = np.abs(np.array(conf) - np.array(obs))
    assert r.ece == pytest.approx((np.array(r.rows) * gaps).sum() / 7, rel=1e-14)
    assert r.mce == pytest.approx(gaps.max(), rel=1e-14)
    assert r.edges == (0.0, 0.25, 0.5, 0.75, 1.0)


def test_multiclass_ece_top_label_by_hand(kernel):
    P = np.array([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.4, 0.4, 0.2]])
    y = np.array([0, 2, 2, 1])
    r = MulticlassState(3, n_bins=2).update(y, P).compute().reliability
    # confidences 1.0 (last bin, correct), .5 (bin 1, wrong), .8 (bin 1, right), .4 (bin 0, argmax 0: wrong)
    assert r.rows == (1, 3)
    assert r.mean_predicted[0] == pytest.approx(0.4) and r.observed[0] == 0.0
    assert r.mean_predicted[1] == pytest.approx((1.0 + 0.5 + 0.8) / 3) and r.observed[1] == pytest.approx(2 / 3)
    assert r.ece == pytest.approx((0.4 + abs(2.3 - 2)) / 4)


def test_eps_semantics():
    y = np.array([1, 0])
    p = np.array([0.0, 1.0], dtype=np.float32)
    assert BinaryState().update(y, p).compute().log_loss == pytest.approx(-math.log(EPS32), rel=1e-12)
    assert BinaryState(eps=0.01).update(y, p).compute().log_loss == pytest.approx(-math.log(0.01), rel=1e-12)
    assert BinaryState(eps=0.0).update(y, p).compute().log_loss == math.inf


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="index 1: probability outside"):
        BinaryState().update(np.array([0, 1]), np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="index 0: label not in classes"):
        BinaryState().update(np.array([2, 1]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="NaN"):
        BinaryState().update(np.array([0, 1]), np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="sum to 1"):
        MulticlassState(2).update(np.array([0]), np.array([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="weight"):
        BinaryState().update(np.array([0]), np.array([0.5]), weights=np.array([-1.0]))
    with pytest.raises(ValueError, match="shape"):
        BinaryState().update(np.array([0, 1]), np.array([0.5]))
    with pytest.raises(ValueError, match="n_bins"):
        BinaryState().merge(BinaryState(n_bins=3))
    s = BinaryState()
    with pytest.raises(ValueError):
        s.update(np.array([0, 1]), np.array([0.5, 2.0]))
    assert s.rows == 0  # a failed update leaves the state untouched


def test_framework_arrays():
    import jax.numpy as jnp
    import torch

    y, p, w = _binary_data(n=300)
    ref = BinaryState().update(y, p, weights=w).compute().log_loss
    t = BinaryState().update(torch.from_numpy(y), torch.from_numpy(p), weights=torch.from_numpy(w)).compute()
    j = BinaryState().update(jnp.asarray(y), jnp.asarray(p), weights=jnp.asarray(w)).compute()
    assert t.log_loss == ref
    assert j.log_loss == pytest.approx(ref, rel=1e-6)  # JAX without x64 holds the weights in float32
    unweighted = BinaryState().update(y, p).compute().log_loss
    assert BinaryState().update(jnp.asarray(y), jnp.asarray(p)).compute().log_loss == unweighted
    assert BinaryState().update(y.astype(bool), p).compute().log_loss == BinaryState().update(y, p).compute().log_loss


def test_pickle_roundtrip_small():
    y, p, w = _binary_data(n=1000)
    s = BinaryState().update(y, p, weights=w)
    s.add_skipped("missing label", 3)
    s2 = pickle.loads(pickle.dumps(s))
    assert s2.compute() == s.compute() and s2.skipped == {"missing label": 3}
    # bounded by the bins, never the rows: fixed without AUC, at most the non-empty score bins with it
    assert len(pickle.dumps(s)) < 4096 + 16 * len(np.unique(p))
    s3 = BinaryState(auc=False).update(y, p, weights=w)
    assert len(pickle.dumps(s3)) < 4096 and pickle.loads(pickle.dumps(s3)).compute().log_loss == s3.compute().log_loss


def _split_points(n, cuts):
    return sorted(set(min(n, max(0, c)) for c in cuts))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1500), max_size=8), st.integers(0, 2**31), st.booleans())
def test_any_split_equals_one_pass(cuts, seed, multi):
    rng = np.random.default_rng(seed)
    n = 1500
    w = rng.random(n) * 10.0 ** rng.integers(-3, 4, n)  # weights across 6 decades
    if multi:
        z = rng.normal(0, 3, (n, 3))
        y, p = rng.integers(0, 3, n), softmax(z, axis=1)
        make = lambda: MulticlassState(3)  # noqa: E731
    else:
        p = rng.random(n).astype(np.float32)
        y = (rng.random(n) < p).astype(np.int8)
        make = lambda: BinaryState()  # noqa: E731
    one = make().update(y, p, weights=w).compute().to_dict()
    pts = [0, *_split_points(n, cuts), n]
    parts = [make().update(y[a:b], p[a:b], weights=w[a:b]) for a, b in zip(pts, pts[1:])]
    order = rng.permutation(len(parts))
    merged = make()
    for i in order:
        merged.merge(parts[i])
    got = merged.compute().to_dict()
    for key, v in one.items():
        if isinstance(v, float):
            assert got[key] == pytest.approx(v, rel=1e-12, abs=1e-15), key
    for a, b in zip(got["reliability"]["bins"], one["reliability"]["bins"]):
        assert a["rows"] == b["rows"]
        if a["rows"]:
            assert a["mean_predicted"] == pytest.approx(b["mean_predicted"], rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 6))
def test_merge_associative_and_commutative(seed, parts):
    rng = np.random.default_rng(seed)
    states = []
    for _ in range(3):
        m = int(rng.integers(0, 200))
        p = rng.random(m)
        states.append(BinaryState(n_bins=5).update((rng.random(m) < p).astype(np.int8), p,
                                                   weights=rng.random(m) * 1e3))
    a, b, c = states
    left = a.copy().merge(b).merge(c).compute().to_dict()
    right = a.copy().merge(b.copy().merge(c)).compute().to_dict()
    swapped = c.copy().merge(a).merge(b).compute().to_dict()
    for key, v in left.items():
        if isinstance(v, float):
            assert right[key] == pytest.approx(v, rel=1e-14, nan_ok=True), key
            assert swapped[key] == pytest.approx(v, rel=1e-14, nan_ok=True), key


_FALLBACK = r"""
import json, sys, warnings
import numpy as np
sys.modules["xent._native"] = None  # as if the extension was never built: importing it fails
from scipy.special import softmax
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as rec:
    warnings.simplefilter("always")
    from xent.metrics import BinaryState, MulticlassState
    rng = np.random.default_rng(5)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(np.int8)
    P = softmax(rng.normal(0, 2, (3000, 4)), axis=1)
    b = BinaryState().update(y, p).update(y[:100], p[:100])
    m = MulticlassState(4).update(rng.integers(0, 4, 3000), P)
print(json.dumps({"binary": b.compute().log_loss, "multi": m.compute().log_loss,
                  "warnings": [str(w.message) for w in rec if issubclass(w.category, RuntimeWarning)]}))
"""


def test_without_the_extension_same_numbers_and_one_warning():
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _FALLBACK], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out["warnings"]) == 1 and "without its native kernels" in out["warnings"][0]
    assert "pip install" in out["warnings"][0]
    rng = np.random.default_rng(5)
    p = rng.random(5000)
    y = (rng.random(5000) < p).astype(np.int8)
    P = softmax(rng.normal(0, 2, (3000, 4)), axis=1)
    assert out["binary"] == pytest.approx(BinaryState().update(y, p).update(y[:100], p[:100]).compute().log_loss,
                                          rel=1e-12)
    assert out["multi"] == pytest.approx(MulticlassState(4).update(rng.integers(0, 4, 3000), P).compute().log_loss,
                                         rel=1e-12)
