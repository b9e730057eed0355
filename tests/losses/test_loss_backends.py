"""Same results on every backend (NumPy, read-only NumPy, torch, JAX, JAX under jit), and
the analytic gradient (return_grad=True) equals torch autograd and jax.grad through xent."""

from __future__ import annotations

import numpy as np
import pytest

import xent

EPS64 = np.finfo(np.float64).eps


def _probs_with_edges(rng, shape):
    p = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    p[0, :] = 0.0
    p[0, 0] = 1.0  # a certain prediction: every entry gets clipped
    p[1, 1] = EPS64  # exactly on the clip bound: the gradient passes (bounds included)
    return p


def _cases(rng):
    """(id, function of positional arrays, arrays) for one configuration each."""
    z3 = rng.normal(size=(3, 4, 5)) * 3
    lab = rng.integers(0, 4, size=(3, 5))
    lab[0, 1] = -1
    cw4 = rng.uniform(0.3, 2.0, size=4)
    sw35 = rng.uniform(0.0, 2.0, size=(3, 5))
    z = rng.normal(size=(6, 4)) * 2
    t = rng.dirichlet(np.ones(4), size=6)
    p = _probs_with_edges(rng, (6, 4))
    y6 = rng.integers(0, 4, size=6)
    y6[0] = 1  # its true class has probability 0: clipped to eps
    zb = rng.normal(size=(4, 3)) * 4
    yb = rng.integers(0, 2, size=(4, 3)).astype(float)
    pb = rng.uniform(size=(4, 3))
    pb[0] = [0.0, 1.0, EPS64]
    sw4 = rng.uniform(0.1, 2, size=4)
    pw = rng.uniform(0.5, 3.0, size=3)
    alpha4 = rng.uniform(0.2, 1.0, size=4)
    cce, scce, bce = xent.categorical_cross_entropy, xent.sparse_categorical_cross_entropy, xent.binary_cross_entropy
    bfl, cfl = xent.binary_focal_cross_entropy, xent.categorical_focal_cross_entropy
    return [
        ("sparse-logits-axis1", lambda y, x, w, s, **o: scce(y, x, from_logits=True, axis=1, class_weights=w,
                                                             weights=s, ignore_index=-1, label_smoothing=0.1, **o),
         (lab, z3, cw4, sw35)),
        ("sparse-probs-clipped", lambda y, x, **o: scce(y, x, label_smoothing=0.2, base=2, **o), (y6, p)),
        ("categorical-logits", lambda y, x, w, **o: cce(y, x, from_logits=True, class_weights=w, **o), (t, z, cw4)),
        ("categorical-probs", lambda y, x, w, **o: cce(y, x, class_weights=w, label_smoothing=0.1, **o), (t, p, cw4)),
        ("binary-logits", lambda y, x, s, pw, **o: bce(y, x, from_logits=True, weights=s[:, None], pos_weight=pw,
                                                       label_smoothing=0.1, **o), (yb, zb, sw4, pw)),
        ("binary-probs-clipped", lambda y, x, **o: bce(y, x, base=10, **o), (yb, pb)),
        ("binary-focal-logits", lambda y, x, **o: bfl(y, x, from_logits=True, gamma=2.0, alpha=0.25, **o), (yb, zb)),
        ("binary-focal-probs", lambda y, x, pw, **o: bfl(y, x, gamma=1.5, pos_weight=pw, label_smoothing=0.05, **o),
         (yb, pb, pw)),
        ("categorical-focal-logits", lambda y, x, a, **o: cfl(y, x, from_logits=True, alpha=a, gamma=2.0, **o),
         (t, z, alpha4)),
        ("categorical-focal-probs", lambda y, x, w, **o: cfl(y, x, class_weights=w, gamma=3.0, **o), (t, p, cw4)),
    ]


CASE_IDS = [c[0] for c in _cases(np.random.default_rng(0))]


