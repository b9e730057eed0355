"""Losses against Keras 3 (JAX backend): equal where the conventions agree, and the exact relation where they differ.

Every Keras convention the README lists is proven here, each by an equality with
xent plus, where there is a difference, an inequality showing that it is real:

* clipping: Keras clips probabilities to ``[1e-7, 1 - 1e-7]`` (``keras.config.epsilon()``);
  xent's ``eps`` defaults to the dtype's machine epsilon, ``eps=1e-7`` gives Keras.
* renormalising: Keras divides categorical probabilities by their sum along the class
  axis before clipping; xent uses them as given (``xent(t, p / p.sum(axis), eps=1e-7) == Keras``).
* binary losses: Keras averages the elementwise loss over ``axis`` (default the last);
  xent treats every element as one example (``xent(reduction="none").mean(axis) == Keras``).
* reductions: Keras ``"sum_over_batch_size"`` (default) is ``sum(s l) / N`` (N = number of
  loss values); xent ``"mean"`` is ``sum(s l) / sum(s)``, which Keras calls
  ``"mean_with_sample_weight"``. With ``ignore_class`` Keras divides by the number of
  non-ignored examples.
* focal: Keras ``CategoricalFocalCrossentropy`` multiplies by ``alpha=0.25`` by default
  (xent: ``alpha=None`` = 1); ``BinaryFocalCrossentropy`` applies ``alpha`` only with
  ``apply_class_balancing=True``; Keras focal losses on logits go through
  ``sigmoid``/``softmax`` and the probability path (clipped), xent uses log-sigmoid/log-softmax.
* ``kl_divergence``: Keras clips both arguments to ``[1e-7, 1]``; xent is exact (0 log 0 = 0).
* label smoothing with a class ``axis`` other than the last: Keras smooths with
  ``e / shape[-1]`` (not ``e / shape[axis]``); xent with ``e / C``.
* precision: Keras's JAX backend averages in float32 even with ``dtype="float64"``
  (see ``RTOL_KERAS_MEAN``), so binary results are compared to float32 rounding.

Facts read from keras/src/losses/losses.py, keras/src/losses/loss.py and
keras/src/backend/jax/nn.py (Keras 3.15). Computations in float64 (``dtype="float64"``
for the Loss classes; JAX x64 enabled for this module).
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"  # must precede the first `import keras`
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import xent  # noqa: E402

if keras.backend.backend() != "jax":  # keras was imported earlier with another backend
    raise RuntimeError(f"tests/losses/test_keras_parity.py needs the Keras JAX backend, got {keras.backend.backend()!r}")

KERAS_EPS = 1e-7
RTOL = 1e-12
# Keras's JAX backend maps every 64-bit result type to 32 bits (keras/src/backend/common/
# dtypes.py, BIT64_TO_BIT32_DTYPE), so `ops.mean` -- which ends every Keras binary loss --
# averages in float32 even with dtype="float64". Binary results carry float32 rounding.
RTOL_KERAS_MEAN = 1e-6
F64 = "float64"


@pytest.fixture(autouse=True, scope="module")
def _x64():
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def A(x):
    return np.asarray(x)


def close(got, ref, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(A(got), A(ref), rtol=rtol, atol=atol)


def differ(a, b, rtol=1e-4):
    """The two differ by far more than any rounding: the convention difference is real."""
    assert not np.allclose(A(a), A(b), rtol=rtol, atol=0.0), (A(a), A(b))


def binary_probs(rng, shape):
    """Probabilities in (0, 1) plus values outside Keras's clip range (0, 1, 1e-9, 1 - 1e-9)."""
    p = rng.uniform(0.02, 0.98, size=shape)
    p.flat[:4] = [0.0, 1.0, 1e-9, 1.0 - 1e-9]
    return p


def unnormalised_probs(rng, shape, axis=-1):
    """Rows that do not sum to 1 (sums in about [0.5, 1.5]), one entry 3e-9 (below Keras's clip)."""
    p = rng.dirichlet(np.ones(shape[axis]), size=tuple(d for i, d in enumerate(shape) if i != axis % len(shape)))
    p = np.moveaxis(p, -1, axis) * rng.uniform(0.5, 1.5, size=tuple(1 if i == axis % len(shape) else d for i, d in enumerate(shape)))
    p = np.clip(p, 0.0, 1.0)
    p.flat[1] = 3e-9
    return p


