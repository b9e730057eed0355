"""Hypothesis properties of the losses, and mpmath high-precision references at the extremes."""

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import xent

logit = st.floats(-50.0, 50.0, allow_nan=False)
SETTINGS = settings(max_examples=40, deadline=None)


@SETTINGS
@given(
    arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 5)), elements=logit),
    st.floats(-1e3, 1e3),
    st.data(),
)
def test_logits_shift_invariance(z, shift, data):
    n, c = z.shape
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    a, ga = xent.sparse_categorical_cross_entropy(y, z, from_logits=True, label_smoothing=0.1, return_grad=True)
    b, gb = xent.sparse_categorical_cross_entropy(y, z + shift, from_logits=True, label_smoothing=0.1, return_grad=True)
    tol = 1e-12 * (1 + abs(shift))
    np.testing.assert_allclose(b, a, atol=tol)
    np.testing.assert_allclose(gb, ga, atol=tol)


@SETTINGS
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.just(2)), elements=logit), st.data())
def test_two_class_softmax_equals_bce_of_logit_difference(z, data):
    n = z.shape[0]
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    ce = xent.sparse_categorical_cross_entropy(y, z, from_logits=True)
    # Label 0 is the "positive" of sigmoid(z0 - z1).
    bce = xent.binary_cross_entropy((y == 0).astype(float), z[:, 0] - z[:, 1], from_logits=True)
    np.testing.assert_allclose(ce, bce, rtol=1e-12, atol=1e-14)


@SETTINGS
@given(st.lists(st.integers(0, 1), min_size=2, max_size=30).filter(lambda v: 0 < sum(v) < len(v)))
def test_constant_prediction_mle_is_the_mean(ys):
    y = np.array(ys, dtype=float)
    mu = y.mean()
    best = xent.binary_cross_entropy(y, np.full_like(y, mu))
    for p in (mu - 1e-3, mu + 1e-3, mu / 2, (1 + mu) / 2):
        assert xent.binary_cross_entropy(y, np.full_like(y, p)) > best
    # The gradient of the mean loss vanishes at the MLE.
    _, g = xent.binary_cross_entropy(y, np.full_like(y, mu), return_grad=True)
    assert abs(g.sum()) < 1e-12