def _case(rng, case_id):
    return next(c for c in _cases(rng) if c[0] == case_id)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_backends_agree_with_numpy(backend, rng, case_id, reduction):
    _, fn, arrays = _case(rng, case_id)
    ref_loss, ref_grad = fn(*arrays, reduction=reduction, return_grad=True)
    loss, grad = backend.call(fn, *[backend.asarray(a) for a in arrays], reduction=reduction, return_grad=True)
    np.testing.assert_allclose(backend.to_numpy(loss), ref_loss, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(backend.to_numpy(grad), ref_grad, rtol=1e-12, atol=1e-15)
    assert tuple(grad.shape) == arrays[1].shape
    assert np.all(np.isfinite(ref_grad))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_torch_autograd_equals_return_grad(rng, case_id, reduction):
    import torch

    _, fn, arrays = _case(rng, case_id)
    tensors = [torch.asarray(a) for a in arrays]
    x = tensors[1].clone().requires_grad_(True)
    loss, grad = fn(tensors[0], x, *tensors[2:], reduction=reduction, return_grad=True)
    loss.sum().backward()
    np.testing.assert_allclose(grad.detach().numpy(), x.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_jax_grad_equals_return_grad(rng, case_id, jit):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    _, fn, arrays = _case(rng, case_id)
    ja = [jnp.asarray(a) for a in arrays]
    auto = jax.grad(lambda x: fn(ja[0], x, *ja[2:], reduction="mean"))
    analytic = lambda x: fn(ja[0], x, *ja[2:], reduction="mean", return_grad=True)[1]  # noqa: E731
    if jit:
        auto, analytic = jax.jit(auto), jax.jit(analytic)
    np.testing.assert_allclose(np.asarray(analytic(ja[1])), np.asarray(auto(ja[1])), rtol=1e-10, atol=1e-14)


def test_dtype_library_and_scalar_results():
    import jax.numpy as jnp
    import torch

    z = np.array([[1.0, 2.0, 0.5], [0.1, 0.2, 0.3]], dtype=np.float32)
    y = np.array([0, 2])
    loss, grad = xent.sparse_categorical_cross_entropy(y, z, from_logits=True, return_grad=True)
    assert isinstance(loss, np.float32) and grad.dtype == np.float32 and isinstance(grad, np.ndarray)
    tl, tg = xent.sparse_categorical_cross_entropy(torch.asarray(y), torch.asarray(z), from_logits=True, return_grad=True)
    assert isinstance(tl, torch.Tensor) and tl.dtype == torch.float32 and tg.dtype == torch.float32
    jl = xent.binary_cross_entropy(jnp.asarray([1.0, 0.0], dtype=jnp.float32), jnp.asarray([0.3, -1.0], dtype=jnp.float32),
                                   from_logits=True)
    assert jl.dtype == jnp.float32
    assert isinstance(xent.binary_cross_entropy([1, 0], [0.9, 0.2]), np.floating)
    f16 = xent.binary_cross_entropy(np.array([1.0], np.float16), np.array([0.0], np.float16))
    assert f16.dtype == np.float16 and np.isclose(float(f16), -np.log(np.finfo(np.float16).eps), rtol=1e-3)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_all_ignored_and_zero_weight_give_zero_and_zero_grad(backend, reduction):
    z = backend.asarray(np.array([[1.0, -2.0, 0.5], [3.0, 0.0, 0.0]]))
    y = backend.asarray(np.array([-100, -100]))
    loss, grad = backend.call(xent.sparse_categorical_cross_entropy, y, z, from_logits=True, ignore_index=-100,
                              reduction=reduction, return_grad=True)
    assert float(backend.to_numpy(loss)) == 0.0 and not np.any(backend.to_numpy(grad))
    w = backend.asarray(np.zeros(2))
    yb = backend.asarray(np.array([1.0, 0.0]))
    xb = backend.asarray(np.array([0.2, 0.7]))
    for fn in (xent.binary_cross_entropy, xent.binary_focal_cross_entropy):
        loss, grad = backend.call(lambda y, x, w, fn=fn, **o: fn(y, x, weights=w, **o), yb, xb, w, reduction=reduction,
                                  return_grad=True)
        assert float(backend.to_numpy(loss)) == 0.0 and not np.any(backend.to_numpy(grad))
    cw = backend.asarray(np.array([0.0, 1.0, 1.0]))
    y0 = backend.asarray(np.array([0, 0]))
    loss, grad = backend.call(lambda y, x, w, **o: xent.sparse_categorical_cross_entropy(y, x, class_weights=w, **o),
                              y0, z, cw, from_logits=True, return_grad=True)
    assert float(backend.to_numpy(loss)) == 0.0 and not np.any(backend.to_numpy(grad))


def test_all_ignored_torch_autograd_is_zero_not_nan():
    import torch

    z = torch.zeros((2, 3), dtype=torch.float64, requires_grad=True)
    loss = xent.sparse_categorical_cross_entropy(torch.tensor([-100, -100]), z, from_logits=True, ignore_index=-100)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(z.grad == 0)


@pytest.mark.parametrize("lib", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_float32_close_to_float64(rng, case_id, lib):
    """float32 in, float32 out (loss and grad), within float32 rounding of the float64 result."""
    _, fn, arrays = _case(rng, case_id)
    if "probs" in case_id:
        # Away from the clip bounds: float32's eps clips at 1.2e-7, float64's at 2.2e-16.
        arrays = (arrays[0], np.clip(arrays[1], 1e-3, 1 - 1e-3), *arrays[2:])
    ref_loss, ref_grad = fn(*arrays, reduction="mean", return_grad=True)
    conv = {"numpy": np.asarray, "torch": __import__("torch").asarray, "jax": __import__("jax.numpy").numpy.asarray}[lib]
    a32 = [conv(a.astype(np.float32)) if a.dtype.kind == "f" else conv(a) for a in arrays]
    loss, grad = fn(*a32, reduction="mean", return_grad=True)
    assert str(loss.dtype).endswith("float32") and str(grad.dtype).endswith("float32")
    np.testing.assert_allclose(np.asarray(loss), ref_loss, rtol=2e-5)
    np.testing.assert_allclose(np.asarray(grad), ref_grad, rtol=2e-4, atol=2e-6)


def test_ignored_or_zero_weight_infinite_loss_is_silent():
    """An ignored or zero-weight example whose loss is inf contributes 0, without NumPy's
    "invalid value encountered in multiply" (0 * inf) RuntimeWarning, to the loss and its gradient."""
    import warnings

    p0 = np.array([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]])  # row 0 gives class 0 probability 0: -log 0 = inf
    calls = [
        lambda **o: xent.binary_cross_entropy(np.array([1.0, 0.0]), np.array([0.0, 0.5]), eps=0.0,
                                              weights=np.array([0.0, 1.0]), **o),
        lambda **o: xent.binary_focal_cross_entropy(np.array([1.0, 0.0]), np.array([0.0, 0.5]), eps=0.0,
                                                    weights=np.array([0.0, 1.0]), **o),
        lambda **o: xent.categorical_cross_entropy(np.eye(3)[[0, 1]], p0, eps=0.0, weights=np.array([0.0, 1.0]), **o),
        lambda **o: xent.categorical_focal_cross_entropy(np.eye(3)[[0, 1]], p0, eps=0.0,
                                                         weights=np.array([0.0, 1.0]), **o),
        lambda **o: xent.sparse_categorical_cross_entropy(np.array([-100, 1]), p0, eps=0.0, ignore_index=-100,
                                                          label_smoothing=0.1, **o),
        lambda **o: xent.sparse_categorical_cross_entropy(np.array([0, 1]), p0, eps=0.0, weights=np.array([0.0, 1.0]),
                                                          **o),
    ]
    for call in calls:
        for reduction in ("mean", "sum", "none"):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                loss, grad = call(reduction=reduction, return_grad=True)
            assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
            assert not np.any(np.atleast_1d(grad)[0])  # the zero-weight / ignored row has a zero gradient


def test_half_precision_large_vocabulary(backend):
    """V = 128256, logits ~ N(0, 0.1) in float16: the loss is ~11.74, not inf (sums accumulate in float32);
    loss and gradient come back in float16, within float16 rounding of the float64 values."""
    if backend.name == "jax":
        pytest.skip("eager JAX compiles every op anew for this shape (~10 s); jax-jit runs the same code")
    rng = np.random.default_rng(6)
    z = (rng.normal(size=(2, 128256)) * 0.1).astype(np.float16)
    y = np.array([3, 128000])
    t = np.zeros(z.shape, np.float16)
    t[[0, 1], y] = 1
    ref_loss, ref_grad = xent.sparse_categorical_cross_entropy(y, z.astype(np.float64), from_logits=True,
                                                               return_grad=True)
    calls = [
        (xent.sparse_categorical_cross_entropy, y),
        (xent.categorical_cross_entropy, t),
        (lambda t, z, **o: xent.categorical_focal_cross_entropy(t, z, gamma=0.0, **o), t),
    ]
    for fn, target in calls:
        loss, grad = backend.call(fn, backend.asarray(target), backend.asarray(z), from_logits=True, return_grad=True)
        assert str(loss.dtype).endswith("float16") and str(grad.dtype).endswith("float16")
        np.testing.assert_allclose(float(backend.to_numpy(loss)), ref_loss, rtol=1e-3)
        np.testing.assert_allclose(backend.to_numpy(grad).astype(np.float64), ref_grad, rtol=1e-2, atol=1e-7)