def renorm(p, axis=-1):
    return p / p.sum(axis=axis, keepdims=True)


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# --------------------------------------------------------------------------- binary


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("soft", [False, True])
def test_binary_is_elementwise_xent_averaged_over_last_axis(rng, from_logits, smoothing, soft):
    shape = (6, 3)
    y = rng.uniform(size=shape) if soft else rng.integers(0, 2, size=shape).astype(float)
    x = rng.normal(size=shape) * 4 if from_logits else binary_probs(rng, shape)
    ref = keras.losses.binary_crossentropy(y, x, from_logits=from_logits, label_smoothing=smoothing)
    per = xent.binary_cross_entropy(y, x, from_logits=from_logits, label_smoothing=smoothing, eps=KERAS_EPS, reduction="none")
    assert A(ref).shape == (6,)
    close(A(per).mean(axis=-1), ref, rtol=RTOL_KERAS_MEAN)


def test_binary_clip_is_keras_epsilon_not_machine_epsilon(rng):
    y = np.array([[1.0, 0.0, 1.0, 0.0]])
    p = np.array([[1e-9, 1.0 - 1e-9, 0.0, 1.0]])  # all outside [1e-7, 1 - 1e-7]
    ref = keras.losses.binary_crossentropy(y, p)
    close(A(xent.binary_cross_entropy(y, p, eps=KERAS_EPS, reduction="none")).mean(-1), ref, rtol=RTOL_KERAS_MEAN)
    close(ref, [-np.log(KERAS_EPS)], rtol=RTOL_KERAS_MEAN)  # every element is clipped to 1e-7: loss = -log(1e-7)
    differ(A(xent.binary_cross_entropy(y, p, reduction="none")).mean(-1), ref)  # default eps = 2.2e-16


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_binary_axis_is_the_averaging_axis(rng, axis):
    y = rng.integers(0, 2, size=(3, 4, 5)).astype(float)
    z = rng.normal(size=(3, 4, 5)) * 3
    for fn in (keras.losses.binary_crossentropy, keras.losses.binary_focal_crossentropy):
        ref = fn(y, z, from_logits=True, axis=axis)
        xfn = xent.binary_cross_entropy if fn is keras.losses.binary_crossentropy else xent.binary_focal_cross_entropy
        per = xfn(y, sigmoid(z) if fn is keras.losses.binary_focal_crossentropy else z,
                  from_logits=fn is keras.losses.binary_crossentropy, eps=KERAS_EPS, reduction="none")
        close(A(per).mean(axis=axis), ref, rtol=RTOL_KERAS_MEAN)


@pytest.mark.parametrize("from_logits", [False, True])
def test_binary_class_reductions_with_sample_weight(rng, from_logits):
    """Keras reduces the per-row means; its default divides by N rows, xent's mean by sum(s)."""
    n, k = 8, 3
    y = rng.integers(0, 2, size=(n, k)).astype(float)
    x = rng.normal(size=(n, k)) * 3 if from_logits else binary_probs(rng, (n, k))
    s = rng.uniform(0.1, 3.0, size=n)
    sw = np.repeat(s[:, None], k, axis=1)  # xent weights are per element; Keras's per row

    def keras_loss(reduction):
        cls = keras.losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=0.1, reduction=reduction, dtype=F64)
        return cls(y, x, sample_weight=s)

    def ours(reduction):
        return xent.binary_cross_entropy(y, x, from_logits=from_logits, label_smoothing=0.1, weights=sw, eps=KERAS_EPS, reduction=reduction)

    close(keras_loss("none"), A(ours("none")).mean(-1), rtol=RTOL_KERAS_MEAN)
    close(keras_loss("sum"), ours("sum") / k, rtol=RTOL_KERAS_MEAN)
    close(keras_loss("sum_over_batch_size"), ours("sum") / (n * k), rtol=RTOL_KERAS_MEAN)  # Keras default: sum(s l) / N
    close(keras_loss("mean_with_sample_weight"), ours("mean"), rtol=RTOL_KERAS_MEAN)  # xent's mean: sum(s l) / sum(s)
    differ(keras_loss("sum_over_batch_size"), ours("mean"))
    # Without sample weights the two means agree.
    close(keras.losses.BinaryCrossentropy(from_logits=from_logits, dtype=F64)(y, x),
          xent.binary_cross_entropy(y, x, from_logits=from_logits, eps=KERAS_EPS), rtol=RTOL_KERAS_MEAN)


