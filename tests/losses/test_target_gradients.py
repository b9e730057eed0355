"""Gradients with respect to targets (and weights) survive where a target is exactly 0 or 1.

Hard targets are where ``0 * log p`` used to be special-cased by ``where(a == 0, 0, a * b)``,
which also zeroed ``d/da``. Each case is checked against the real library computing the same
loss (torch's own losses and optax under autograd), and with optax's ``test_gradient`` check
(``jax.test_util.check_grads``, forward and reverse mode, against finite differences).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import xent


def _data(seed=7):
    rng = np.random.default_rng(seed)
    n, c = 5, 4
    z = rng.normal(size=(n, c)) * 2
    t = np.eye(c)[rng.integers(0, c, size=n)]  # one-hot: most entries are exactly 0, some exactly 1
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True) * 0.96 + 0.01  # strictly inside (eps, 1 - eps)
    zb = rng.normal(size=(n, 3)) * 2
    yb = rng.integers(0, 2, size=(n, 3)).astype(float)
    pb = 0.05 + 0.9 / (1 + np.exp(-zb))
    pw = rng.uniform(0.5, 2.0, size=3)
    return {"z": z, "t": t, "p": p, "zb": zb, "yb": yb, "pb": pb, "pw": pw}


def _torch_cases(torch, F):
    """id -> (xent loss of (target, prediction), torch's loss of (target, prediction), data keys)."""

    def focal_binary(y, z, gamma, alpha):
        p = torch.sigmoid(z)
        ce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        p_t = p * y + (1 - p) * (1 - y)
        return (alpha * y + (1 - alpha) * (1 - y)) * ce * (1 - p_t) ** gamma

    def focal_categorical(t, logp, gamma):
        return -(t * (1 - logp.exp()) ** gamma * logp).sum(-1)

    return {
        "categorical-logits": (
            lambda t, z: xent.categorical_cross_entropy(t, z, from_logits=True),
            lambda t, z: F.cross_entropy(z, t), ("t", "z")),
        "categorical-probs": (
            lambda t, p: xent.categorical_cross_entropy(t, p),
            lambda t, p: -(t * p.log()).sum(-1).mean(), ("t", "p")),
        "binary-probs": (
            lambda y, p: xent.binary_cross_entropy(y, p),
            lambda y, p: F.binary_cross_entropy(p, y), ("yb", "pb")),
        "binary-logits": (
            lambda y, z: xent.binary_cross_entropy(y, z, from_logits=True, pos_weight=torch.asarray(PW)),
            lambda y, z: F.binary_cross_entropy_with_logits(z, y, pos_weight=torch.asarray(PW)), ("yb", "zb")),
        "binary-focal-logits": (
            lambda y, z: xent.binary_focal_cross_entropy(y, z, from_logits=True, gamma=2.0, alpha=0.25),
            lambda y, z: focal_binary(y, z, 2.0, 0.25).mean(), ("yb", "zb")),
        "binary-focal-probs": (
            lambda y, p: xent.binary_focal_cross_entropy(y, p, gamma=1.5),
            lambda y, p: (F.binary_cross_entropy(p, y, reduction="none")
                          * (p * (1 - y) + (1 - p) * y) ** 1.5).mean(), ("yb", "pb")),
        "categorical-focal-logits": (
            lambda t, z: xent.categorical_focal_cross_entropy(t, z, from_logits=True, gamma=2.0),
            lambda t, z: focal_categorical(t, F.log_softmax(z, -1), 2.0).mean(), ("t", "z")),
        "categorical-focal-probs": (
            lambda t, p: xent.categorical_focal_cross_entropy(t, p, gamma=0.5),
            lambda t, p: focal_categorical(t, p.log(), 0.5).mean(), ("t", "p")),
        "information-cross-entropy": (
            lambda t, p: xent.cross_entropy(t, p).sum(),
            lambda t, p: -torch.special.xlogy(t, p).sum(), ("t", "p")),
    }


PW = np.array([0.7, 1.0, 1.8])
CASES = ["categorical-logits", "categorical-probs", "binary-probs", "binary-logits", "binary-focal-logits",
         "binary-focal-probs", "categorical-focal-logits", "categorical-focal-probs", "information-cross-entropy"]


@pytest.mark.parametrize("case", CASES)
def test_torch_target_gradient_matches_torch(case):
    import torch
    import torch.nn.functional as F

    ours, theirs, keys = _torch_cases(torch, F)[case]
    d = _data()
    y, x = (torch.asarray(d[k]) for k in keys)
    assert torch.any(y == 0) and torch.any(y == 1)
    grads = []
    for fn in (ours, theirs):
        yy = y.clone().requires_grad_(True)
        xx = x.clone().requires_grad_(True)
        with warnings.catch_warnings():
            # e.g. torch's "unspecified requires_grad" warning when a target tensor is converted
            warnings.simplefilter("error")
            out = fn(yy, xx)
        out.sum().backward()
        grads.append((out.detach(), yy.grad, xx.grad))
    (lo, gy, gx), (lt, gy_ref, gx_ref) = grads
    np.testing.assert_allclose(lo.numpy(), lt.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gx.numpy(), gx_ref.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gy.numpy(), gy_ref.numpy(), rtol=1e-10, atol=1e-14)
    assert torch.all(gy[y == 0] != 0)  # the derivative at a target of exactly 0 is not dropped


def _focal_plain(jnp, y, z, gamma, alpha):
    """torchvision's sigmoid_focal_loss, written out: optax's own gradient with respect to hard labels
    is wrong (its logsumexp with ``b = [1 - y, y]`` drops d/db where b == 0; finite differences
    disagree with it), so it is the reference for values and logit gradients only."""
    import jax

    p = jax.nn.sigmoid(z)
    ce = -(y * jax.nn.log_sigmoid(z) + (1 - y) * jax.nn.log_sigmoid(-z))
    return (alpha * y + (1 - alpha) * (1 - y)) * ce * (p * (1 - y) + (1 - p) * y) ** gamma


def _jax_cases(jnp, optax):
    """id -> (xent loss of (target, logits), reference loss of (target, logits), data keys)."""
    return {
        "categorical-logits": (
            lambda t, z: xent.categorical_cross_entropy(t, z, from_logits=True),
            lambda t, z: optax.softmax_cross_entropy(z, t).mean(), ("t", "z")),
        "binary-logits": (
            lambda y, z: xent.binary_cross_entropy(y, z, from_logits=True),
            lambda y, z: optax.sigmoid_binary_cross_entropy(z, y).mean(), ("yb", "zb")),
        "binary-focal-logits": (
            lambda y, z: xent.binary_focal_cross_entropy(y, z, from_logits=True, gamma=2.0, alpha=0.25),
            lambda y, z: _focal_plain(jnp, y, z, 2.0, 0.25).mean(), ("yb", "zb")),
        "categorical-focal-logits": (
            lambda t, z: xent.categorical_focal_cross_entropy(t, z, from_logits=True, gamma=2.0),
            lambda t, z: -(t * (1 - jnp.exp(z - _lse(jnp, z))) ** 2 * (z - _lse(jnp, z))).sum(-1).mean(), ("t", "z")),
        "information-cross-entropy": (
            lambda t, p: xent.cross_entropy(t, p).sum(),
            lambda t, p: -(t * jnp.log(p)).sum(), ("t", "p")),
    }


def _lse(jnp, z):
    import jax

    return jax.nn.logsumexp(z, axis=-1, keepdims=True)


@pytest.mark.parametrize("case", ["categorical-logits", "binary-logits", "binary-focal-logits",
                                  "categorical-focal-logits", "information-cross-entropy"])
def test_jax_target_gradient_matches_optax(case):
    import jax
    import jax.numpy as jnp
    import optax
    from jax.test_util import check_grads

    jax.config.update("jax_enable_x64", True)
    ours, theirs, keys = _jax_cases(jnp, optax)[case]
    d = _data()
    y, x = (jnp.asarray(d[k]) for k in keys)
    # Under jit: eager JAX compiles each small op on first use, which costs seconds per case.
    ours_j, theirs_j = jax.jit(ours), jax.jit(theirs)
    np.testing.assert_allclose(ours_j(y, x), theirs_j(y, x), rtol=1e-12)
    g, g_ref = jax.jit(jax.grad(ours, (0, 1)))(y, x), jax.jit(jax.grad(theirs, (0, 1)))(y, x)
    np.testing.assert_allclose(g[0], g_ref[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g[1], g_ref[1], rtol=1e-10, atol=1e-14)
    assert np.all(np.asarray(g[0])[np.asarray(y) == 0] != 0)
    v = jnp.asarray(np.random.default_rng(1).normal(size=y.shape))
    jvp = jax.jit(lambda f, yy: jax.jvp(lambda t: f(t, x), (yy,), (v,))[1], static_argnums=0)
    np.testing.assert_allclose(jvp(ours, y), jvp(theirs, y), rtol=1e-10, atol=1e-14)
    # optax's own test_gradient: both arguments, forward and reverse mode, against finite differences.
    # Under jit also so that a target nudged just below 0 by the finite difference is not rejected.
    check_grads(ours_j, (y, x), order=1, modes=("fwd", "rev"), eps=1e-6)
    if case == "binary-focal-logits":
        # optax agrees on values and logit gradients (not on label gradients, see _focal_plain).
        opt = jax.jit(lambda z: optax.sigmoid_focal_loss(z, y, alpha=0.25, gamma=2.0).mean())
        np.testing.assert_allclose(opt(x), ours_j(y, x), rtol=1e-12)
        np.testing.assert_allclose(jax.jit(jax.grad(opt))(x), g[1], rtol=1e-10, atol=1e-14)


def test_torch_gradient_wrt_zero_sample_weight_is_the_loss():
    """d(sum_i w_i l_i)/d w_i = l_i, also where w_i == 0 (the reduction's zero-weight guard kept it)."""
    import torch

    d = _data()
    y, z = torch.asarray(d["yb"][:, 0]), torch.asarray(d["zb"][:, 0])
    w = torch.tensor([0.0, 1.0, 0.0, 2.0, 0.5], dtype=torch.float64, requires_grad=True)
    xent.binary_cross_entropy(y, z, from_logits=True, weights=w, reduction="sum").backward()
    per = xent.binary_cross_entropy(y, z, from_logits=True, reduction="none")
    np.testing.assert_allclose(w.grad.numpy(), per.numpy(), rtol=1e-12)
