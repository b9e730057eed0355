"""Information measures against SciPy, PyTorch and mpmath, over every backend, plus properties."""

import math

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as ss
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

import xent


def _dirichlet(rng, shape, *, zeros=True):
    """Random distributions along the last axis, some entries exactly 0."""
    x = rng.gamma(0.7, size=shape)
    if zeros:
        x = np.where(rng.random(shape) < 0.2, 0.0, x)
        x[..., 0] += 1e-3  # no all-zero rows
    return x / x.sum(axis=-1, keepdims=True)


def _move(x, axis):
    return np.moveaxis(x, -1, axis)


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("base", [None, 2, 10.0, 0.5])
def test_entropy_matches_scipy(backend, rng, axis, base):
    p = _move(_dirichlet(rng, (3, 4, 5)), axis)
    got = backend.to_numpy(backend.call(xent.entropy, backend.asarray(p), axis=axis, base=base))
    np.testing.assert_allclose(got, ss.entropy(p, base=base, axis=axis), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("base", [None, 2])
def test_kl_and_cross_entropy_match_scipy(backend, rng, axis, base):
    p = _move(_dirichlet(rng, (3, 4, 6)), axis)
    q = _move(_dirichlet(rng, (3, 4, 6), zeros=False), axis)
    lb = 1.0 if base is None else math.log(base)
    kl = backend.to_numpy(backend.call(xent.kl_divergence, backend.asarray(p), backend.asarray(q), axis=axis, base=base))
    np.testing.assert_allclose(kl, sp.rel_entr(p, q).sum(axis=axis) / lb, rtol=1e-12, atol=1e-15)
    # scipy.special.kl_div adds -p + q, which sums to 0 for normalised p and q.
    np.testing.assert_allclose(kl, sp.kl_div(p, q).sum(axis=axis) / lb, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(kl, ss.entropy(p, q, base=base, axis=axis), rtol=1e-12, atol=1e-15)
    ce = backend.to_numpy(backend.call(xent.cross_entropy, backend.asarray(p), backend.asarray(q), axis=axis, base=base))
    ref = (ss.entropy(p, base=base, axis=axis) + ss.entropy(p, q, base=base, axis=axis))
    np.testing.assert_allclose(ce, ref, rtol=1e-12)


@pytest.mark.parametrize("base", [None, 2])
def test_js_matches_scipy_distance_squared(backend, rng, base):
    p = _dirichlet(rng, (5, 7))
    q = _dirichlet(rng, (5, 7))
    got = backend.to_numpy(backend.call(xent.js_divergence, backend.asarray(p), backend.asarray(q), base=base))
    # jensenshannon returns the JS *distance*, the square root of the divergence.
    ref = jensenshannon(p, q, base=base, axis=-1) ** 2
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_matches_torch_kl_div(rng, log_target):
    import torch
    import torch.nn.functional as F

    p = _dirichlet(rng, (4, 6), zeros=not log_target)  # log_target needs log p finite
    q = _dirichlet(rng, (4, 6), zeros=False)
    tp, tq = torch.asarray(p), torch.asarray(q)
    target = torch.log(tp) if log_target else tp
    ref = F.kl_div(torch.log(tq), target, reduction="none", log_target=log_target).sum(-1)
    got = xent.kl_divergence(tp, tq)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)


def test_against_mpmath_including_close_distributions():
    import mpmath

    mpmath.mp.dps = 50
    p = np.array([0.3, 0.2, 0.5, 0.0])
    q = np.array([0.3 + 1e-4, 0.2 - 1e-4, 0.5, 0.0])
    P = [mpmath.mpf(float(v)) for v in p]
    Q = [mpmath.mpf(float(v)) for v in q]
    kl = sum(a * mpmath.log(a / b) for a, b in zip(P, Q) if a > 0)
    h = -sum(a * mpmath.log(a) for a in P if a > 0)
    ce = -sum(a * mpmath.log(b) for a, b in zip(P, Q) if a > 0)
    M = [(a + b) / 2 for a, b in zip(P, Q)]
    js = sum(a * mpmath.log(a / m) / 2 for a, m in zip(P, M) if a > 0) + sum(
        b * mpmath.log(b / m) / 2 for b, m in zip(Q, M) if b > 0
    )
    np.testing.assert_allclose(xent.entropy(p), float(h), rtol=1e-15)
    np.testing.assert_allclose(xent.cross_entropy(p, q), float(ce), rtol=1e-15)
    # KL ~ 4e-8 here: p log(p / q) per term keeps ~10 digits; H(p, q) - H(p) would keep ~8.
    np.testing.assert_allclose(xent.kl_divergence(p, q), float(kl), rtol=1e-9)
    np.testing.assert_allclose(xent.js_divergence(p, q), float(js), rtol=1e-8)


def test_exact_no_clipping_and_zero_log_zero():
    assert xent.entropy(np.array([1.0, 0.0])) == 0.0
    assert xent.cross_entropy(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0.0
    assert xent.cross_entropy(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == np.inf
    assert xent.kl_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == np.inf
    assert xent.kl_divergence(np.array([0.0, 1.0]), np.array([0.5, 0.5])) == pytest.approx(math.log(2))
    assert xent.js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(math.log(2), rel=1e-15)
    # a subnormal q: p / q would overflow; the split log stays finite and exact
    with np.errstate(all="raise"):
        got = xent.kl_divergence(np.array([1.0, 0.0]), np.array([1e-320, 1.0]))
    assert got == pytest.approx(-math.log(1e-320), rel=1e-12)


def test_broadcasting_and_axis_of_broadcast_shape(rng):
    p = _dirichlet(rng, (6,))
    q = _dirichlet(rng, (3, 6), zeros=False)
    np.testing.assert_allclose(xent.kl_divergence(p, q), sp.rel_entr(p, q).sum(-1), rtol=1e-12)
    np.testing.assert_allclose(
        xent.kl_divergence(p[:, None], q.T, axis=0), sp.rel_entr(p[:, None], q.T).sum(0), rtol=1e-12
    )


def test_result_types(backend):
    got = backend.call(xent.entropy, backend.asarray(np.array([0.25, 0.75])))
    if backend.name.startswith("numpy"):
        assert isinstance(got, np.floating)
    assert isinstance(xent.entropy([0.5, 0.5]), np.floating)
    assert isinstance(xent.kl_divergence([1, 0], [0.5, 0.5]), np.float64)  # integers promote


def test_float32_dtypes_kept():
    import jax.numpy as jnp
    import torch

    t = torch.tensor([[0.25, 0.75]], dtype=torch.float32)
    out = xent.js_divergence(t, t)
    assert out.dtype == torch.float32 and out.shape == (1,)
    assert xent.entropy(jnp.asarray([0.5, 0.5], dtype=jnp.float32)).dtype == jnp.float32
    assert xent.entropy(np.array([0.5, 0.5], dtype=np.float32)).dtype == np.float32


def test_seed_containers_in_bits():
    # 30 shapes per container: (26, 4), (14, 16), (29, 1)
    got = [xent.entropy(np.array([a, 30 - a]) / 30, base=2) for a in (26, 14, 29)]
    ref = [ss.entropy([a, 30 - a], base=2) for a in (26, 14, 29)]
    np.testing.assert_allclose(got, ref, rtol=1e-14)
    np.testing.assert_allclose(got, [0.56651, 0.99679, 0.21084], atol=5e-6)


def test_seed_four_class_example():
    p = np.array([0.775, 0.116, 0.039, 0.070])
    y = np.array([1.0, 0.0, 0.0, 0.0])
    assert xent.cross_entropy(y, p, base=2) == pytest.approx(0.36773, abs=5e-6)
    assert xent.cross_entropy(y, p) == pytest.approx(0.25489, abs=5e-6)
    assert xent.sparse_categorical_cross_entropy(np.array([0]), p[None], base=2) == pytest.approx(
        -math.log2(0.775), rel=1e-12
    )


def test_seed_point_error_and_three_doors():
    # a point whose true colour gets probability 0.2 has error -ln 0.2
    assert xent.cross_entropy([1.0, 0.0], [0.2, 0.8]) == pytest.approx(-math.log(0.2), rel=1e-15)
    assert xent.cross_entropy([1.0, 0.0], [0.2, 0.8]) == pytest.approx(1.60944, abs=5e-6)
    y = np.array([1.0, 1.0, 0.0])
    p = np.array([0.8, 0.7, 0.1])
    got = xent.binary_cross_entropy(y, p, reduction="sum")
    assert got == pytest.approx(-(math.log(0.8) + math.log(0.7) + math.log(0.9)), rel=1e-14)
    assert got == pytest.approx(0.68518, abs=5e-6)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: xent.entropy(np.array([0.5, np.nan, 0.5])), r"`p` must hold probabilities in \[0, 1\], got .*nan.* at index 1"),
        (lambda: xent.entropy(np.array([[0.5, 0.5], [1.5, -0.5]])), r"`p` must hold probabilities .*1\.5.* at index \(1, 0\)"),
        (lambda: xent.kl_divergence([0.5, 0.5], [0.5, -0.1]), r"`q` must hold probabilities .*-0\.1.* at index 1"),
        (lambda: xent.cross_entropy([0.5, 0.5], [np.nan, 1.0]), r"`q` must hold probabilities .*nan.* at index 0"),
        (lambda: xent.js_divergence(np.ones((2, 3)) / 3, np.ones((2, 4)) / 4),
         r"broadcast-compatible shapes.*`p` has shape \(2, 3\) and `q` has shape \(2, 4\)"),
        (lambda: xent.entropy([0.5, 0.5], base=1), r"`base` must be None \(nats\) or a finite number > 0 other than 1, got 1"),
        (lambda: xent.entropy([0.5, 0.5], base=0), r"`base` must be .* got 0"),
        (lambda: xent.entropy([0.5, 0.5], base=-2.0), r"`base` must be .* got -2\.0"),
        (lambda: xent.entropy([0.5, 0.5], axis=1), r"`axis` must be in \[-1, 0\] for a 1-d array, got 1"),
    ],
)
def test_bad_input_messages(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_input_types():
    import torch

    with pytest.raises(TypeError, match="`base` must be a real number, got '2'"):
        xent.entropy([0.5, 0.5], base="2")
    with pytest.raises(TypeError, match="`p` is a torch array, `q` is a numpy array"):
        xent.cross_entropy(torch.tensor([0.5, 0.5]), np.array([0.5, 0.5]))


def test_validation_skipped_under_jit_only():
    import jax
    import jax.numpy as jnp
    import torch

    with pytest.raises(ValueError, match="`p` must hold probabilities"):
        xent.entropy(torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="`q` must hold probabilities"):
        xent.kl_divergence(jnp.asarray([0.5, 0.5]), jnp.asarray([0.5, 2.0]))
    # under jit values are unknown: no check, the formula is evaluated as is
    out = jax.jit(xent.entropy)(jnp.asarray([0.5, 1.5]))
    assert out.shape == ()


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(*[st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)] * 2)))
def test_properties(pair):
    a, b = (np.array(v) for v in pair)
    if a.sum() < 1e-3 or b.sum() < 1e-3:
        return
    p, q = a / a.sum(), b / b.sum()
    h = xent.entropy(p)
    ce = xent.cross_entropy(p, q)
    kl = xent.kl_divergence(p, q)
    js = xent.js_divergence(p, q)
    tol = 1e-12
    assert h >= -tol and ce >= h - tol  # Gibbs' inequality
    assert kl >= -1e-15  # >= 0 up to rounding: normalised floats sum to 1 only within an ulp
    assert xent.kl_divergence(p, p) == 0.0
    assert xent.js_divergence(p, p) == 0.0
    if np.isfinite(ce):
        assert ce - h == pytest.approx(kl, abs=1e-12 * (1 + abs(ce)))
    assert js == pytest.approx(xent.js_divergence(q, p), abs=1e-15)
    assert -tol <= js <= math.log(2) + tol
    assert xent.js_divergence(p, q, base=2) <= 1.0 + tol
    assert h <= math.log(len(p)) + tol