# --------------------------------------------------------------------------- categorical


@pytest.mark.parametrize(("smoothing", "axis"), [(0.0, -1), (0.1, -1), (0.0, 1)])
@pytest.mark.parametrize("soft", [False, True])
def test_categorical_logits_identical(rng, smoothing, soft, axis):
    shape = (4, 5, 3)
    c = shape[axis]
    other = tuple(d for i, d in enumerate(shape) if i != axis % 3)
    t = rng.dirichlet(np.ones(c), size=other) if soft else np.eye(c)[rng.integers(0, c, size=other)]
    t = np.moveaxis(t, -1, axis)
    z = rng.normal(size=shape) * 3
    ref = keras.losses.categorical_crossentropy(t, z, from_logits=True, label_smoothing=smoothing, axis=axis)
    got = xent.categorical_cross_entropy(t, z, from_logits=True, label_smoothing=smoothing, axis=axis, reduction="none")
    close(got, ref)


@pytest.mark.parametrize(("smoothing", "axis"), [(0.0, -1), (0.1, -1), (0.0, 0)])
def test_categorical_probabilities_are_renormalised_then_clipped(rng, smoothing, axis):
    shape = (5, 4)
    p = unnormalised_probs(rng, shape, axis=axis)
    c = shape[axis]
    other = shape[1 - axis % 2]
    t = np.moveaxis(rng.dirichlet(np.ones(c), size=other), -1, axis)
    # One predicted probability far below 1e-7 where the target has mass 1/2, so the clip matters.
    pm, tm = np.moveaxis(p, axis, -1), np.moveaxis(t, axis, -1)  # views
    pm[0, 0] = 3e-9
    tm[0] = 0.5 * tm[0] + 0.5 * np.eye(c)[0]
    ref = keras.losses.categorical_crossentropy(t, p, label_smoothing=smoothing, axis=axis)
    got = xent.categorical_cross_entropy(t, renorm(p, axis), label_smoothing=smoothing, axis=axis, eps=KERAS_EPS, reduction="none")
    close(got, ref)
    differ(xent.categorical_cross_entropy(t, p, label_smoothing=smoothing, axis=axis, eps=KERAS_EPS, reduction="none"), ref)
    differ(xent.categorical_cross_entropy(t, renorm(p, axis), label_smoothing=smoothing, axis=axis, reduction="none"), ref)


@pytest.mark.parametrize("focal", [False, True])
def test_keras_label_smoothing_counts_the_last_axis_as_classes(rng, focal):
    """Keras smooths with e / shape[-1] whatever ``axis`` is (a Keras quirk); xent with e / shape[axis].

    So with ``axis=1`` Keras equals xent on targets smoothed by hand with e / shape[-1].
    """
    e = 0.2
    z = rng.normal(size=(4, 5, 3)) * 2  # 5 classes along axis 1, last axis has 3
    t = np.moveaxis(np.eye(5)[rng.integers(0, 5, size=(4, 3))], -1, 1)
    keras_smoothed = t * (1 - e) + e / z.shape[-1]
    if focal:
        ref = keras.losses.categorical_focal_crossentropy(t, softmax(z, 1), alpha=1.0, label_smoothing=e, axis=1)
        close(ref, xent.categorical_focal_cross_entropy(keras_smoothed, softmax(z, 1), axis=1, eps=KERAS_EPS, reduction="none"))
        differ(ref, xent.categorical_focal_cross_entropy(t, softmax(z, 1), axis=1, label_smoothing=e, eps=KERAS_EPS, reduction="none"))
    else:
        ref = keras.losses.categorical_crossentropy(t, z, from_logits=True, label_smoothing=e, axis=1)
        close(ref, xent.categorical_cross_entropy(keras_smoothed, z, from_logits=True, axis=1, reduction="none"))
        differ(ref, xent.categorical_cross_entropy(t, z, from_logits=True, axis=1, label_smoothing=e, reduction="none"))


