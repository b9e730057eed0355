"""Every bad input raises an error that names the argument, what was expected and what came."""

import re

import numpy as np
import pytest

import xent

Z = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.0]])
P = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])


def test_shape_mismatch_binary():
    with pytest.raises(ValueError, match=re.escape("`y_true` must have shape (3,) (the shape of `y_pred`), got (2,)")):
        xent.binary_cross_entropy(np.array([1, 0]), np.array([0.1, 0.2, 0.3]))


def test_shape_mismatch_categorical():
    with pytest.raises(ValueError, match=re.escape("`y_true` must have shape (2, 3) (the shape of `y_pred`), got (2, 2)")):
        xent.categorical_cross_entropy(np.eye(2), P)


def test_shape_mismatch_sparse():
    with pytest.raises(ValueError, match=re.escape("`y_true` must have shape (2,)")):
        xent.sparse_categorical_cross_entropy(np.array([0, 1, 2]), Z, from_logits=True)


def test_label_out_of_range():
    with pytest.raises(ValueError, match=re.escape("`y_true` must hold class labels in [0, 3), got 3 at index 1")):
        xent.sparse_categorical_cross_entropy(np.array([0, 3]), Z, from_logits=True)


def test_negative_label_not_ignore_index():
    msg = "`y_true` must hold class labels in [0, 3) or equal ignore_index=-100, got -1 at index 0"
    with pytest.raises(ValueError, match=re.escape(msg)):
        xent.sparse_categorical_cross_entropy(np.array([-1, 0]), Z, from_logits=True, ignore_index=-100)


def test_float_labels():
    with pytest.raises(TypeError, match="`y_true` must hold integer class labels, got dtype float64"):
        xent.sparse_categorical_cross_entropy(np.array([0.0, 1.0]), Z, from_logits=True)


def test_probabilities_outside_unit_interval():
    with pytest.raises(ValueError, match=re.escape("`y_pred` must hold probabilities in [0, 1], got 1.5 at index 1")):
        xent.binary_cross_entropy(np.array([1, 0]), np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match=re.escape("`y_pred` must hold probabilities in [0, 1], got -0.1 at index (0, 1)")):
        xent.categorical_cross_entropy(np.eye(3)[:2], np.array([[0.5, -0.1, 0.6], [0.2, 0.3, 0.5]]))


def test_nan_probability_and_target():
    with pytest.raises(ValueError, match=re.escape("`y_pred` must hold probabilities in [0, 1], got nan at index 0")):
        xent.binary_cross_entropy(np.array([1.0]), np.array([np.nan]))
    with pytest.raises(ValueError, match=re.escape("`y_true` must hold targets in [0, 1], got nan at index (1, 2)")):
        xent.categorical_cross_entropy(np.array([[1, 0, 0], [0, 0, np.nan]]), Z, from_logits=True)


def test_targets_outside_unit_interval():
    with pytest.raises(ValueError, match=re.escape("`y_true` must hold targets in [0, 1], got 2.0 at index 1")):
        xent.binary_cross_entropy(np.array([1, 2]), np.array([0.3, 0.2]), from_logits=True)


def test_negative_weights():
    with pytest.raises(ValueError, match=re.escape("`weights` must be finite and >= 0, got -1.0 at index 1")):
        xent.binary_cross_entropy(np.array([1, 0]), np.array([0.3, 0.2]), weights=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=re.escape("`class_weights` must be finite and >= 0, got -0.5 at index 2")):
        xent.sparse_categorical_cross_entropy(np.array([0, 1]), Z, from_logits=True, class_weights=[1.0, 1.0, -0.5])
    with pytest.raises(ValueError, match=re.escape("`pos_weight` must be finite and >= 0, got -2.0")):
        xent.binary_cross_entropy(np.array([1, 0]), np.array([0.3, 0.2]), pos_weight=-2.0)


def test_weight_shapes():
    with pytest.raises(ValueError, match=re.escape("`class_weights` must have shape (3,)")):
        xent.sparse_categorical_cross_entropy(np.array([0, 1]), Z, from_logits=True, class_weights=[1.0, 1.0])
    with pytest.raises(ValueError, match=re.escape("`weights` must be broadcastable to (2,)")):
        xent.sparse_categorical_cross_entropy(np.array([0, 1]), Z, from_logits=True, weights=np.ones(3))


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_label_smoothing_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=re.escape(f"`label_smoothing` must be in [0, 1], got {bad}")):
        xent.sparse_categorical_cross_entropy(np.array([0, 1]), Z, from_logits=True, label_smoothing=bad)
    with pytest.raises(ValueError, match=re.escape(f"`label_smoothing` must be in [0, 1], got {bad}")):
        xent.binary_cross_entropy(np.array([1]), np.array([0.2]), label_smoothing=bad)