def test_autograd_through_measures_is_finite_and_exact():
    import jax
    import jax.numpy as jnp
    import torch

    jax.config.update("jax_enable_x64", True)  # as the backend fixture does
    p = np.array([0.5, 0.0, 0.3, 0.2])
    q = np.array([0.1, 0.4, 0.25, 0.25])
    # d/dq of H(p, q) and of KL(p || q) is -p / q; zero-probability outcomes of p give 0, not NaN
    tq = torch.tensor(q, requires_grad=True)
    xent.kl_divergence(torch.tensor(p), tq).backward()
    np.testing.assert_allclose(tq.grad.numpy(), -p / q, rtol=1e-14)
    g = jax.grad(lambda v: xent.cross_entropy(jnp.asarray(p), v))(jnp.asarray(q))
    np.testing.assert_allclose(np.asarray(g), -p / q, rtol=1e-14)
    # the JS gradient, against central finite differences
    h = 1e-6
    fd = [(xent.js_divergence(p, q + h * e) - xent.js_divergence(p, q - h * e)) / (2 * h) for e in np.eye(4)]
    gj = jax.grad(lambda v: xent.js_divergence(jnp.asarray(p), v))(jnp.asarray(q))
    np.testing.assert_allclose(np.asarray(gj), fd, rtol=1e-6, atol=1e-9)