@pytest.mark.parametrize("from_logits", [False, True])
def test_categorical_class_reductions_with_sample_weight(rng, from_logits):
    n, c = 7, 4
    t = rng.dirichlet(np.ones(c), size=n)
    x = rng.normal(size=(n, c)) * 2 if from_logits else renorm(unnormalised_probs(rng, (n, c)))
    s = rng.uniform(0.1, 3.0, size=n)

    def keras_loss(reduction, sample_weight=s):
        cls = keras.losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=0.2, reduction=reduction, dtype=F64)
        return cls(t, x, sample_weight=sample_weight)

    def ours(reduction, weights=s):
        return xent.categorical_cross_entropy(t, x, from_logits=from_logits, label_smoothing=0.2, weights=weights, eps=KERAS_EPS, reduction=reduction)

    close(keras_loss(None), ours("none"))
    close(keras_loss("sum"), ours("sum"))
    close(keras_loss("sum_over_batch_size"), ours("sum") / n)
    close(keras_loss("mean"), ours("sum") / n)  # Keras "mean" is "sum_over_batch_size" too
    close(keras_loss("mean_with_sample_weight"), ours("mean"))
    differ(keras_loss("sum_over_batch_size"), ours("mean"))
    close(keras_loss("sum_over_batch_size", None), ours("mean", None))


def test_categorical_spatial_sample_weight_per_position(rng):
    """(N, d, C) predictions: Keras's N is the number of loss values, N * d."""
    n, d, c = 3, 4, 5
    z = rng.normal(size=(n, d, c))
    t = np.eye(c)[rng.integers(0, c, size=(n, d))]
    s = rng.uniform(0.2, 2.0, size=(n, d))
    ref = keras.losses.CategoricalCrossentropy(from_logits=True, dtype=F64)(t, z, sample_weight=s)
    close(ref, xent.categorical_cross_entropy(t, z, from_logits=True, weights=s, reduction="sum") / (n * d))
    ref = keras.losses.CategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight", dtype=F64)(t, z, sample_weight=s)
    close(ref, xent.categorical_cross_entropy(t, z, from_logits=True, weights=s))


# --------------------------------------------------------------------------- sparse


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("column", [False, True])
def test_sparse_matches(rng, from_logits, column):
    n, c = 9, 4
    y = rng.integers(0, c, size=n)
    x = rng.normal(size=(n, c)) * 3 if from_logits else unnormalised_probs(rng, (n, c))
    ref = keras.losses.sparse_categorical_crossentropy(y[:, None] if column else y, x, from_logits=from_logits)
    xin = x if from_logits else renorm(x)
    close(xent.sparse_categorical_cross_entropy(y, xin, from_logits=from_logits, eps=KERAS_EPS, reduction="none"), ref)
    if not from_logits:
        differ(xent.sparse_categorical_cross_entropy(y, x, eps=KERAS_EPS, reduction="none"), ref)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("ignore", [None, -1, 2])
def test_sparse_class_reductions_with_ignore_class_and_sample_weight(rng, from_logits, ignore):
    """Keras's default mean with ``ignore_class`` divides by the number of kept examples."""
    n, c = 10, 4
    y = rng.integers(0, c, size=n)
    if ignore is not None:
        y[[0, 3, 7]] = ignore
    x = rng.normal(size=(n, c)) * 3 if from_logits else renorm(unnormalised_probs(rng, (n, c)))
    s = rng.uniform(0.1, 3.0, size=n)
    kept = n if ignore is None else int(np.sum(y != ignore))
    assert kept < n or ignore is None

    def keras_loss(reduction, sample_weight=s):
        cls = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=ignore, reduction=reduction, dtype=F64)
        return cls(y, x, sample_weight=sample_weight)

    def ours(reduction, weights=s):
        return xent.sparse_categorical_cross_entropy(y, x, from_logits=from_logits, ignore_index=ignore, weights=weights, eps=KERAS_EPS, reduction=reduction)

    close(keras_loss(None), ours("none"))  # 0 for ignored examples in both
    close(keras_loss("sum"), ours("sum"))
    close(keras_loss("sum_over_batch_size"), ours("sum") / kept)  # sum(s l) / (number of kept examples)
    close(keras_loss("mean_with_sample_weight"), ours("mean"))  # sum(s l) / sum(s) over kept examples
    differ(keras_loss("sum_over_batch_size"), ours("mean"))
    close(keras_loss("sum_over_batch_size", None), ours("mean", None))  # unweighted: mean over kept examples
    close(keras_loss("mean_with_sample_weight", None), ours("mean", None))


