"""xent.siglip_loss and xent.clip_loss: float64 formulas written here, every backend, analytic gradients
against torch autograd and jax.grad (also under jax.jit), properties (hypothesis) and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_expit, logsumexp

import xent


def _siglip_reference(x, y, s, b):
    """Per-row sums of -log sigmoid(z l) from the definition, in float64 (scipy's log_expit)."""
    logits = s * x @ y.T + b
    z = np.where(np.eye(len(x), dtype=bool), 1.0, -1.0)
    return -log_expit(z * logits).sum(axis=1)


def _ce_rows(logits, e):
    """Softmax CE of each row with the diagonal as target, smoothing e, written so confident rows stay exact:
    -log p_ii = log(1 + sum_{j != i} e^(l_ij - l_ii)) = logaddexp(0, lse_{j != i}(l_ij - l_ii)), and
    -sum_j q_ij log p_ij = -log p_ii - e/N sum_j (l_ij - l_ii)."""
    n = len(logits)
    gap = logits - np.diag(logits)[:, None]
    off = np.where(np.eye(n, dtype=bool), -np.inf, gap)
    nll = np.logaddexp(0.0, logsumexp(off, axis=1)) if n > 1 else np.zeros(n)
    return nll - e / n * gap.sum(axis=1)


def _clip_reference(x, y, s, e=0.0):
    """Per-pair mean of the row and the column softmax cross-entropy, from the definition."""
    logits = s * x @ y.T
    return (_ce_rows(logits, e) + _ce_rows(logits.T, e)) / 2


def _numeric_grad(f, a, h=1e-6):
    """Central differences of a scalar function of a float64 array (or float)."""
    a = np.asarray(a, dtype=np.float64)
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (f(up) - f(down)) / (2 * h)
    return g


def _data(rng, n=7, d=5, confident=False):
    x = rng.normal(size=(n, d))
    y = x + 0.6 * rng.normal(size=(n, d))
    if confident:
        y = 4 * x  # diagonal logits far above the rest of their row and column
    return x, y


@pytest.mark.parametrize("confident", [False, True])
def test_siglip_equals_the_formula_and_its_gradient(rng, confident):
    x, y = _data(rng, confident=confident)
    s, b = 2.5, -3.0
    per = _siglip_reference(x, y, s, b)
    for reduction, want in (("none", per), ("sum", per.sum()), ("mean", per.sum() / len(x))):
        np.testing.assert_allclose(xent.siglip_loss(x, y, scale=s, bias=b, reduction=reduction), want, rtol=1e-12)
    np.testing.assert_allclose(xent.siglip_loss(x, y, scale=s, bias=b, base=2), per.mean() / math.log(2), rtol=1e-12)
    _, (dx, dy, ds, db) = xent.siglip_loss(x, y, scale=s, bias=b, return_grad=True)

    def mean(x_, y_, s_, b_):
        return _siglip_reference(x_, y_, s_, b_).mean()

    np.testing.assert_allclose(dx, _numeric_grad(lambda a: mean(a, y, s, b), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dy, _numeric_grad(lambda a: mean(x, a, s, b), y), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ds, _numeric_grad(lambda a: mean(x, y, a, b), s), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, _numeric_grad(lambda a: mean(x, y, s, a), b), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("e", [0.0, 0.2])
@pytest.mark.parametrize("confident", [False, True])
def test_clip_equals_the_formula_and_its_gradient(rng, confident, e):
    x, y = _data(rng, confident=confident)
    s = 1.7
    per = _clip_reference(x, y, s, e)
    for reduction, want in (("none", per), ("sum", per.sum()), ("mean", per.mean())):
        np.testing.assert_allclose(xent.clip_loss(x, y, scale=s, label_smoothing=e, reduction=reduction), want,
                                   rtol=1e-12, atol=1e-300)
    _, (dx, dy, ds) = xent.clip_loss(x, y, scale=s, label_smoothing=e, return_grad=True)

    def mean(x_, y_, s_):
        return _clip_reference(x_, y_, s_, e).mean()

    np.testing.assert_allclose(dx, _numeric_grad(lambda a: mean(a, y, s), x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dy, _numeric_grad(lambda a: mean(x, a, s), y), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ds, _numeric_grad(lambda a: mean(x, y, a), s), rtol=1e-6, atol=1e-8)


def test_confident_pairs_keep_their_digits():
    """Losses near e^-40: log(1 + exp(-m)) or lse - l_ii in float64 would lose them; the primitives do not."""
    x = np.eye(4, 6)
    s, b = 80.0, -40.0
    siglip = xent.siglip_loss(x, x, scale=s, bias=b, reduction="none")
    np.testing.assert_allclose(siglip, 4 * np.log1p(np.exp(-40.0)), rtol=1e-14)
    clip = xent.clip_loss(x, x, scale=s, reduction="none")
    np.testing.assert_allclose(clip, np.log1p(3 * np.exp(-80.0)), rtol=1e-14)
    assert 0 < clip[0] < 1e-33


def SIGLIP(x, y, s, b, **o):
    return xent.siglip_loss(x, y, scale=s, bias=b, **o)


def CLIP(x, y, s, b, **o):
    return xent.clip_loss(x, y, scale=s, label_smoothing=0.1, **o)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("fn", [SIGLIP, CLIP], ids=["siglip", "clip"])
def test_backends_agree_with_numpy(backend, rng, fn, reduction):
    x, y = _data(rng)
    s, b = np.float64(1.3), np.float64(-0.7)
    ref_loss, ref_grads = fn(x, y, s, b, reduction=reduction, return_grad=True)
    arrays = [backend.asarray(a) for a in (x, y, s, b)]
    loss, grads = backend.call(fn, *arrays, reduction=reduction, return_grad=True)
    np.testing.assert_allclose(backend.to_numpy(loss), ref_loss, rtol=1e-12)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(backend.to_numpy(g), r, rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("fn", [SIGLIP, CLIP], ids=["siglip", "clip"])
def test_torch_autograd_equals_return_grad(rng, fn, reduction):
    import torch

    x, y = _data(rng)
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, y, 1.3, -0.7)]
    loss, grads = fn(*ts, reduction=reduction, return_grad=True)
    auto = torch.autograd.grad(loss.sum(), ts, allow_unused=True)
    for g, a in zip(grads, auto):
        np.testing.assert_allclose(g.detach().numpy(), a.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("fn", [SIGLIP, CLIP], ids=["siglip", "clip"])
def test_jax_grad_equals_return_grad(rng, fn, jit):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    x, y = _data(rng)
    args = [jnp.asarray(a) for a in (x, y, 1.3, -0.7)]
    auto = jax.grad(lambda *a: fn(*a), argnums=(0, 1, 2, 3))

    def analytic(*a):
        return fn(*a, return_grad=True)[1]

    if jit:
        auto, analytic = jax.jit(auto), jax.jit(analytic)
    got, want = analytic(*args), auto(*args)
    for g, a in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(a), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("lib", ["numpy", "torch"])  # JAX: float32 recompiles every op (seconds); see the backends
def test_float32_in_float32_out_close_to_float64(rng, lib):
    x, y = _data(rng)
    conv = {"numpy": np.asarray, "torch": __import__("torch").asarray}[lib]
    for fn in (SIGLIP, CLIP):
        ref_loss, ref_grads = fn(x, y, 1.3, -0.7, return_grad=True)
        loss, grads = fn(conv(x.astype(np.float32)), conv(y.astype(np.float32)), 1.3, -0.7, return_grad=True)
        assert str(loss.dtype).endswith("float32") and all(str(g.dtype).endswith("float32") for g in grads)
        np.testing.assert_allclose(np.asarray(loss), ref_loss, rtol=2e-5)
        for g, r in zip(grads, ref_grads):
            np.testing.assert_allclose(np.asarray(g), r, rtol=2e-4, atol=2e-5 * np.abs(r).max())


_floats = st.floats(-3.0, 3.0, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(_floats, min_size=3, max_size=3), st.lists(_floats, min_size=3, max_size=3),
       st.floats(0.05, 20.0), st.floats(-15.0, 15.0))
def test_n1_siglip_is_bce_of_one_positive_pair_and_clip_is_zero(a, c, s, b):
    x, y = np.array([a]), np.array([c])
    logit = s * float(x[0] @ y[0]) + b
    want = xent.binary_cross_entropy(np.array([1.0]), np.array([logit]), from_logits=True)
    np.testing.assert_allclose(xent.siglip_loss(x, y, scale=s, bias=b), want, rtol=1e-12, atol=1e-300)
    loss, grads = xent.clip_loss(x, y, scale=s, return_grad=True)
    assert loss == 0.0 and all(np.all(np.asarray(g) == 0.0) for g in grads)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32 - 1), st.booleans())
def test_both_losses_are_invariant_to_permuting_the_pairs(n, seed, clip):
    rng = np.random.default_rng(seed)
    x, y = _data(rng, n=n, d=3)
    perm = rng.permutation(n)
    fn = CLIP if clip else SIGLIP
    loss, grads = fn(x, y, 2.0, -1.0, return_grad=True)
    loss_p, grads_p = fn(x[perm], y[perm], 2.0, -1.0, return_grad=True)
    np.testing.assert_allclose(loss_p, loss, rtol=1e-12)
    np.testing.assert_allclose(grads_p[0], grads[0][perm], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads_p[1], grads[1][perm], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads_p[2:], grads[2:], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(fn(x[perm], y[perm], 2.0, -1.0, reduction="none"),
                               fn(x, y, 2.0, -1.0, reduction="none")[perm], rtol=1e-12)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda x: xent.siglip_loss(x, x[:, :2]), ValueError, r"`y` must have d = 3 columns"),
        (lambda x: xent.clip_loss(x, x[:2]), ValueError, r"`y` must have shape \(4, 3\)"),
        (lambda x: xent.clip_loss(x[:0], x[:0]), ValueError, r"at least one pair \(N >= 1\), got N = 0"),
        (lambda x: xent.siglip_loss(x[0], x[0]), ValueError, r"`x` must have shape \(N, d\)"),
        (lambda x: xent.clip_loss(x, x, scale=0.0), ValueError, r"`scale` must be a finite number > 0"),
        (lambda x: xent.siglip_loss(x, x, scale=-1.0), ValueError, r"`scale` must be a finite number > 0"),
        (lambda x: xent.siglip_loss(x, x, bias=np.inf), ValueError, r"`bias` must be a finite number"),
        (lambda x: xent.siglip_loss(x, x, scale=np.ones(2)), ValueError, r"`scale` must be a real number or a 0-d"),
        (lambda x: xent.siglip_loss(x, x, scale=True), TypeError, r"`scale` must be a real number"),
        (lambda x: xent.clip_loss(x, x, label_smoothing=1.5), ValueError, r"`label_smoothing` must be in \[0, 1\]"),
        (lambda x: xent.clip_loss(x, x, reduction="avg"), ValueError, r"`reduction` must be one of"),
        (lambda x: xent.clip_loss(x, x, return_grad=1), TypeError, r"`return_grad` must be True or False"),
    ],
)
def test_bad_input_names_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call(np.ones((4, 3)))


def test_mixing_libraries_is_an_error():
    import torch

    with pytest.raises(TypeError, match=r"`x` is a numpy array, `y` is a torch array"):
        xent.clip_loss(np.ones((2, 2)), torch.ones(2, 2))