def test_unknown_reduction():
    msg = "`reduction` must be one of 'mean', 'sum', 'none', got 'avg'"
    for fn, y in (
        (xent.sparse_categorical_cross_entropy, np.array([0, 1])),
        (xent.categorical_cross_entropy, np.eye(3)[:2]),
        (xent.categorical_focal_cross_entropy, np.eye(3)[:2]),
    ):
        with pytest.raises(ValueError, match=re.escape(msg)):
            fn(y, Z, from_logits=True, reduction="avg")
    with pytest.raises(ValueError, match=re.escape(msg)):
        xent.binary_focal_cross_entropy(np.array([1]), np.array([0.2]), reduction="avg")


@pytest.mark.parametrize("bad", [0, -2.0, 1, 1.0, float("inf")])
def test_bad_base(bad):
    with pytest.raises(ValueError, match=re.escape(f"`base` must be None (nats) or a finite number > 0 other than 1, got {bad!r}")):
        xent.binary_cross_entropy(np.array([1]), np.array([0.2]), base=bad)


def test_mixed_libraries():
    import torch

    msg = "arrays from different libraries cannot be mixed: `y_true` is a numpy array, `y_pred` is a torch array"
    with pytest.raises(TypeError, match=re.escape(msg)):
        xent.sparse_categorical_cross_entropy(np.array([0, 1]), torch.asarray(Z), from_logits=True)
    with pytest.raises(TypeError, match="`class_weights` is a torch array"):
        xent.sparse_categorical_cross_entropy(np.array([0, 1]), Z, from_logits=True, class_weights=torch.ones(3))


def test_bad_eps_gamma_alpha_ignore_index_and_flags():
    y, p = np.array([1, 0]), np.array([0.3, 0.2])
    with pytest.raises(ValueError, match=re.escape("`eps` must be 'auto' or a number in [0, 0.5), got 0.7")):
        xent.binary_cross_entropy(y, p, eps=0.7)
    with pytest.raises(ValueError, match=re.escape("`eps` must be 'auto' or a number in [0, 0.5), got 'machine'")):
        xent.binary_cross_entropy(y, p, eps="machine")
    with pytest.raises(ValueError, match=re.escape("`gamma` must be a finite number >= 0, got -1.0")):
        xent.binary_focal_cross_entropy(y, p, gamma=-1.0)
    with pytest.raises(ValueError, match=re.escape("`alpha` must be in [0, 1], got 1.5")):
        xent.binary_focal_cross_entropy(y, p, alpha=1.5)
    with pytest.raises(ValueError, match=re.escape("`alpha` must have shape (3,)")):
        xent.categorical_focal_cross_entropy(np.eye(3)[:2], P, alpha=np.ones(2))
    with pytest.raises(TypeError, match=re.escape("`ignore_index` must be None or an integer, got 1.0")):
        xent.sparse_categorical_cross_entropy(np.array([0, 1]), Z, from_logits=True, ignore_index=1.0)
    with pytest.raises(TypeError, match=re.escape("`from_logits` must be True or False, got 'yes'")):
        xent.binary_cross_entropy(y, p, from_logits="yes")


def test_eager_torch_checks_values_too():
    import torch

    with pytest.raises(ValueError, match=re.escape("`y_true` must hold class labels in [0, 3), got 5 at index 0")):
        xent.sparse_categorical_cross_entropy(torch.tensor([5, 0]), torch.asarray(Z), from_logits=True)


def test_jit_skips_data_checks():
    """Under jax.jit the values are unknown: no error, the documented garbage-in result."""
    import jax
    import jax.numpy as jnp

    f = jax.jit(lambda y, p: xent.binary_cross_entropy(y, p))
    assert np.isfinite(float(f(jnp.asarray([1.0, 0.0]), jnp.asarray([0.3, 0.2]))))
    g = jax.jit(lambda y, z: xent.sparse_categorical_cross_entropy(y, z, from_logits=True))
    g(jnp.asarray([0, 7]), jnp.asarray(Z))  # out-of-range label: no exception under tracing


def test_numpy_and_0d_integer_ignore_index():
    import torch

    y = np.array([0, -100])
    ref = xent.sparse_categorical_cross_entropy(y, Z, from_logits=True, ignore_index=-100)
    for idx in (np.int64(-100), np.int16(-100), np.array(-100), torch.tensor(-100)):
        assert xent.sparse_categorical_cross_entropy(y, Z, from_logits=True, ignore_index=idx) == ref
    for bad, shown in ((np.float64(1.0), "1.0"), (True, "True"), (np.array([1, 2]), r"array\(\[1, 2\]\)")):
        with pytest.raises(TypeError, match=rf"`ignore_index` must be None or an integer, got {shown}"):
            xent.sparse_categorical_cross_entropy(np.array([0, 1]), Z, from_logits=True, ignore_index=bad)