def test_sparse_everything_ignored_is_zero_in_both(rng):
    y = np.full(5, 3)
    z = rng.normal(size=(5, 4))
    for red in ("sum_over_batch_size", "mean_with_sample_weight", "sum"):
        ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=3, reduction=red, dtype=F64)(y, z)
        assert A(ref) == 0.0
    assert xent.sparse_categorical_cross_entropy(y, z, from_logits=True, ignore_index=3) == 0.0


def test_sparse_spatial_ignore_class(rng):
    """Segmentation shape (N, H, W, C) with a void label 255, as in the Keras docstring."""
    z = rng.normal(size=(2, 3, 4, 5))
    y = rng.integers(0, 5, size=(2, 3, 4))
    y[0, 1, :2] = 255
    y[1, 2, 3] = 255
    ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255, dtype=F64)(y, z)
    close(ref, xent.sparse_categorical_cross_entropy(y, z, from_logits=True, ignore_index=255))


def test_sparse_class_axis_other_than_last(rng):
    """Keras's JAX backend takes sparse labels only with the class axis last; xent any axis."""
    z = rng.normal(size=(3, 5, 4))
    y = rng.integers(0, 5, size=(3, 4))
    ref = keras.losses.sparse_categorical_crossentropy(y, np.moveaxis(z, 1, -1), from_logits=True)
    close(xent.sparse_categorical_cross_entropy(y, z, from_logits=True, axis=1, reduction="none"), ref)
    ref = keras.losses.categorical_crossentropy(np.moveaxis(np.eye(5)[y], -1, 1), z, from_logits=True, axis=1)
    close(xent.sparse_categorical_cross_entropy(y, z, from_logits=True, axis=1, reduction="none"), ref)


@pytest.mark.parametrize("smoothing", [0.1, 0.4])
def test_sparse_label_smoothing_is_keras_categorical_smoothing(rng, smoothing):
    """Keras's sparse loss has no label_smoothing; xent's equals Keras categorical on one-hot labels."""
    y = rng.integers(0, 6, size=8)
    z = rng.normal(size=(8, 6)) * 2
    ref = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing, reduction=None, dtype=F64)(np.eye(6)[y], z)
    close(xent.sparse_categorical_cross_entropy(y, z, from_logits=True, label_smoothing=smoothing, reduction="none"), ref)


# --------------------------------------------------------------------------- binary focal


@pytest.mark.parametrize(
    ("gamma", "balance", "smoothing"),
    [(0.0, False, 0.0), (2.0, False, 0.0), (2.0, True, 0.0), (3.5, True, 0.2), (2.0, False, 0.2), (0.0, True, 0.2)],
)
def test_binary_focal_probabilities(rng, gamma, balance, smoothing):
    shape = (6, 4)
    y = rng.integers(0, 2, size=shape).astype(float)
    p = binary_probs(rng, shape)
    ref = keras.losses.binary_focal_crossentropy(y, p, apply_class_balancing=balance, alpha=0.3, gamma=gamma, label_smoothing=smoothing)
    got = xent.binary_focal_cross_entropy(y, p, gamma=gamma, alpha=0.3 if balance else None, label_smoothing=smoothing,
                                          eps=KERAS_EPS, reduction="none")
    close(A(got).mean(-1), ref, rtol=RTOL_KERAS_MEAN)


def test_binary_focal_alpha_needs_apply_class_balancing(rng):
    """Keras's alpha=0.25 default is ignored unless apply_class_balancing=True (xent: alpha=None)."""
    y = rng.integers(0, 2, size=(5, 3)).astype(float)
    p = rng.uniform(0.05, 0.95, size=(5, 3))
    plain = keras.losses.BinaryFocalCrossentropy(reduction=None, dtype=F64)(y, p)
    balanced = keras.losses.BinaryFocalCrossentropy(apply_class_balancing=True, reduction=None, dtype=F64)(y, p)
    close(plain, A(xent.binary_focal_cross_entropy(y, p, reduction="none")).mean(-1), rtol=RTOL_KERAS_MEAN)
    close(balanced, A(xent.binary_focal_cross_entropy(y, p, alpha=0.25, reduction="none")).mean(-1), rtol=RTOL_KERAS_MEAN)
    differ(plain, balanced)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("balance", [False, True])
