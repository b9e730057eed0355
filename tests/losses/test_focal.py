"""xent.binary_focal_cross_entropy and xent.categorical_focal_cross_entropy: start here.

The formulas against torchvision's and by hand, the edges (0 < gamma < 1 where a probability is
exactly 1), traced gamma/alpha. optax's sigmoid_focal_loss: test_binary.py; every backend:
test_loss_backends.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xent

BIG = 1000.0  # sigmoid / softmax saturate to exactly 1 in float64


def _saturated_cases():
    """id -> (loss function of (y, x), y, x, mask of the examples whose p_t is exactly 1)."""
    yb = np.array([1.0, 0.0, 1.0, 0.0])
    zb = np.array([BIG, -BIG, 0.3, -1.2])
    pb = np.array([1.0, 0.0, 0.7, 0.4])
    t = np.eye(3)[[0, 1, 2]]
    z = np.array([[BIG, -BIG, 0.0], [0.2, 2.0, -1.0], [0.5, 0.1, 0.3]])
    p = np.array([[1.0, 0.0, 0.0], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    bfl, cfl = xent.binary_focal_cross_entropy, xent.categorical_focal_cross_entropy
    first_two, first = np.array([True, True, False, False]), np.array([True, False, False])
    return {
        "binary-logits": (lambda y, x, g, **o: bfl(y, x, gamma=g, from_logits=True, **o), yb, zb, first_two),
        "binary-probs-exact": (lambda y, x, g, **o: bfl(y, x, gamma=g, eps=0.0, alpha=0.25, **o), yb, pb, first_two),
        "categorical-logits": (lambda y, x, g, **o: cfl(y, x, gamma=g, from_logits=True, **o), t, z, first),
        "categorical-one-class": (lambda y, x, g, **o: cfl(y, x, gamma=g, from_logits=True, **o),
                                  np.ones((3, 1)), np.array([[2.0], [-1.0], [0.0]]), np.ones(3, bool)),
        "categorical-probs-exact": (lambda y, x, g, **o: cfl(y, x, gamma=g, eps=0.0, **o), t, p, first),
    }


@pytest.mark.parametrize("case", list(_saturated_cases()))
def test_gamma_below_one_at_probability_one_has_finite_autograd(case):
    """torch autograd and jax.grad equal return_grad (0 where p_t == 1), never NaN."""
    import jax
    import jax.numpy as jnp
    import torch

    jax.config.update("jax_enable_x64", True)
    fn, y, x, saturated = _saturated_cases()[case]
    for gamma in (0.5, 1.0):
        _check_saturated(fn, y, x, saturated, gamma, torch, jax, jnp)


def _check_saturated(fn, y, x, saturated, gamma, torch, jax, jnp):
    loss, grad = fn(y, x, gamma, return_grad=True)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    xt = torch.asarray(x).requires_grad_(True)
    fn(torch.asarray(y), xt, gamma).backward()
    np.testing.assert_allclose(xt.grad.numpy(), grad, rtol=1e-12, atol=1e-15)
    gj = jax.jit(jax.grad(lambda v: fn(jnp.asarray(y), v, gamma)))(jnp.asarray(x))
    np.testing.assert_allclose(np.asarray(gj), grad, rtol=1e-12, atol=1e-15)
    assert np.all(grad[saturated] == 0)
    assert all(np.any(row != 0) for row in grad[~saturated])  # every other example has a gradient


def _binary_focal_float64(y, z, gamma, alpha):
    """torchvision's sigmoid_focal_loss in float64 NumPy, the reference."""
    z, y = np.asarray(z, np.float64), np.asarray(y, np.float64)
    p = 1 / (1 + np.exp(-z))
    ce = np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y)
    return (alpha * y + (1 - alpha) * (1 - y)) * ce * (p * (1 - y) + (1 - p) * y) ** gamma


