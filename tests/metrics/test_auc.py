"""ROC AUC and average precision from score histograms: scikit-learn within the reported bound, exact merges."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.metrics import average_precision_score, roc_auc_score

from xent.metrics import BinaryState, MulticlassState
from xent.metrics._auc import auc_from_histogram, average_precision_from_histogram, n_score_bins, score_bins


def _data(n, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 1.5, n)
    p = expit(z)
    y = (rng.random(n) < p).astype(np.int8)
    return y, z, p.astype(dtype), rng.exponential(1.0, n)


@pytest.mark.parametrize("logits", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_auc_and_ap_within_bound_of_sklearn(logits, weighted, dtype):
    y, z, p, w = _data(20_000, 3, dtype)
    x = z.astype(dtype) if logits else p
    sw = w if weighted else None
    r = BinaryState(from_logits=logits).update(y, x, weights=sw).compute()
    auc = roc_auc_score(y, x, sample_weight=sw)
    ap = average_precision_score(y, x, sample_weight=sw)
    assert 0 < r.roc_auc_error_bound < 1e-5
    assert abs(r.roc_auc - auc) <= r.roc_auc_error_bound
    assert abs(r.average_precision - ap) <= r.average_precision_error_bound < 1e-3


def test_bound_is_at_most_1e6_on_continuous_scores():
    """The bench distribution (float32 sigmoid of N(-1, 1.5)): the bound does not grow with rows."""
    y, _, p, _ = _data(1_000_000, 4, np.float32)
    r = BinaryState().update(y, p).compute()
    assert r.roc_auc_error_bound <= 1e-6
    assert abs(r.roc_auc - roc_auc_score(y, p)) <= r.roc_auc_error_bound


def test_ties_and_discrete_scores_equal_sklearn():
    """Tied scores share a bin and count half, as in scikit-learn: exact up to rounding."""
    rng = np.random.default_rng(5)
    p = rng.choice([0.0, 0.1, 0.25, 0.5, 0.75, 1.0], 5000)
    y = (rng.random(5000) < p).astype(np.int8)
    r = BinaryState().update(y, p).compute()
    assert r.roc_auc == pytest.approx(roc_auc_score(y, p), abs=1e-14)
    assert r.average_precision == pytest.approx(average_precision_score(y, p), abs=1e-14)
    const = BinaryState().update(y, np.full(5000, 0.3)).compute()
    # all in one bin: 1/2, as sklearn counts ties; the bound cannot tell ties from any order inside a bin
    assert const.roc_auc == 0.5 == roc_auc_score(y, np.full(5000, 0.3)) and const.roc_auc_error_bound == 0.5
    one = BinaryState().update(np.ones(10, np.int8), np.linspace(0, 1, 10)).compute()
    assert math.isnan(one.roc_auc) and one.average_precision == 1.0  # no negatives: AUC undefined


def test_confident_scores_share_the_outer_bins_and_the_bound_says_so():
    """Logits up to 256 in magnitude keep their order (no rounding of p to 1 first); beyond, they share the
    outermost bin of their side, and the bound covers it."""
    x = np.array([9.0, 30.0, 45.5, 200.0, -9.0, -100.0])
    y = np.array([0, 1, 0, 1, 1, 0], dtype=np.int8)
    r = BinaryState(from_logits=True).update(y, x).compute()
    assert r.roc_auc == pytest.approx(roc_auc_score(y, x), abs=1e-15) and r.roc_auc_error_bound == 0.0
    far = BinaryState(from_logits=True).update(y, x * 30).compute()
    assert abs(far.roc_auc - roc_auc_score(y, x * 30)) <= far.roc_auc_error_bound and far.roc_auc_error_bound > 0
    prob = BinaryState().update(y, expit(x / 3)).compute()  # probabilities within 7.6e-6 of 1 share a bin
    assert abs(prob.roc_auc - roc_auc_score(y, expit(x / 3))) <= prob.roc_auc_error_bound + 1e-15
    assert prob.roc_auc_error_bound > 0


@pytest.mark.parametrize("logits", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_ovr_macro_weighted_and_per_class(logits, weighted):
    rng = np.random.default_rng(6)
    n, k = 6000, 5
    z = rng.normal(0.0, 1.5, (n, k))
    P = softmax(z, axis=1)
    y = (rng.random(n)[:, None] > np.cumsum(P, axis=1)).sum(axis=1).clip(0, k - 1)
    sw = rng.uniform(0, 3, n) if weighted else None
    r = MulticlassState(k, from_logits=logits).update(y, z if logits else P, weights=sw).compute()
    macro = roc_auc_score(y, P, multi_class="ovr", average="macro", sample_weight=sw)
    weighted_ = roc_auc_score(y, P, multi_class="ovr", average="weighted", sample_weight=sw)
    assert abs(r.roc_auc - macro) <= r.roc_auc_error_bound + 1e-12
    assert abs(r.roc_auc_weighted - weighted_) <= r.roc_auc_weighted_error_bound + 1e-12
    assert r.roc_auc_error_bound < 1e-3
    for c in range(k):
        row = r.classes[c]
        assert abs(row.roc_auc - roc_auc_score(y == c, P[:, c], sample_weight=sw)) <= row.roc_auc_error_bound + 1e-12
    d = r.to_dict()
    assert d["roc_auc"] == r.roc_auc and d["classes"][0]["roc_auc"] == r.classes[0].roc_auc


@pytest.mark.parametrize("multi", [False, True])
def test_merge_any_split_is_exact_and_pickles(multi):
    rng = np.random.default_rng(7)
    if multi:
        P = softmax(rng.normal(0, 1.5, (3000, 4)), axis=1)
        y = rng.integers(0, 4, 3000)
        new = lambda: MulticlassState(4)
    else:
        y, _, P, _ = _data(3000, 8)
        new = BinaryState
    w = rng.exponential(1.0, 3000).round(2)
    whole = new().update(y, P, weights=w)
    parts = [new().update(y[a:b], P[a:b], weights=w[a:b]) for a, b in ((0, 1), (1, 1700), (1700, 3000))]
    merged = pickle.loads(pickle.dumps(parts[2])).merge(parts[0].copy()).merge(parts[1])
    a, b = whole.compute(), merged.compute()
    assert a.roc_auc == pytest.approx(b.roc_auc, rel=1e-13) and a.roc_auc_error_bound == pytest.approx(
        b.roc_auc_error_bound, rel=1e-13)
    np.testing.assert_allclose(whole.sums.auc_pos, merged.sums.auc_pos, rtol=1e-13)


def test_binning_is_monotone_and_mirrored():
    rng = np.random.default_rng(9)
    p = np.sort(np.concatenate([rng.random(10_000), [0.0, 1e-30, 0.5, 1 - 1e-16, 1.0], rng.random(100) * 1e-6]))
    b = score_bins(p, logits=False, octaves=16, mantissa_bits=17)
    assert (np.diff(b) >= 0).all() and b.min() >= 0 and b.max() < n_score_bins(16, 17)
    x = np.sort(rng.normal(0, 40, 10_000))
    bl = score_bins(x, logits=True, octaves=16, mantissa_bits=17)
    assert (np.diff(bl) >= 0).all()
    # p and 1 - p land in mirrored bins
    q = np.array([0.01, 0.2, 0.3])
    assert (score_bins(q, logits=False, octaves=8, mantissa_bits=4)
            + score_bins(1 - q, logits=False, octaves=8, mantissa_bits=4) == n_score_bins(8, 4) - 1).all()


def test_bound_formula_by_hand():
    """Bins in score order (1 pos, 1 neg), (0 pos, 2 neg): the positive ties 1 negative and is below 2."""
    pos = np.array([1.0, 0.0])
    neg = np.array([1.0, 2.0])
    auc, bound = auc_from_histogram(pos, neg)
    assert auc == pytest.approx(0.5 / 3) and bound == pytest.approx(0.5 / 3)
    ap, apb = average_precision_from_histogram(np.array([1.0, 1.0]), np.array([0.0, 1.0]))
    # from the top: bin 1 (1 pos, 1 neg): precision 1/2; bin 0 (1 pos): precision 2/3
    assert ap == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert apb >= 0