def test_binary_focal_logits_go_through_clipped_probabilities(rng, gamma, balance):
    """Keras: sigmoid, then the clipped probability path; xent: log-sigmoid (no clip)."""
    y = rng.integers(0, 2, size=(6, 4)).astype(float)
    z = rng.normal(size=(6, 4)) * 3
    z[0, :2] = [25.0, -25.0]  # sigmoid beyond 1 - 1e-7 / below 1e-7: Keras clips, xent does not
    y[0, :2] = [0.0, 1.0]  # and these are the wrong-side labels, where the clip matters
    kw = dict(gamma=gamma, alpha=0.4 if balance else None, label_smoothing=0.1)
    ref = keras.losses.binary_focal_crossentropy(y, z, from_logits=True, apply_class_balancing=balance, alpha=0.4, gamma=gamma, label_smoothing=0.1)
    close(A(xent.binary_focal_cross_entropy(y, sigmoid(z), eps=KERAS_EPS, reduction="none", **kw)).mean(-1), ref, rtol=RTOL_KERAS_MEAN)
    logits = A(xent.binary_focal_cross_entropy(y, z, from_logits=True, reduction="none", **kw))
    close(logits[1:].mean(-1), A(ref)[1:], rtol=RTOL_KERAS_MEAN)  # the same where nothing is clipped
    differ(logits[0].mean(), A(ref)[0])


def test_binary_focal_class_reductions(rng):
    y = rng.integers(0, 2, size=(8, 2)).astype(float)
    z = rng.normal(size=(8, 2)) * 2
    s = rng.uniform(0.1, 3.0, size=8)
    sw = np.repeat(s[:, None], 2, axis=1)
    p = sigmoid(z)

    def keras_loss(reduction):
        return keras.losses.BinaryFocalCrossentropy(gamma=1.5, from_logits=True, reduction=reduction, dtype=F64)(y, z, sample_weight=s)

    def ours(reduction):
        return xent.binary_focal_cross_entropy(y, p, gamma=1.5, weights=sw, eps=KERAS_EPS, reduction=reduction)

    close(keras_loss("sum_over_batch_size"), ours("sum") / 16, rtol=RTOL_KERAS_MEAN)
    close(keras_loss("mean_with_sample_weight"), ours("mean"), rtol=RTOL_KERAS_MEAN)
    close(keras_loss("sum"), ours("sum") / 2, rtol=RTOL_KERAS_MEAN)


# --------------------------------------------------------------------------- categorical focal


@pytest.mark.parametrize(
    ("gamma", "alpha", "smoothing"),
    [(0.0, 1.0, 0.0), (2.0, 0.25, 0.0), (2.0, "per-class", 0.15), (4.0, 0.25, 0.15), (1.5, "per-class", 0.0), (0.0, "per-class", 0.15)],
)
def test_categorical_focal_probabilities(rng, gamma, alpha, smoothing):
    n, c = 6, 4
    t = rng.dirichlet(np.ones(c), size=n)
    p = unnormalised_probs(rng, (n, c))
    al = rng.uniform(0.1, 2.0, size=c) if alpha == "per-class" else alpha
    ref = keras.losses.categorical_focal_crossentropy(t, p, alpha=list(al) if alpha == "per-class" else al, gamma=gamma, label_smoothing=smoothing)
    got = xent.categorical_focal_cross_entropy(t, renorm(p), gamma=gamma, alpha=al, label_smoothing=smoothing, eps=KERAS_EPS, reduction="none")
    close(got, ref)
    differ(xent.categorical_focal_cross_entropy(t, p, gamma=gamma, alpha=al, label_smoothing=smoothing, eps=KERAS_EPS, reduction="none"), ref)


