"""Primitives against SciPy, over every backend, and at extreme logits."""

import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import xent


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (xent.logsumexp, sp.logsumexp),
        (xent.softmax, sp.softmax),
        (xent.log_softmax, sp.log_softmax),
    ],
)
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_axis_functions_match_scipy(backend, rng, ours, theirs, axis):
    x = rng.normal(size=(3, 5, 4)) * 30
    got = backend.to_numpy(backend.call(ours, backend.asarray(x), axis=axis))
    np.testing.assert_allclose(got, theirs(x, axis=axis), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("ours", "theirs"), [(xent.sigmoid, sp.expit), (xent.log_sigmoid, sp.log_expit)])
def test_elementwise_match_scipy(backend, ours, theirs):
    x = np.array([-1e4, -800.0, -30.0, -1.0, 0.0, 1e-8, 1.0, 30.0, 800.0, 1e4])
    got = backend.to_numpy(backend.call(ours, backend.asarray(x)))
    np.testing.assert_allclose(got, theirs(x), rtol=1e-14, atol=0)


def test_results_keep_library_and_dtype():
    import jax.numpy as jnp
    import torch

    t = torch.tensor([[1.0, 2.0]], dtype=torch.float32)
    assert isinstance(xent.log_softmax(t), torch.Tensor) and xent.log_softmax(t).dtype == torch.float32
    j = jnp.asarray([1.0, 2.0], dtype=jnp.float32)
    assert xent.softmax(j).dtype == jnp.float32
    assert isinstance(xent.logsumexp(np.array([1.0, 2.0])), np.floating)
    assert xent.logsumexp(np.array([1.0, 2.0], dtype=np.float32)).dtype == np.float32


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 6)),
           elements=st.floats(-1e300, 1e300, allow_nan=False)),
    st.floats(-1e6, 1e6),
)
def test_log_softmax_finite_and_shift_invariant(x, shift):
    out = xent.log_softmax(x)
    assert np.all(np.isfinite(out) | (out == -np.inf))
    assert np.all(out <= 0)
    # Shift invariance only holds exactly where the shift does not swamp the logits.
    if np.all(np.abs(x) < 1e6):
        np.testing.assert_allclose(xent.log_softmax(x + shift), out, atol=1e-9 * (1 + abs(shift)))


def test_logsumexp_against_mpmath():
    import mpmath

    mpmath.mp.dps = 50
    x = np.array([-745.0, 0.0, 1e-3, 709.0, 709.5])
    ref = mpmath.log(sum(mpmath.e ** mpmath.mpf(float(v)) for v in x))
    np.testing.assert_allclose(xent.logsumexp(x), float(ref), rtol=1e-15)


def test_nonfinite_rows():
    x = np.array([[-np.inf, -np.inf], [np.inf, 0.0]])
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(xent.logsumexp(x), [-np.inf, np.inf])


def test_bad_axis_names_argument():
    with pytest.raises(ValueError, match=r"`axis` must be in \[-2, 1\] for a 2-d array, got 2"):
        xent.softmax(np.ones((2, 2)), axis=2)


def test_mixed_libraries_rejected():
    import torch

    from xent._lib.namespace import get_namespace

    with pytest.raises(TypeError, match="`y_true` is a torch array, `y_pred` is a numpy array"):
        get_namespace(torch.ones(2), np.ones(2), names=("y_true", "y_pred"))
