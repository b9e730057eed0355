"""Losses against the real libraries: PyTorch, scikit-learn, optax (and torchvision's formula)."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xent

REDUCTIONS = ["mean", "sum", "none"]


def T(x):
    return torch.as_tensor(np.asarray(x))


# --------------------------------------------------------------------------- PyTorch


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("use_weight", [False, True])
@pytest.mark.parametrize("ignore", [None, 2, -100])
def test_sparse_logits_match_torch_cross_entropy(rng, reduction, smoothing, use_weight, ignore):
    z = rng.normal(size=(7, 4)) * 3
    y = rng.integers(0, 4, size=7)
    if ignore is not None:
        y[[1, 4]] = ignore
    w = rng.uniform(0.2, 2.0, size=4) if use_weight else None
    got = xent.sparse_categorical_cross_entropy(
        y, z, from_logits=True, class_weights=w, ignore_index=ignore, label_smoothing=smoothing,
        reduction=reduction,
    )
    ref = F.cross_entropy(
        T(z), T(y), weight=None if w is None else T(w), ignore_index=-100 if ignore is None else ignore,
        label_smoothing=smoothing, reduction=reduction,
    )
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_sparse_any_class_axis_matches_torch(rng, axis):
    z = rng.normal(size=(3, 5, 4, 2))
    n_classes = z.shape[axis]
    y_shape = tuple(d for i, d in enumerate(z.shape) if i != axis % 4)
    y = rng.integers(0, n_classes, size=y_shape).astype(np.uint8)
    w = rng.uniform(0.5, 1.5, size=n_classes)
    got = xent.sparse_categorical_cross_entropy(y, z, from_logits=True, axis=axis, class_weights=w, label_smoothing=0.1)
    # PyTorch wants the class axis at position 1.
    ref = F.cross_entropy(T(np.moveaxis(z, axis, 1)), T(y.astype(np.int64)), weight=T(w), label_smoothing=0.1)
    np.testing.assert_allclose(got, ref.item(), rtol=1e-12)


def test_sparse_single_example_and_label_dtypes():
    z = np.array([0.3, -1.2, 2.0])
    ref = F.cross_entropy(T(z)[None], torch.tensor([2])).item()
    for dt in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16):
        np.testing.assert_allclose(xent.sparse_categorical_cross_entropy(np.asarray(2, dtype=dt), z, from_logits=True), ref)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_soft_targets_match_torch(rng, reduction, smoothing):
    z = rng.normal(size=(6, 5)) * 2
    t = rng.dirichlet(np.ones(5), size=6)
    got = xent.categorical_cross_entropy(t, z, from_logits=True, label_smoothing=smoothing, reduction=reduction)
    ref = F.cross_entropy(T(z), T(t), label_smoothing=smoothing, reduction=reduction)
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-12)


def test_soft_targets_with_class_weights_documented_difference(rng):
    """Per-example losses and the sum equal PyTorch; the mean divides by sum_i c_i, PyTorch by N."""
    z = rng.normal(size=(6, 5))
    t = rng.dirichlet(np.ones(5), size=6)
    w = rng.uniform(0.2, 3.0, size=5)
    for red in ("none", "sum"):
        np.testing.assert_allclose(
            xent.categorical_cross_entropy(t, z, from_logits=True, class_weights=w, label_smoothing=0.1, reduction=red),
            F.cross_entropy(T(z), T(t), weight=T(w), label_smoothing=0.1, reduction=red).numpy(),
            rtol=1e-12,
        )
    total = F.cross_entropy(T(z), T(t), weight=T(w), label_smoothing=0.1, reduction="sum").item()
    got = xent.categorical_cross_entropy(t, z, from_logits=True, class_weights=w, label_smoothing=0.1)
    np.testing.assert_allclose(got, total / np.sum(t @ w), rtol=1e-12)


def test_one_hot_equals_sparse_with_class_weights(rng):
    z = rng.normal(size=(8, 3))
    y = rng.integers(0, 3, size=8)
    w = np.array([0.5, 2.0, 1.0])
    s = rng.uniform(0, 2, size=8)
    a = xent.categorical_cross_entropy(np.eye(3)[y], z, from_logits=True, class_weights=w, weights=s, label_smoothing=0.2)
    b = xent.sparse_categorical_cross_entropy(y, z, from_logits=True, class_weights=w, weights=s, label_smoothing=0.2)
    np.testing.assert_allclose(a, b, rtol=1e-13)


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


# --------------------------------------------------------------------------- scikit-learn


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


def test_multiclass_matches_sklearn_log_loss(rng):
    from sklearn.metrics import log_loss

    p = rng.dirichlet(np.ones(4) * 0.3, size=15)
    y = rng.integers(0, 4, size=15)
    s = rng.uniform(0, 2, size=15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = log_loss(y, y_proba=p, sample_weight=s, labels=[0, 1, 2, 3])
    np.testing.assert_allclose(xent.sparse_categorical_cross_entropy(y, p, weights=s), ref, rtol=1e-12)
    np.testing.assert_allclose(xent.categorical_cross_entropy(np.eye(4)[y], p, weights=s), ref, rtol=1e-12)


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


# --------------------------------------------------------------------------- optax


def test_optax_softmax_losses(rng):
    import jax.numpy as jnp
    import optax

    z = rng.normal(size=(6, 5)) * 5
    t = rng.dirichlet(np.ones(5), size=6)
    y = rng.integers(0, 5, size=6)
    np.testing.assert_allclose(
        xent.categorical_cross_entropy(t, z, from_logits=True, reduction="none"),
        np.asarray(optax.softmax_cross_entropy(jnp.asarray(z), jnp.asarray(t))),
        rtol=1e-5, atol=1e-6,
    )
    np.testing.assert_allclose(
        xent.sparse_categorical_cross_entropy(y, z, from_logits=True, reduction="none"),
        np.asarray(optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(z), jnp.asarray(y))),
        rtol=1e-5, atol=1e-6,
    )


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


# --------------------------------------------------------------------------- focal (torchvision's formula)


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


def test_seed_worked_examples():
    # 001: categorical CE of p = [0.775, 0.116, 0.039, 0.070] against class 0, in bits and nats.
    p = np.array([0.775, 0.116, 0.039, 0.070])
    np.testing.assert_allclose(xent.sparse_categorical_cross_entropy(0, p, base=2), -np.log2(0.775), rtol=1e-14)
    np.testing.assert_allclose(xent.categorical_cross_entropy(np.eye(4)[0], p), -np.log(0.775), rtol=1e-14)
    # 004: three doors, gifts behind doors 1 and 2, summed CE in nats = 0.68518.
    got = xent.binary_cross_entropy(np.array([1, 1, 0]), np.array([0.8, 0.7, 0.1]), reduction="sum")
    np.testing.assert_allclose(got, -(np.log(0.8) + np.log(0.7) + np.log(0.9)), rtol=1e-14)
    assert round(float(got), 5) == 0.68518
