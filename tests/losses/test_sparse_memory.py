"""The sparse reference path (no one-hot) equals the soft-target path on the one-hot of the labels.

``sparse_categorical_cross_entropy`` gathers ``log p_y`` and masks ``c == y`` instead of
building a float N x C one-hot; ``categorical_cross_entropy`` on ``one_hot(y)`` is the
independent path it must agree with, loss and gradient, for every option. Ignored
examples become zero sample weights on the categorical side. NumPy runs with the fast
engine off, so both sides are the array-API reference code on every backend.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

import xent

C = 5
IGNORES = (None, -100, C + 3, 1)  # off, below the range, above it, a real class
REDUCTIONS = ("mean", "sum", "none")
# A fixed sample of the option grid, so that every backend (jit included) stays quick.
CASES = random.Random(0).sample(
    list(itertools.product(IGNORES, REDUCTIONS, (True, False), (0.0, 0.2), (False, True), (False, True), (-1, 1))),
    48,
)


def one_hot(labels: np.ndarray, axis: int) -> np.ndarray:
    """Float one-hot along ``axis``; labels outside [0, C) give an all-zero row."""
    valid = (labels >= 0) & (labels < C)
    t = np.eye(C)[np.where(valid, labels, 0)] * valid[..., None]
    return np.moveaxis(t, -1, axis)


def make_inputs(rng: np.random.Generator, *, from_logits: bool, axis: int) -> tuple[np.ndarray, np.ndarray]:
    shape = (7, 3, C) if axis == -1 else (7, C, 3)
    z = rng.normal(size=shape) * 3
    x = z if from_logits else np.asarray(xent.softmax(z, axis=axis))
    labels = rng.integers(0, C, size=(7, 3))
    return labels, x


def compare(backend, labels, x, *, ignore_index=None, weights=None, **options):
    """Run both paths on ``backend`` (engine off); assert loss and gradient agree."""
    axis = options.get("axis", -1)
    keep = np.ones(labels.shape) if ignore_index is None else (labels != ignore_index).astype(float)
    s = np.ones(labels.shape) if weights is None else weights
    cw = options.pop("class_weights", None)
    extra = {} if cw is None else {"class_weights": backend.asarray(cw)}
    with xent.engine.use_engine("reference"):
        sparse = backend.call(
            xent.sparse_categorical_cross_entropy, backend.asarray(labels), backend.asarray(x),
            ignore_index=ignore_index, weights=None if weights is None else backend.asarray(weights),
            return_grad=True, **extra, **options,
        )
        dense = backend.call(
            xent.categorical_cross_entropy, backend.asarray(one_hot(labels, axis)), backend.asarray(x),
            weights=backend.asarray(s * keep), return_grad=True, **extra, **options,
        )
    (loss, grad), (loss_ref, grad_ref) = backend.to_numpy(sparse), backend.to_numpy(dense)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-10, atol=1e-13)
    assert grad.shape == x.shape
    return loss, grad


@pytest.mark.parametrize(
    ("ignore_index", "reduction", "from_logits", "smoothing", "use_cw", "use_weights", "axis"), CASES
)
def test_sparse_equals_one_hot(
    backend, rng, ignore_index, reduction, from_logits, smoothing, use_cw, use_weights, axis
):
    labels, x = make_inputs(rng, from_logits=from_logits, axis=axis)
    if ignore_index is not None:
        labels = np.where(rng.random(labels.shape) < 0.3, ignore_index, labels)
    compare(
        backend, labels, x, ignore_index=ignore_index,
        weights=rng.uniform(0.0, 2.0, size=labels.shape) if use_weights else None,
        class_weights=rng.uniform(0.1, 2.0, size=C) if use_cw else None,
        from_logits=from_logits, label_smoothing=smoothing, reduction=reduction, axis=axis,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_all_ignored_gives_zero(backend, rng, reduction):
    labels, x = make_inputs(rng, from_logits=True, axis=-1)
    loss, grad = compare(
        backend, np.full(labels.shape, -100), x, ignore_index=-100, from_logits=True,
        label_smoothing=0.1, class_weights=rng.uniform(0.1, 2.0, size=C), reduction=reduction,
    )
    assert not np.any(loss) and not np.any(grad)


@pytest.mark.parametrize("from_logits", [True, False])
def test_zero_weight_on_impossible_class(backend, rng, from_logits):
    """A class with weight 0 and probability 0 (-inf logit, or p = 0 with eps=0) adds 0, not NaN."""
    labels, x = make_inputs(rng, from_logits=True, axis=-1)
    labels = np.where(labels == 2, 0, labels)
    x[..., 2] = -np.inf
    if not from_logits:
        x = np.asarray(xent.softmax(x))
        assert np.all(x[..., 2] == 0)
    cw = np.array([1.0, 0.5, 0.0, 2.0, 1.5])
    for smoothing in (0.0, 0.3):
        loss, grad = compare(
            backend, labels, x, from_logits=from_logits, class_weights=cw, label_smoothing=smoothing,
            eps=0.0, reduction="none",
        )
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))


def test_float32(backend, rng):
    labels, x = make_inputs(rng, from_logits=True, axis=1)
    x32 = x.astype(np.float32)
    with xent.engine.use_engine("reference"):
        loss, grad = backend.to_numpy(backend.call(
            xent.sparse_categorical_cross_entropy, backend.asarray(labels), backend.asarray(x32),
            from_logits=True, axis=1, label_smoothing=0.1, return_grad=True,
        ))
        loss64, grad64 = backend.to_numpy(backend.call(
            xent.categorical_cross_entropy, backend.asarray(one_hot(labels, 1)), backend.asarray(x32.astype(float)),
            from_logits=True, axis=1, label_smoothing=0.1, return_grad=True,
        ))
    assert loss.dtype == grad.dtype == np.float32
    np.testing.assert_allclose(loss, loss64, rtol=1e-5)
    np.testing.assert_allclose(grad, grad64, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("use_cw", [False, True])
def test_out_of_range_labels(backend, rng, use_cw):
    """Eager backends reject out-of-range labels; under jax.jit (unchecked) one acts as an all-zero one-hot row."""
    labels, x = make_inputs(rng, from_logits=True, axis=-1)
    labels[0, 0], labels[3, 1] = C + 5, -7
    cw = rng.uniform(0.1, 2.0, size=C) if use_cw else None
    for from_logits in (True, False):
        xx = x if from_logits else np.asarray(xent.softmax(x))
        options = dict(from_logits=from_logits, label_smoothing=0.2, reduction="mean", class_weights=cw)
        if backend.eager:
            with pytest.raises(ValueError, match="y_true"):
                compare(backend, labels, xx, **options)
        else:
            compare(backend, labels, xx, **options)