def test_traced_gamma_and_alpha_under_jit_match_optax_and_float64():
    import jax
    import jax.numpy as jnp
    import optax

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(3)
    z = rng.normal(size=(6, 3)) * 3
    y = rng.integers(0, 2, size=(6, 3)).astype(float)
    ours = jax.jit(lambda y, z, g, a: xent.binary_focal_cross_entropy(
        y, z, gamma=g, alpha=a, from_logits=True, reduction="none", return_grad=True))
    theirs = jax.jit(lambda y, z, g, a: optax.sigmoid_focal_loss(z, y, gamma=g, alpha=a))
    theirs_grad = jax.jit(jax.grad(lambda y, z, g, a: optax.sigmoid_focal_loss(z, y, gamma=g, alpha=a).sum(), 1))
    for gamma, alpha in ((2.0, 0.25), (0.5, 0.8), (0.0, 0.5)):  # one compilation serves all three
        args = (jnp.asarray(y), jnp.asarray(z), jnp.asarray(gamma), jnp.asarray(alpha))
        loss, grad = ours(*args)
        np.testing.assert_allclose(loss, _binary_focal_float64(y, z, gamma, alpha), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(loss, theirs(*args), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(grad, theirs_grad(*args), rtol=1e-10, atol=1e-15)
    # float32 under jit: the traced parameters follow the predictions' dtype.
    l32, g32 = ours(jnp.asarray(y, jnp.float32), jnp.asarray(z, jnp.float32), 2.0, 0.25)
    assert l32.dtype == g32.dtype == jnp.float32
    np.testing.assert_allclose(l32, _binary_focal_float64(y, z, 2.0, 0.25), rtol=2e-5, atol=1e-7)
    # Differentiable in gamma, as optax is.
    dg = jax.jit(jax.grad(lambda g: xent.binary_focal_cross_entropy(args[0], args[1], gamma=g, from_logits=True)))(1.5)
    dg_ref = jax.jit(jax.grad(lambda g: optax.sigmoid_focal_loss(args[1], args[0], gamma=g).mean()))(1.5)
    np.testing.assert_allclose(dg, dg_ref, rtol=1e-10)


def test_traced_gamma_and_alpha_categorical_under_jit():
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(4)
    z = rng.normal(size=(5, 4)) * 2
    t = np.eye(4)[rng.integers(0, 4, size=5)]
    f = jax.jit(lambda t, z, g, a: xent.categorical_focal_cross_entropy(
        t, z, gamma=g, alpha=a, from_logits=True, reduction="none", return_grad=True))
    loss, grad = f(jnp.asarray(t), jnp.asarray(z), 1.5, 0.25)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ref = -(0.25 * t * (1 - np.exp(logp)) ** 1.5 * logp).sum(-1)
    np.testing.assert_allclose(loss, ref, rtol=1e-12)
    eager = xent.categorical_focal_cross_entropy(t, z, gamma=1.5, alpha=0.25, from_logits=True, reduction="none",
                                                 return_grad=True)
    np.testing.assert_allclose(grad, eager[1], rtol=1e-12, atol=1e-15)


def test_gamma_as_torch_tensor_with_grad():
    import torch

    z = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    g = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    xent.binary_focal_cross_entropy(y, z, gamma=g, from_logits=True).backward()
    g2 = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    p = torch.sigmoid(z)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
    (ce * (p * (1 - y) + (1 - p) * y) ** g2).mean().backward()
    np.testing.assert_allclose(g.grad.numpy(), g2.grad.numpy(), rtol=1e-12)


def test_gamma_and_alpha_array_errors():
    y, p = np.array([1.0, 0.0]), np.array([0.3, 0.2])
    with pytest.raises(ValueError, match=r"`gamma` must be a number or a 0-d array, got an array of shape \(2,\)"):
        xent.binary_focal_cross_entropy(y, p, gamma=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"`gamma` must be a finite number >= 0, got -1.0"):
        xent.binary_focal_cross_entropy(y, p, gamma=np.array(-1.0))
    with pytest.raises(ValueError, match=r"`alpha` must be in \[0, 1\], got 1.5"):
        xent.binary_focal_cross_entropy(y, p, alpha=np.float32(1.5))
    # A NumPy scalar alpha is a scalar, not a per-class vector.
    t, q = np.eye(3)[:2], np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    np.testing.assert_allclose(xent.categorical_focal_cross_entropy(t, q, alpha=np.float32(0.5)),
                               0.5 * xent.categorical_focal_cross_entropy(t, q), rtol=1e-12)


# --------------------------------------------------------------------------- the formulas (torchvision's)


def T(x):
    return torch.as_tensor(np.asarray(x))


def _torchvision_sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0):
    # torchvision.ops.sigmoid_focal_loss, reduction="none" (no CPU torchvision wheel here).
    p = torch.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss


@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.0])
def test_binary_focal_matches_torchvision_formula(rng, alpha, gamma):
    z = rng.normal(size=(3, 7)) * 3
    y = rng.random((3, 7))  # soft targets work in torchvision's formula too
    ref = _torchvision_sigmoid_focal_loss(T(z), T(y), alpha=-1 if alpha is None else alpha, gamma=gamma)
    got = xent.binary_focal_cross_entropy(y, z, from_logits=True, gamma=gamma, alpha=alpha, reduction="none")
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-12)
    got_p = xent.binary_focal_cross_entropy(y, 1 / (1 + np.exp(-z)), gamma=gamma, alpha=alpha, reduction="none")
    np.testing.assert_allclose(got_p, ref.numpy(), rtol=1e-9)


def test_categorical_focal_formula_and_gamma_zero(rng):
    z = rng.normal(size=(5, 4)) * 2
    t = rng.dirichlet(np.ones(4), size=5)
    w = rng.uniform(0.5, 2, size=4)
    alpha = rng.uniform(0.1, 1, size=4)
    p = torch.softmax(T(z), dim=-1)
    ref = -(T(alpha) * T(w) * T(t) * (1 - p) ** 2.0 * torch.log(p)).sum(-1)
    got = xent.categorical_focal_cross_entropy(t, z, from_logits=True, alpha=alpha, class_weights=w, reduction="none")
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        xent.categorical_focal_cross_entropy(t, z, from_logits=True, gamma=0.0, class_weights=w),
        xent.categorical_cross_entropy(t, z, from_logits=True, class_weights=w),
        rtol=1e-13,
    )
    np.testing.assert_allclose(
        xent.binary_focal_cross_entropy(t[:, 0], z[:, 0], from_logits=True, gamma=0.0, pos_weight=2.0),
        xent.binary_cross_entropy(t[:, 0], z[:, 0], from_logits=True, pos_weight=2.0),
        rtol=1e-13,
    )