def test_categorical_focal_default_alpha_is_a_quarter(rng):
    t = np.eye(5)[rng.integers(0, 5, size=6)]
    p = rng.dirichlet(np.ones(5), size=6)
    ref = keras.losses.CategoricalFocalCrossentropy(reduction=None, dtype=F64)(t, p)
    close(ref, A(xent.categorical_focal_cross_entropy(t, p, eps=KERAS_EPS, reduction="none")) * 0.25)
    close(ref, xent.categorical_focal_cross_entropy(t, p, alpha=0.25, eps=KERAS_EPS, reduction="none"))


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_categorical_focal_logits_go_through_clipped_softmax(rng, gamma):
    n, c = 6, 4
    t = rng.dirichlet(np.ones(c), size=n)
    z = rng.normal(size=(n, c)) * 2
    z[0] = [40.0, 0.0, -1.0, 1.0]  # softmax of classes 1..3 far below 1e-7: Keras clips
    ref = keras.losses.categorical_focal_crossentropy(t, z, from_logits=True, gamma=gamma, alpha=0.5, label_smoothing=0.1)
    kw = dict(gamma=gamma, alpha=0.5, label_smoothing=0.1, reduction="none")
    close(xent.categorical_focal_cross_entropy(t, softmax(z), eps=KERAS_EPS, **kw), ref, rtol=1e-11)
    logits = A(xent.categorical_focal_cross_entropy(t, z, from_logits=True, **kw))
    close(logits[1:], A(ref)[1:], rtol=1e-10)
    differ(logits[0], A(ref)[0])


def test_categorical_focal_class_reductions(rng):
    n, c = 8, 3
    t = rng.dirichlet(np.ones(c), size=n)
    z = rng.normal(size=(n, c))
    s = rng.uniform(0.1, 3.0, size=n)

    def keras_loss(reduction):
        return keras.losses.CategoricalFocalCrossentropy(from_logits=True, reduction=reduction, dtype=F64)(t, z, sample_weight=s)

    def ours(reduction):
        return xent.categorical_focal_cross_entropy(t, z, from_logits=True, alpha=0.25, weights=s, reduction=reduction)

    close(keras_loss("sum_over_batch_size"), ours("sum") / n, rtol=1e-11)
    close(keras_loss("mean_with_sample_weight"), ours("mean"), rtol=1e-11)
    close(keras_loss("sum"), ours("sum"), rtol=1e-11)


# --------------------------------------------------------------------------- KL divergence


def test_kl_divergence_positive_inputs_identical(rng):
    p = rng.dirichlet(np.ones(5), size=7)
    q = rng.dirichlet(np.ones(5), size=7)
    assert p.min() > KERAS_EPS and q.min() > KERAS_EPS
    close(xent.kl_divergence(p, q), keras.losses.kl_divergence(p, q))
    cls = keras.losses.KLDivergence(dtype=F64)
    close(cls(p, q), A(xent.kl_divergence(p, q)).mean())  # sum_over_batch_size: mean over rows
    s = rng.uniform(0.1, 2.0, size=7)
    close(cls(p, q, sample_weight=s), np.sum(s * A(xent.kl_divergence(p, q))) / 7)


def test_kl_divergence_keras_clips_both_arguments(rng):
    """Keras clips p and q to [1e-7, 1] (no renormalising); xent is exact: 0 log 0 = 0, p log(p/0) = inf."""
    p = rng.dirichlet(np.ones(4), size=3)
    q = rng.dirichlet(np.ones(4), size=3)
    p[0, 1] = 0.0
    p[0] /= p[0].sum()
    q[1, 2] = 0.0
    q[1] /= q[1].sum()
    ref = A(keras.losses.kl_divergence(p, q))
    close(xent.kl_divergence(np.clip(p, KERAS_EPS, 1.0), np.clip(q, KERAS_EPS, 1.0)), ref)
    exact = A(xent.kl_divergence(p, q))
    assert np.isinf(exact[1]) and np.isfinite(ref[1])
    differ(exact[0], ref[0], rtol=1e-10)
    close(exact[2], ref[2])


# --------------------------------------------------------------------------- gradients (jax.grad through Keras)


