"""Segments and bootstrap intervals (xent.metrics.GroupState): pandas group-by and scikit-learn references,
coverage by simulation, determinism under any split, the paired form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from xent.metrics import BinaryState, GroupState, MulticlassState, SegmentLimitError, intervals, paired_intervals
from xent.metrics._groups import row_values


def _fold(g, y, p, w, seg, *, source="f.parquet", first=0, logits=False, multi=False):
    vals, inv = np.unique(seg, return_inverse=True)
    rv = row_values(y, p, w, logits=logits, eps=1e-15, n_bins=g.n_bins, binary=not multi)
    from xent.metrics import row_buckets

    b = row_buckets(source, first + np.arange(len(y)), g.buckets) if g.buckets > 1 else None
    g.fold(vals.tolist(), inv, b, rv)
    return g


def test_binary_segments_equal_pandas_groupby_and_sklearn():
    rng = np.random.default_rng(1)
    n = 6000
    seg = rng.choice(["a", "b", "c", "d"], n, p=[0.5, 0.3, 0.15, 0.05])
    p = expit(rng.normal(-1, 1.5, n) + (seg == "b"))
    y = (rng.random(n) < p).astype(np.int8)
    w = rng.uniform(0.5, 2.0, n)
    g = _fold(GroupState(n_bins=10), y, p, w, seg)
    m = g.metrics()
    df = pd.DataFrame({"seg": seg, "y": y, "p": p, "w": w})
    for i, key in enumerate(g.keys):
        d = df[df.seg == key]
        prior = np.average(d.y, weights=d.w)
        h = -(prior * np.log(prior) + (1 - prior) * np.log(1 - prior))
        ll = log_loss(d.y, d.p, sample_weight=d.w)
        assert m["rows"][i] == len(d) and m["weight"][i] == pytest.approx(d.w.sum(), rel=1e-12)
        assert m["log_loss"][i] == pytest.approx(ll, rel=1e-12)
        assert m["normalized_entropy"][i] == pytest.approx(ll / h, rel=1e-12)  # the segment's own prior
        assert m["calibration_ratio_pred_over_obs"][i] == pytest.approx((d.w * d.p).sum() / (d.w * d.y).sum(), rel=1e-12)
        assert m["brier"][i] == pytest.approx(brier_score_loss(d.y, d.p, sample_weight=d.w), rel=1e-12)
        assert m["accuracy"][i] == pytest.approx(np.average((d.p >= 0.5) == d.y, weights=d.w), rel=1e-12)
        b = np.minimum((d.p * 10).astype(int), 9)
        gb = d.assign(b=b, wp=d.w * d.p, wy=d.w * d.y).groupby("b")[["w", "wp", "wy"]].sum()
        assert m["ece"][i] == pytest.approx((gb.wp - gb.wy).abs().sum() / d.w.sum(), rel=1e-12)
        auc = roc_auc_score(d.y, d.p, sample_weight=d.w)
        assert abs(m["roc_auc"][i] - auc) <= m["roc_auc_error_bound"][i] < 0.01


def test_multiclass_segments_macro_auc_and_top_label_calibration():
    rng = np.random.default_rng(2)
    n, k = 4000, 3
    z = rng.normal(0, 1.5, (n, k))
    P = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(P, axis=1)).sum(axis=1).clip(0, k - 1)
    seg = rng.integers(0, 3, n)
    g = _fold(GroupState(k), y, P, None, seg, multi=True)
    m = g.metrics()
    for i, key in enumerate(g.keys):
        s = seg == key
        assert m["log_loss"][i] == pytest.approx(log_loss(y[s], P[s], labels=range(k)), rel=1e-12)
        auc = roc_auc_score(y[s], P[s], multi_class="ovr", average="macro")
        assert abs(m["roc_auc"][i] - auc) <= m["roc_auc_error_bound"][i] + 1e-12
        conf, hit = P[s].max(axis=1), P[s].argmax(axis=1) == y[s]
        assert m["calibration_ratio_pred_over_obs"][i] == pytest.approx(conf.sum() / hit.sum(), rel=1e-12)
        prior = np.bincount(y[s], minlength=k) / s.sum()
        assert m["normalized_entropy"][i] == pytest.approx(m["log_loss"][i] / -(prior * np.log(prior)).sum())


# The known model of the coverage simulation: z ~ N(MU, SD), p = sigmoid(z), y ~ Bernoulli(p).
MU, SD = -1.0, 1.5


def _truth():
    """The model's expected log loss E[H(p)] and its AUC P(z_pos > z_neg), by quadrature on a fine grid."""
    z = np.linspace(MU - 10 * SD, MU + 10 * SD, 200_001)
    phi = np.exp(-0.5 * ((z - MU) / SD) ** 2)
    s = expit(z)
    ent = -(s * np.log(s) + (1 - s) * np.log1p(-s))
    f1, f0 = phi * s, phi * (1 - s)
    f1, f0 = f1 / f1.sum(), f0 / f0.sum()
    return float((phi * ent).sum() / phi.sum()), float((f1 * (np.cumsum(f0) - 0.5 * f0)).sum())