def test_complex_inputs_are_rejected_naming_the_argument():
    y, p, pc = np.array([1.0, 0.0]), np.array([0.3, 0.2]), np.array([0.3 + 0.5j, 0.2])
    cases = [
        ("y_pred", lambda: xent.binary_cross_entropy(y, pc)),
        ("y_true", lambda: xent.binary_cross_entropy(y.astype(complex), p)),
        ("weights", lambda: xent.binary_cross_entropy(y, p, weights=pc)),
        ("y_pred", lambda: xent.categorical_cross_entropy(P, P.astype(complex))),
        ("y_true", lambda: xent.categorical_focal_cross_entropy(P.astype(complex), P)),
        ("class_weights", lambda: xent.sparse_categorical_cross_entropy([0, 1], Z, from_logits=True,
                                                                        class_weights=np.ones(3, complex))),
        ("y_pred", lambda: xent.sparse_categorical_cross_entropy([0, 1], Z.astype(np.complex64), from_logits=True)),
    ]
    for name, call in cases:
        with pytest.raises(TypeError, match=rf"`{name}` must hold real numbers .*got dtype complex"):
            call()


def test_zero_d_none_and_classless_predictions_name_y_pred():
    for call in (lambda: xent.categorical_cross_entropy(np.array(1.0), np.array(0.5)),
                 lambda: xent.sparse_categorical_cross_entropy(np.array(1), np.array(0.5)),
                 lambda: xent.categorical_focal_cross_entropy(np.array(1.0), np.array(0.5))):
        with pytest.raises(ValueError, match=re.escape("`y_pred` must have at least 1 dimension (the class axis), "
                                                       "got a 0-d array")):
            call()
    for fn in (xent.binary_cross_entropy, xent.categorical_cross_entropy, xent.binary_focal_cross_entropy):
        with pytest.raises(TypeError, match=re.escape("`y_pred` must be an array of real numbers, got None")):
            fn(np.array([1.0]), None)
        with pytest.raises(TypeError, match=re.escape("`y_true` must be an array of real numbers, got None")):
            fn(None, np.array([0.5]))
    with pytest.raises(ValueError, match=re.escape("`y_pred` must have at least one class along axis 1, got shape (2, 0)")):
        xent.categorical_cross_entropy(np.zeros((2, 0)), np.zeros((2, 0)), from_logits=True)


def test_swapped_binary_arguments_warn(backend):
    """Soft targets with 0/1-only predictions: (y_pred, y_true) in torch's order, most likely."""
    import warnings

    soft, hard = backend.asarray(np.array([0.8, 0.7, 0.1])), backend.asarray(np.array([1.0, 1.0, 0.0]))
    for fn in (xent.binary_cross_entropy, xent.binary_focal_cross_entropy):
        if backend.eager:
            with pytest.warns(UserWarning, match=r"`y_true` holds values other than 0 and 1 \(e.g. 0.8 at index 0\) "
                                                 r"while `y_pred` holds only 0s and 1s: are the arguments swapped\?"):
                backend.call(fn, soft, hard)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            backend.call(fn, hard, soft)  # the right order: silent
            backend.call(fn, hard, hard)  # hard targets and hard predictions: silent
            backend.call(fn, soft, soft)
            backend.call(fn, soft, hard, from_logits=True)  # logits 0 and 1 are ordinary values
            if not backend.eager:
                backend.call(fn, soft, hard)  # under jit the values are unknown: no check


@pytest.mark.parametrize("lib", ["numpy", "torch", "jax"])
def test_negative_weights_are_rejected_on_every_library(lib):
    """xent rejects negative weights where torch accepts them (README, Conventions): the message names the
    argument, the rule and the first offending value."""
    conv = {"numpy": np.asarray, "torch": __import__("torch").asarray, "jax": __import__("jax.numpy").numpy.asarray}[lib]
    y, p = conv(np.array([1.0, 0.0])), conv(np.array([0.3, 0.2]))
    with pytest.raises(ValueError, match=re.escape("`weights` must be finite and >= 0, got -1.0 at index 1")):
        xent.binary_cross_entropy(y, p, weights=conv(np.array([1.0, -1.0])))
    with pytest.raises(ValueError, match=re.escape("`class_weights` must be finite and >= 0, got -1.0 at index 1")):
        xent.sparse_categorical_cross_entropy(conv(np.array([0, 1])), conv(Z), from_logits=True,
                                              class_weights=conv(np.array([1.0, -1.0, 1.0])))
    with pytest.raises(ValueError, match=re.escape("`alpha` must be finite and >= 0, got -0.5 at index 2")):
        xent.categorical_focal_cross_entropy(conv(P), conv(P), alpha=conv(np.array([1.0, 1.0, -0.5])))
