"""xent.categorical_cross_entropy and xent.sparse_categorical_cross_entropy: start here.

Against the real libraries (PyTorch, scikit-learn, optax) and the worked examples. Elsewhere: every
backend (test_loss_backends.py), errors (test_loss_errors.py), properties and mpmath
(test_loss_properties.py), memory (test_sparse_memory.py), gradients with respect to targets
(test_target_gradients.py), Keras (test_keras_parity.py), every engine over every option
(tests/test_parity.py), the engine (tests/engine), the torch kernels (tests/torch).
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xent

REDUCTIONS = ["mean", "sum", "none"]


def T(x):
    return torch.as_tensor(np.asarray(x))


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


def test_seed_worked_examples():
    # 001: categorical CE of p = [0.775, 0.116, 0.039, 0.070] against class 0, in bits and nats.
    p = np.array([0.775, 0.116, 0.039, 0.070])
    np.testing.assert_allclose(xent.sparse_categorical_cross_entropy(0, p, base=2), -np.log2(0.775), rtol=1e-14)
    np.testing.assert_allclose(xent.categorical_cross_entropy(np.eye(4)[0], p), -np.log(0.775), rtol=1e-14)
    # 004: three doors, gifts behind doors 1 and 2, summed CE in nats = 0.68518.
    got = xent.binary_cross_entropy(np.array([1, 1, 0]), np.array([0.8, 0.7, 0.1]), reduction="sum")
    np.testing.assert_allclose(got, -(np.log(0.8) + np.log(0.7) + np.log(0.9)), rtol=1e-14)
    assert round(float(got), 5) == 0.68518