@pytest.mark.parametrize("kind", ["categorical", "sparse", "binary"])
def test_logits_gradient_equals_jax_grad_of_keras(rng, kind):
    """d(sum of per-example losses)/d(logits): xent's analytic gradient equals autodiff through Keras."""
    z = rng.normal(size=(6, 4)) * 2
    if kind == "categorical":
        t = rng.dirichlet(np.ones(4), size=6)

        def keras_sum(zz):
            return keras.losses.categorical_crossentropy(t, zz, from_logits=True, label_smoothing=0.1).sum()

        _, g = xent.categorical_cross_entropy(t, z, from_logits=True, label_smoothing=0.1, reduction="sum", return_grad=True)
        rtol = RTOL
    elif kind == "sparse":
        y = rng.integers(0, 4, size=6)

        def keras_sum(zz):
            return keras.losses.sparse_categorical_crossentropy(y, zz, from_logits=True).sum()

        _, g = xent.sparse_categorical_cross_entropy(y, z, from_logits=True, reduction="sum", return_grad=True)
        rtol = RTOL
    else:
        t = rng.integers(0, 2, size=(6, 4)).astype(float)

        def keras_sum(zz):  # Keras averages the 4 labels of a row: sum of row means = sum / 4
            return keras.losses.binary_crossentropy(t, zz, from_logits=True, label_smoothing=0.1).sum() * 4

        _, g = xent.binary_cross_entropy(t, z, from_logits=True, label_smoothing=0.1, reduction="sum", return_grad=True)
        rtol = RTOL_KERAS_MEAN
    close(g, jax.grad(keras_sum)(jax.numpy.asarray(z)), rtol=rtol)


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_ignore_class_weighted_mean_gradient(rng, from_logits):
    """xent's "mean" gradient with ignore_index and weights is jax.grad of Keras "mean_with_sample_weight"."""
    y = rng.integers(0, 4, size=8)
    y[[2, 5]] = -1
    s = rng.uniform(0.2, 2.0, size=8)
    x = rng.normal(size=(8, 4)) * 2 if from_logits else rng.dirichlet(np.ones(4), size=8)
    loss = keras.losses.SparseCategoricalCrossentropy(
        from_logits=from_logits, ignore_class=-1, reduction="mean_with_sample_weight", dtype=F64
    )
    _, g = xent.sparse_categorical_cross_entropy(
        y, x, from_logits=from_logits, ignore_index=-1, weights=s, eps=KERAS_EPS, return_grad=True
    )
    ref = A(jax.grad(lambda xx: loss(y, xx, sample_weight=s))(jax.numpy.asarray(x)))
    if not from_logits:  # Keras differentiates through p / sum(p) (rows already sum to 1 here)
        g = A(g) - np.sum(A(g) * x, axis=-1, keepdims=True)
    assert np.all(ref[[2, 5]] == 0.0)
    close(g, ref, rtol=1e-11, atol=1e-15)


def test_probability_gradient_is_xent_gradient_through_renormalising(rng):
    """Keras differentiates through p / sum(p): grad_p = (g - sum(g r)) / S with r = p / S, g = xent's grad at r."""
    p = unnormalised_probs(rng, (5, 4))
    t = rng.dirichlet(np.ones(4), size=5)
    s = p.sum(-1, keepdims=True)
    r = p / s

    def keras_sum(pp):
        return keras.losses.categorical_crossentropy(t, pp).sum()

    _, g = xent.categorical_cross_entropy(t, r, eps=KERAS_EPS, reduction="sum", return_grad=True)
    g = A(g)
    assert g.reshape(-1)[1] == 0.0  # the 3e-9 entry is clipped: no gradient through the clip in either
    close((g - np.sum(g * r, axis=-1, keepdims=True)) / s, jax.grad(keras_sum)(jax.numpy.asarray(p)), rtol=1e-11)


def test_keras_float32_defaults_match_xent_float32_at_keras_eps(rng):
    """Keras's default dtype is float32: xent on float32 inputs with eps=1e-7 agrees to float32 rounding."""
    y = rng.integers(0, 5, size=16)
    p32 = renorm(rng.dirichlet(np.ones(5), size=16)).astype(np.float32)
    ref = keras.losses.SparseCategoricalCrossentropy()(y, p32)
    got = xent.sparse_categorical_cross_entropy(y, p32, eps=KERAS_EPS)
    assert A(ref).dtype == np.float32 and A(got).dtype == np.float32
    close(got, ref, rtol=1e-6)
