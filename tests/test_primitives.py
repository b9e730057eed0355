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


def _half_logits(dtype=np.float16):
    """Two rows of a Llama-3-sized vocabulary: the float16 sum of the exp terms (~128000) overflows 65504."""
    return (np.random.default_rng(5).normal(size=(2, 128256)) * 0.1).astype(dtype)


def test_half_precision_large_vocabulary(backend):
    """float16 accumulates in float32: finite and within float16 rounding of float64; float16 comes back."""
    z = _half_logits()
    z64 = z.astype(np.float64)
    for ours, theirs in ((xent.logsumexp, sp.logsumexp), (xent.log_softmax, sp.log_softmax),
                         (xent.softmax, sp.softmax)):
        got = backend.call(ours, backend.asarray(z))
        assert str(got.dtype).endswith("float16")
        ref = theirs(z64, axis=-1)
        # Within one float16 ulp of the true value (softmax's ~7e-6 are float16 subnormals).
        ulp = np.abs(np.spacing(ref.astype(np.float16))).astype(np.float64)
        assert np.all(np.abs(backend.to_numpy(got).astype(np.float64) - ref) <= ulp)


def test_bfloat16_torch_large_vocabulary():
    import torch

    z = torch.asarray(_half_logits(np.float32)).to(torch.bfloat16)
    got = xent.logsumexp(z)
    assert got.dtype == torch.bfloat16
    np.testing.assert_allclose(got.float().numpy(), sp.logsumexp(z.double().numpy(), axis=-1), rtol=8e-3)


@pytest.mark.parametrize("fn", [xent.logsumexp, xent.softmax, xent.log_softmax, xent.sigmoid, xent.log_sigmoid])
def test_non_real_inputs_name_x(fn):
    with pytest.raises(TypeError, match=r"`x` must hold real numbers \(bool, integer or real floating\), got dtype <U1"):
        fn(["a", "b"])
    with pytest.raises(TypeError, match=r"`x` must hold real numbers .*got dtype complex128"):
        fn(np.array([1.0 + 2.0j, 0.0]))  # never silently drop the imaginary part
    with pytest.raises(TypeError, match=r"`x` must be an array of real numbers, got None"):
        fn(None)


def test_empty_axis_gives_what_torch_gives(backend):
    """Zero classes: an empty softmax / log_softmax and -inf for logsumexp (the log of an empty sum)."""
    import torch

    x = np.zeros((2, 0))
    ref = {xent.logsumexp: torch.logsumexp(torch.zeros(2, 0), 1), xent.softmax: torch.softmax(torch.zeros(2, 0), 1),
           xent.log_softmax: torch.log_softmax(torch.zeros(2, 0), 1)}
    for fn, expected in ref.items():
        got = backend.to_numpy(backend.call(fn, backend.asarray(x)))
        np.testing.assert_array_equal(got, expected.numpy())
        assert got.shape == tuple(expected.shape)
    # The other axis empty: nothing to reduce per row, an empty result.
    assert backend.to_numpy(backend.call(xent.logsumexp, backend.asarray(np.zeros((0, 3))))).shape == (0,)


def test_zero_d_input_is_one_value(backend):
    """As SciPy and torch: a 0-d x along axis 0 or -1 is a single value."""
    x = backend.asarray(np.array(3.0))
    assert float(backend.to_numpy(backend.call(xent.softmax, x))) == 1.0
    assert float(backend.to_numpy(backend.call(xent.log_softmax, x))) == 0.0
    assert float(backend.to_numpy(backend.call(xent.logsumexp, x))) == 3.0
    with pytest.raises(ValueError, match=r"`axis` must be 0 or -1 for a 0-d `x` \(one value\), got 1"):
        xent.softmax(np.array(3.0), axis=1)