def test_coverage_of_the_95_percent_intervals_by_simulation():
    """200 data sets of 2,000 rows from the known model: the 95% intervals of the log loss and of the
    ROC AUC cover the model's true values 92-98% of the time."""
    true_ll, true_auc = _truth()
    sims, n, hits_ll, hits_auc = 200, 2000, 0, 0
    for i in range(sims):
        rng = np.random.default_rng([5, i])
        p = expit(rng.normal(MU, SD, n))
        y = (rng.random(n) < p).astype(np.int8)
        g = _fold(GroupState(buckets=64), y, p, None, np.zeros(n, np.int64), source=f"sim{i}.parquet")
        iv = intervals(g, level=0.95, replicates=400, seed=i, auc=[roc_auc_score(y, p)])
        hits_ll += iv["log_loss"][0, 0] <= true_ll <= iv["log_loss"][0, 1]
        hits_auc += iv["roc_auc"][0, 0] <= true_auc <= iv["roc_auc"][0, 1]
    assert 0.92 <= hits_ll / sims <= 0.98
    assert 0.92 <= hits_auc / sims <= 0.98


def test_intervals_do_not_depend_on_the_split_or_the_order():
    rng = np.random.default_rng(3)
    n = 5000
    p = expit(rng.normal(0, 2, n))
    y = (rng.random(n) < p).astype(np.int8)
    seg = rng.integers(0, 5, n)
    whole = _fold(GroupState(buckets=16), y, p, None, seg)
    parts = []
    for a, b in ((3000, 5000), (0, 1), (1, 3000)):  # other order, other batches: the same rows, the same buckets
        parts.append(_fold(GroupState(buckets=16), y[a:b], p[a:b], None, seg[a:b], first=a))
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert sorted(merged.keys) == sorted(whole.keys)
    merged = merged.aligned(whole.keys)
    a = intervals(whole, level=0.9, replicates=300, seed=1)
    b = intervals(merged, level=0.9, replicates=300, seed=1)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12)
    c = intervals(whole, level=0.9, replicates=300, seed=2)
    assert not np.allclose(a["log_loss"], c["log_loss"])  # the seed matters, and is stated in the output


def test_paired_intervals_of_a_model_against_itself_and_a_better_one():
    rng = np.random.default_rng(4)
    n = 8000
    z = rng.normal(-1, 1.5, n)
    y = (rng.random(n) < expit(z)).astype(np.int8)
    noisy = expit(z + rng.normal(0, 1.0, n))  # model A: the truth plus noise
    exact = expit(z)  # model B: the truth
    seg = rng.integers(0, 2, n)
    a = _fold(GroupState(buckets=64), y, noisy, None, seg)
    b = _fold(GroupState(buckets=64), y, exact, None, seg)
    keys, same = paired_intervals(a, a.copy(), level=0.95, replicates=300, seed=0)
    assert keys == a.keys and np.all(same["log_loss"] == 0.0)
    keys, d = paired_intervals(a, b, level=0.95, replicates=300, seed=0)
    assert np.all(d["log_loss"][:, 1] < 0)  # B's log loss is lower, and the paired interval knows it
    assert np.all(d["roc_auc"][:, 0] > 0)
    # pairing narrows the interval of the difference below what two independent intervals give
    ia, ib = intervals(a, level=0.95, replicates=300, seed=0), intervals(b, level=0.95, replicates=300, seed=0)
    width = d["log_loss"][:, 1] - d["log_loss"][:, 0]
    assert np.all(width < (ia["log_loss"][:, 1] - ia["log_loss"][:, 0]) + (ib["log_loss"][:, 1] - ib["log_loss"][:, 0]))


def test_state_with_groups_merges_and_limits_segments():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 100).astype(np.int8)
    p = rng.random(100)
    s = BinaryState().with_groups(("c",), max_segments=3)
    s.update(y, p)
    s.fold_groups(y, p, None, by={"c": (["x", "y", None], rng.integers(0, 3, 100))}, source="f", rows=np.arange(100))
    with pytest.raises(SegmentLimitError, match="more than 3 distinct"):
        s.fold_groups(y, p, None, by={"c": (["z"], np.zeros(100, np.int64))}, source="f", rows=np.arange(100))
    with pytest.raises(ValueError, match="grouped by"):
        s.merge(BinaryState())
    m = MulticlassState(3).with_groups((), buckets=8)
    assert list(m.groups) == [None] and m.groups[None].buckets == 8
    with pytest.raises(ValueError, match="level"):
        intervals(m.groups[None], level=1.0)