def _finite_difference(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _to_probs_rows(z):
    return xent.softmax(z) * 0.98 + 0.005  # strictly inside (eps, 1 - eps): no clipping


def _to_probs(z):
    return 0.05 + 0.9 / (1 + np.exp(-z))


# name -> (loss of (y, x), map from the drawn reals to the point x where the gradient is checked)
FD_CASES = {
    "sparse": (lambda y, x, **o: xent.sparse_categorical_cross_entropy(
        y.argmax(-1), x, from_logits=True, class_weights=np.array([1.0, 2.0, 0.5]), label_smoothing=0.2, **o), None),
    "categorical-probs": (lambda y, x, **o: xent.categorical_cross_entropy(y, x, base=2, **o), _to_probs_rows),
    "binary": (lambda y, x, **o: xent.binary_cross_entropy(y, x, from_logits=True, pos_weight=1.7, **o), None),
    "binary-probs": (lambda y, x, **o: xent.binary_cross_entropy(y, x, label_smoothing=0.1, **o), _to_probs),
    "binary-focal": (lambda y, x, **o: xent.binary_focal_cross_entropy(y, x, from_logits=True, alpha=0.3, **o), None),
    "binary-focal-probs": (lambda y, x, **o: xent.binary_focal_cross_entropy(y, x, gamma=0.5, **o), _to_probs),
    "categorical-focal": (lambda y, x, **o: xent.categorical_focal_cross_entropy(
        y, x, from_logits=True, gamma=1.5, alpha=np.array([0.2, 1.0, 0.7]), **o), None),
    "categorical-focal-probs": (lambda y, x, **o: xent.categorical_focal_cross_entropy(y, x, **o), _to_probs_rows),
}


@pytest.mark.parametrize("case", list(FD_CASES))
@settings(max_examples=15, deadline=None)
@given(
    arrays(np.float64, (3, 3), elements=st.floats(-4, 4)),
    arrays(np.float64, (3, 3), elements=st.floats(0, 1)),
)
def test_gradient_equals_finite_differences(case, z, y):
    fn, to_point = FD_CASES[case]
    x = z if to_point is None else to_point(z)
    _, g = fn(y, x, return_grad=True)
    fd = _finite_difference(lambda v: float(fn(y, v)), x)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- mpmath references

mpmath.mp.dps = 60


def _mp_log_softmax(z, k):
    # 700 digits: a loss of e^-700 next to logits of 700 needs ~310 digits to be resolved at all.
    with mpmath.workdps(700):
        zs = [mpmath.mpf(float(v)) for v in z]
        return +(zs[k] - mpmath.log(mpmath.fsum(mpmath.e**v for v in zs)))


@pytest.mark.parametrize(
    "z",
    [
        [0.0, 1e4, -1e4],
        [1e4, 1e4 - 1e-3, 0.0],
        [-1e4, -1e4 + 30, -1e4 - 5],
        [700.0, -700.0, 0.5],
        [1e300, -1e300, 0.0],
    ],
)
def test_sparse_extreme_logits_against_mpmath(z):
    z = np.array(z)
    for k in range(3):
        got, g = xent.sparse_categorical_cross_entropy(np.array(k), z, from_logits=True, return_grad=True)
        ref = -_mp_log_softmax(z, k)
        # log_softmax is computed as (z - max) - log(sum exp(z - max)): relative accuracy even for a
        # 1e-14 loss next to logits of 1e4 (z - lse(z) would lose it to one ulp of max |z|, 1.8e-12).
        np.testing.assert_allclose(got, float(ref), rtol=1e-14, atol=0)
        assert np.all(np.isfinite(g))
        ref_g = [float(mpmath.e ** _mp_log_softmax(z, j) - (j == k)) for j in range(3)]
        np.testing.assert_allclose(g, ref_g, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("zv", [-1e4, -745.0, -40.0, -1e-8, 0.0, 1e-8, 37.0, 710.0, 1e4])
def test_binary_extreme_logits_against_mpmath(zv):
    z = mpmath.mpf(zv)
    for y in (0.0, 1.0, 0.3):
        got, g = xent.binary_cross_entropy(np.array(y), np.array(zv), from_logits=True, pos_weight=2.0, return_grad=True)
        ref = -(2 * y * -mpmath.log1p(mpmath.e**-z) + (1 - y) * -mpmath.log1p(mpmath.e**z))
        np.testing.assert_allclose(got, float(ref), rtol=1e-14)
        p = 1 / (1 + mpmath.e**-z)
        ref_g = -2 * y * (1 - p) + (1 - y) * p
        np.testing.assert_allclose(g, float(ref_g), rtol=1e-13, atol=1e-300)


def test_tiny_probabilities_against_mpmath():
    p = np.array([[1e-300, 1.0 - 1e-300], [1e-17, 1 - 1e-17], [1e-10, 1 - 1e-10]])
    y = np.array([0, 0, 0])
    got = xent.sparse_categorical_cross_entropy(y, p, eps=0.0, reduction="none")
    np.testing.assert_allclose(got, [float(-mpmath.log(mpmath.mpf(v))) for v in p[:, 0]], rtol=1e-15)
    # Binary: log(1 - p) for tiny p needs log1p to keep its digits.
    b = xent.binary_cross_entropy(np.zeros(3), np.array([1e-300, 1e-17, 3e-10]), eps=0.0, reduction="none")
    np.testing.assert_allclose(b, [float(-mpmath.log1p(-mpmath.mpf(v))) for v in (1e-300, 1e-17, 3e-10)], rtol=1e-15)


def test_binary_focal_confident_logits_stay_exact():
    # 1 - p_t for z = 40, y = 1 is sigmoid(-40) ~ 4e-18: computing it as 1 - sigmoid(40) would give 0.
    got = xent.binary_focal_cross_entropy(np.array([1.0]), np.array([40.0]), from_logits=True, gamma=1.0, reduction="sum")
    z = mpmath.mpf(40)
    ref = (1 / (1 + mpmath.e**z)) * mpmath.log1p(mpmath.e**-z)
    np.testing.assert_allclose(got, float(ref), rtol=1e-14)
