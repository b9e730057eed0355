"""xent.binary_cross_entropy: start here.

Against the real libraries (PyTorch, scikit-learn, optax). Elsewhere: every backend
(test_loss_backends.py), errors (test_loss_errors.py), properties and mpmath (test_loss_properties.py),
gradients with respect to targets (test_target_gradients.py), Keras (test_keras_parity.py), every
engine over every option (tests/test_parity.py), focal (test_focal.py).
"""


import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xent

REDUCTIONS = ["mean", "sum", "none"]


def T(x):
    return torch.as_tensor(np.asarray(x))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("pos_weight", [None, 3.0, "vector"])
def test_bce_with_logits_matches_torch(rng, reduction, pos_weight):
    z = rng.normal(size=(5, 3)) * 4
    y = rng.integers(0, 2, size=(5, 3)).astype(float)
    pw = rng.uniform(0.5, 4, size=3) if pos_weight == "vector" else pos_weight
    got = xent.binary_cross_entropy(y, z, from_logits=True, pos_weight=pw, reduction=reduction)
    ref = F.binary_cross_entropy_with_logits(
        T(z), T(y), pos_weight=None if pw is None else torch.as_tensor(pw, dtype=torch.float64), reduction=reduction
    )
    # PyTorch loses a few ulps on tiny losses (log(1 + exp(-|z|)) vs log1p): atol on the 1e-16 scale.
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-12, atol=1e-14)


def test_bce_sample_weight_vs_torch_weight(rng):
    """"sum" agrees with PyTorch's `weight`; "mean" divides by the total weight (PyTorch: by N)."""
    z = rng.normal(size=10)
    y = rng.random(10)  # soft targets
    s = rng.uniform(0, 3, size=10)
    np.testing.assert_allclose(
        xent.binary_cross_entropy(y, z, from_logits=True, weights=s, reduction="sum"),
        F.binary_cross_entropy_with_logits(T(z), T(y), weight=T(s), reduction="sum").item(),
        rtol=1e-12,
    )
    torch_mean = F.binary_cross_entropy_with_logits(T(z), T(y), weight=T(s)).item()
    np.testing.assert_allclose(xent.binary_cross_entropy(y, z, from_logits=True, weights=s), torch_mean * 10 / s.sum())


def test_bce_probabilities_match_torch(rng):
    p = rng.uniform(0.01, 0.99, size=(4, 4))
    y = rng.random((4, 4))
    for red in REDUCTIONS:
        np.testing.assert_allclose(
            xent.binary_cross_entropy(y, p, reduction=red), F.binary_cross_entropy(T(p), T(y), reduction=red).numpy(),
            rtol=1e-12,
        )


def test_label_smoothing_formulas_match_torch(rng):
    z = rng.normal(size=9)
    y = rng.integers(0, 2, size=9).astype(float)
    e = 0.2
    np.testing.assert_allclose(
        xent.binary_cross_entropy(y, z, from_logits=True, label_smoothing=e),
        F.binary_cross_entropy_with_logits(T(z), T(y * (1 - e) + e / 2)).item(),
        rtol=1e-12,
    )


def test_binary_matches_sklearn_log_loss_with_clipping(rng):
    from sklearn.metrics import log_loss

    y = rng.integers(0, 2, size=12)
    p = rng.random(12)
    p[[0, 1, 2, 3]] = [0.0, 1.0, 1e-20, 1 - 1e-17]  # exercise the clip at both ends
    y[[0, 1, 2, 3]] = [1, 0, 1, 0]
    s = rng.uniform(0, 2, size=12)
    for sw in (None, s):
        ref = log_loss(y, y_proba=p, sample_weight=sw, labels=[0, 1])
        np.testing.assert_allclose(xent.binary_cross_entropy(y, p, weights=sw), ref, rtol=1e-13)
    for dt in (np.float32,):
        ref = log_loss(y, y_proba=p.astype(dt), labels=[0, 1])
        np.testing.assert_allclose(xent.binary_cross_entropy(y, p.astype(dt)), ref, rtol=1e-5)


def test_exact_mode_gives_inf_where_sklearn_clips():
    y = np.array([1, 0])
    p = np.array([0.0, 0.5])
    with np.errstate(divide="ignore"):
        assert np.isinf(xent.binary_cross_entropy(y, p, eps=0.0))
    assert np.isfinite(xent.binary_cross_entropy(y, p))
    np.testing.assert_allclose(
        xent.binary_cross_entropy(y, p), (-np.log(np.finfo(float).eps) + np.log(2)) / 2, rtol=1e-14
    )
    with np.errstate(divide="ignore"):
        assert np.isinf(xent.sparse_categorical_cross_entropy(np.array([1]), np.array([[1.0, 0.0]]), eps=0.0))


def test_optax_sigmoid_losses(rng):
    import jax.numpy as jnp
    import optax

    z = rng.normal(size=(4, 5)) * 3
    y = rng.integers(0, 2, size=(4, 5)).astype(float)
    np.testing.assert_allclose(
        xent.binary_cross_entropy(y, z, from_logits=True, reduction="none"),
        np.asarray(optax.sigmoid_binary_cross_entropy(jnp.asarray(z), jnp.asarray(y))),
        rtol=1e-5, atol=1e-6,
    )
    for alpha in (None, 0.25):
        for gamma in (0.0, 1.5, 2.0):
            np.testing.assert_allclose(
                xent.binary_focal_cross_entropy(y, z, from_logits=True, gamma=gamma, alpha=alpha, reduction="none"),
                np.asarray(optax.sigmoid_focal_loss(jnp.asarray(z), jnp.asarray(y), alpha=alpha, gamma=gamma)),
                rtol=1e-5, atol=1e-6,
            )