def test_complex_and_non_numeric_inputs_name_the_argument():
    with pytest.raises(TypeError, match=r"`q` must hold real numbers .*got dtype complex128"):
        xent.cross_entropy([0.5, 0.5], np.array([0.5 + 0.1j, 0.5]))
    with pytest.raises(TypeError, match=r"`p` must be an array of real numbers, got None"):
        xent.entropy(None)
    with pytest.raises(TypeError, match=r"`p` must hold real numbers .*got dtype <U"):
        xent.entropy(["a", "b"])


def test_js_stays_finite_next_to_the_smallest_subnormal():
    """m = (p + q) / 2 underflows to 0 for q = 5e-324 (p = 0): JS must not become inf.

    The true value is 5e-324 * log(2) / 2 ~ 1.7e-324, i.e. 0 or the smallest subnormal."""
    p, q = np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, 5e-324])
    for a, b in ((p, q), (q, p)):
        js = xent.js_divergence(a, b)
        assert 0.0 <= js <= 5e-324
    import mpmath

    mpmath.mp.dps = 40
    p2, q2 = np.array([0.3, 0.7 - 1e-310, 1e-310]), np.array([0.3, 0.7, 0.0])
    ref = 0
    for a, b in zip(p2, q2):
        m = (mpmath.mpf(a) + mpmath.mpf(b)) / 2
        ref += sum(v * mpmath.log(v / m) for v in (mpmath.mpf(a), mpmath.mpf(b)) if v > 0) / 2
    np.testing.assert_allclose(xent.js_divergence(p2, q2), float(ref), rtol=1e-12, atol=1e-320)
