"""Options x engines: every path that computes a loss agrees with one float64 truth.

The rules the engines share (:mod:`xent._lib.rules`: label smoothing, the weighted
mean and its zero total weight, the clipping ``eps``) are restated for speed in
several kernels. Here the same inputs go through each of them, over every
option, and each is compared with the formula written out below in plain
float64 NumPy, so that changing a rule in one place and not in another fails:

- the reference path (``xent.engine.use_engine("reference")``: sparse and one-hot cores);
- the compiled engine (``xent.engine._compiled`` on :mod:`xent._native`);
- the NumPy engine (``xent.engine._crossentropy`` / ``_binary``, what ``XENT_NATIVE=0`` runs);
- the torch kernels (the core API's routing, ``xent.torch.cross_entropy`` and
  ``linear_cross_entropy``, their double-backward formula);
- the metric states (``xent.metrics``: weighted log loss, probability clipping).

Sizes are small (the engine's size threshold is lowered); both class layouts of the
native kernels run: few classes (one row per SIMD lane) and many (one row per pass).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import xent
from xent import engine
from xent._lib.native import native
from xent.engine import _binary, _compiled, _crossentropy

SMOOTHING = (0.0, 0.3)
REDUCTIONS = ("mean", "sum", "none")
WEIGHTS = ("none", "some", "zero")  # sample weights: absent, random (some zero), all zero (empty mean)
IGNORE = (None, 2)
SHAPES = ((13, 5), (9, 150))  # few classes (SIMD lanes per row) and many (a row per pass)


def _rtol(dtype: type) -> float:
    return 1e-6 if dtype == np.float32 else 1e-12


# ------------------------------------------------------------------ the truth, written out in float64


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def softmax_truth(z, labels, *, class_weights, weights, ignore_index, smoothing, reduction):
    """(loss, d loss / d z) of sparse softmax cross-entropy, each option from its definition.

    q = (1 - e) onehot(y) + e / C; l_i = -sum_c w_c q_c log p_c; mean = sum s_i k_i l_i / sum s_i k_i w_{y_i},
    0 (with a zero gradient) when that total weight is 0; "none" returns s_i k_i l_i (gradient: of their sum).
    """
    z = np.asarray(z, np.float64)
    n, c = z.shape
    keep = np.ones(n, bool) if ignore_index is None else labels != ignore_index
    y = np.where(keep, labels, 0)
    w = np.ones(c) if class_weights is None else np.asarray(class_weights, np.float64)
    s = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    q = (1 - smoothing) * np.eye(c)[y] + smoothing / c
    logp = _log_softmax(z)
    per = -(w * q * logp).sum(axis=1)
    dper = np.exp(logp) * (w * q).sum(axis=1, keepdims=True) - w * q  # d l_i / d z_i
    factor = np.where(keep, s, 0.0)  # d (sum s_i k_i l_i) / d l_i
    if reduction == "mean":
        total_weight = (factor * w[y]).sum()
        factor = factor / total_weight if total_weight != 0 else np.zeros(n)
    loss = factor * per if reduction == "none" else (factor * per).sum()
    return loss, factor[:, None] * dper


def binary_truth(y, z, *, from_logits, eps, weights, pos_weight, smoothing, reduction):
    """(loss, d loss / d prediction) of binary cross-entropy, from its definition.

    y' = y (1 - e) + e / 2; probabilities clipped to [eps, 1 - eps] (derivative 0 outside);
    l = -(pw y' log p + (1 - y') log(1 - p)); mean = sum s l / sum s, 0 when sum s = 0.
    """
    z = np.asarray(z, np.float64)
    t = y * (1 - smoothing) + smoothing / 2
    a = t * (1.0 if pos_weight is None else pos_weight)
    b = 1 - t
    if from_logits:
        p = 1 / (1 + np.exp(-z))
        per = a * np.logaddexp(0, -z) + b * np.logaddexp(0, z)
        dper = b * p - a * (1 - p)
    else:
        p = np.clip(z, eps, 1 - eps)
        per = -(a * np.log(p) + b * np.log1p(-p))
        dper = np.where((z >= eps) & (z <= 1 - eps), b / (1 - p) - a / p, 0.0)
    s = np.ones_like(z) if weights is None else weights
    factor = s / s.sum() if reduction == "mean" and s.sum() != 0 else (0 * s if reduction == "mean" else s)
    loss = factor * per if reduction == "none" else (factor * per).sum()
    return loss, factor * dper


def _close(got, want, rtol, what):
    got = np.asarray(got, np.float64)
    scale = max(float(np.max(np.abs(want))), 1.0) if np.size(want) else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


# ------------------------------------------------------------------ the paths


def _softmax_paths():
    """name -> fn(z, labels, **options) -> (loss, grad) in nats, every softmax path of the library."""
    import torch

    from xent.torch._route import sparse_categorical_cross_entropy as torch_route

    def reference(z, labels, **o):
        with engine.use_engine("reference"):
            return xent.sparse_categorical_cross_entropy(labels, z, from_logits=True, axis=1, return_grad=True,
                                                         **_public(o))

    def reference_onehot(z, labels, **o):
        # The one-hot core: an ignored row is a zero-weight row (same total weight, same loss).
        keep = np.ones(len(labels), bool) if o["ignore_index"] is None else labels != o["ignore_index"]
        s = (np.ones(len(labels)) if o["weights"] is None else o["weights"]) * keep
        onehot = np.eye(z.shape[1])[np.where(keep, labels, 0)]
        with engine.use_engine("reference"):
            loss, g = xent.categorical_cross_entropy(
                onehot, z, from_logits=True, axis=1, return_grad=True, weights=s, class_weights=o["class_weights"],
                label_smoothing=o["label_smoothing"], reduction=o["reduction"])
        return loss, g

    def engine_options(o):
        return dict(axis=1, class_weights=o["class_weights"], weights=o["weights"], ignore_index=o["ignore_index"],
                    label_smoothing=o["label_smoothing"], reduction=o["reduction"], return_grad=True)

    def native_sparse(z, labels, **o):
        return _compiled.sparse_ce(native().engine, z, labels, **engine_options(o))

    def native_onehot(z, labels, **o):
        eo = engine_options(o)
        keep = np.ones(len(labels), bool) if eo.pop("ignore_index") is None else labels != o["ignore_index"]
        eo["weights"] = (np.ones(len(labels)) if o["weights"] is None else o["weights"]) * keep
        return _compiled.categorical_ce(native().engine, z, np.eye(z.shape[1])[np.where(keep, labels, 0)], **eo)

    def numpy_sparse(z, labels, **o):
        out = _crossentropy.sparse_ce(z, labels, **engine_options(o))
        assert out is not None
        return out

    def numpy_onehot(z, labels, **o):
        eo = engine_options(o)
        keep = np.ones(len(labels), bool) if eo.pop("ignore_index") is None else labels != o["ignore_index"]
        eo["weights"] = (np.ones(len(labels)) if o["weights"] is None else o["weights"]) * keep
        out = _crossentropy.categorical_ce(z, np.eye(z.shape[1])[np.where(keep, labels, 0)], **eo)
        assert out is not None
        return out

    def torch_routed(z, labels, **o):
        t = torch.from_numpy
        out = torch_route(t(z), t(labels), axis=1,
                          class_weights=None if o["class_weights"] is None else t(o["class_weights"]),
                          weights=None if o["weights"] is None else t(o["weights"]), ignore_index=o["ignore_index"],
                          label_smoothing=o["label_smoothing"], reduction=o["reduction"], return_grad=True)
        assert out is not None, "the torch kernels declined"
        return out[0].numpy(), out[1].numpy()

    paths = {"reference": reference, "reference one-hot": reference_onehot, "numpy engine": numpy_sparse,
             "numpy engine one-hot": numpy_onehot, "torch kernels (routed)": torch_routed}
    if native() is not None:
        paths |= {"native engine": native_sparse, "native engine one-hot": native_onehot}
    return paths


def _public(o):
    return {k: v for k, v in o.items() if k in ("class_weights", "weights", "ignore_index", "label_smoothing",
                                                 "reduction")}


def _problem(shape, dtype, rng):
    n, c = shape
    z = rng.normal(0, 3, shape).astype(dtype)
    z[0, :] += 30.0  # a confident row
    labels = rng.integers(0, c, n)
    return z, labels, rng.uniform(0.5, 2.0, c).astype(dtype)


def _sample_weights(kind, n, dtype, rng):
    if kind == "none":
        return None
    if kind == "zero":
        return np.zeros(n, dtype)
    s = rng.uniform(0, 2, n).astype(dtype)
    s[1] = 0.0
    return s


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_every_path_every_option(shape, dtype):
    rng = np.random.default_rng(0)
    z, labels, cw = _problem(shape, dtype, rng)
    paths = _softmax_paths()
    for e, use_cw, sw_kind, ignore, reduction in itertools.product(SMOOTHING, (False, True), WEIGHTS, IGNORE,
                                                                    REDUCTIONS):
        o = dict(class_weights=cw if use_cw else None, weights=_sample_weights(sw_kind, shape[0], dtype, rng),
                 ignore_index=ignore, label_smoothing=e, reduction=reduction)
        y = labels.copy()
        if ignore is not None:
            y[::3] = ignore
        want_loss, want_grad = softmax_truth(z, y, class_weights=o["class_weights"], weights=o["weights"],
                                             ignore_index=ignore, smoothing=e, reduction=reduction)
        for name, fn in paths.items():
            loss, grad = fn(z, y, **o)
            what = f"{name}: e={e} class_weights={use_cw} weights={sw_kind} ignore={ignore} {reduction}"
            _close(loss, want_loss, _rtol(dtype), what + " (loss)")
            _close(grad, want_grad, _rtol(dtype), what + " (grad)")


def test_softmax_every_example_ignored_is_zero_on_every_path():
    z, _, cw = _problem((6, 5), np.float64, np.random.default_rng(1))
    y = np.full(6, 2)
    for name, fn in _softmax_paths().items():
        loss, grad = fn(z, y, class_weights=cw, weights=None, ignore_index=2, label_smoothing=0.3, reduction="mean")
        assert float(loss) == 0.0 and not np.any(grad), name


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_torch_faces_equal_the_truth(reduction):
    """xent.torch.cross_entropy / linear_cross_entropy (no sample weights there), and their double-backward formula."""
    import torch

    import xent.torch as xt
    from xent.torch._formula import formula_loss
    from xent.torch._options import check_options

    rng = np.random.default_rng(2)
    h = rng.normal(0, 1, (11, 6))
    weight = rng.normal(0, 1, (70, 6))
    z = h @ weight.T
    labels = rng.integers(0, 70, 11)
    labels[::4] = -100
    cw = rng.uniform(0.5, 2.0, 70)
    for e, use_cw in itertools.product(SMOOTHING, (False, True)):
        w = cw if use_cw else None
        want_loss, want_grad = softmax_truth(z, labels, class_weights=w, weights=None, ignore_index=-100,
                                             smoothing=e, reduction=reduction)
        tw = None if w is None else torch.from_numpy(w)
        zt = torch.from_numpy(z).requires_grad_()
        loss = xt.cross_entropy(zt, torch.from_numpy(labels), class_weights=tw, label_smoothing=e,
                                reduction=reduction)
        loss.sum().backward()
        _close(loss.detach().numpy(), want_loss, 1e-12, f"cross_entropy e={e} cw={use_cw}")
        _close(zt.grad.numpy(), want_grad, 1e-12, f"cross_entropy grad e={e} cw={use_cw}")
        ht = torch.from_numpy(h).requires_grad_()
        loss = xt.linear_cross_entropy(ht, torch.from_numpy(weight), torch.from_numpy(labels), class_weights=tw,
                                       label_smoothing=e, reduction=reduction)
        loss.sum().backward()
        _close(loss.detach().numpy(), want_loss, 1e-12, f"linear_cross_entropy e={e} cw={use_cw}")
        _close(ht.grad.numpy(), want_grad @ weight, 1e-12, f"linear_cross_entropy grad e={e} cw={use_cw}")
        opts = check_options(ignore_index=-100, label_smoothing=e, z_loss=0.0, softcap=None, reduction=reduction)
        formula, _ = formula_loss(torch.from_numpy(z), torch.from_numpy(labels), opts, tw)
        _close(formula.numpy(), want_loss, 1e-12, f"formula_loss e={e} cw={use_cw}")


def _binary_paths():
    def reference(y, z, **o):
        with engine.use_engine("reference"):
            return xent.binary_cross_entropy(y, z, return_grad=True, **o)

    def numpy_engine(y, z, *, from_logits, eps, **o):
        out = _binary.binary_ce(y, z, return_grad=True, **o)
        assert out is not None
        return out

    def native_engine(y, z, *, from_logits, eps, **o):
        return _compiled.binary_ce(native().engine, y, z, return_grad=True, **o)

    logits_only = {"numpy engine": numpy_engine}
    if native() is not None:
        logits_only["native engine"] = native_engine
    return {"reference": reference}, logits_only


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_binary_every_path_every_option(dtype):
    rng = np.random.default_rng(3)
    n = 40
    y = rng.integers(0, 2, n).astype(dtype)
    y[:3] = [0.25, 0.5, 1.0]  # soft targets too
    z = rng.normal(0, 4, n).astype(dtype)
    p = (1 / (1 + np.exp(-rng.normal(0, 4, n)))).astype(dtype)
    p[:4] = [0.0, 1.0, 1e-20, 1 - 1e-9]  # outside [eps, 1 - eps]: clipped
    pw = rng.uniform(0.5, 3.0, n).astype(dtype)
    every, logits_only = _binary_paths()
    for from_logits, e, use_pw, sw_kind, reduction, eps in itertools.product(
            (True, False), SMOOTHING, (False, True), WEIGHTS, REDUCTIONS, ("auto", 1e-3)):
        if from_logits and eps != "auto":
            continue
        x = z if from_logits else p
        o = dict(weights=_sample_weights(sw_kind, n, dtype, rng), pos_weight=pw if use_pw else None,
                 label_smoothing=e, reduction=reduction)
        eps_value = float(np.finfo(dtype).eps) if eps == "auto" else eps
        want_loss, want_grad = binary_truth(y.astype(np.float64), x, from_logits=from_logits, eps=eps_value,
                                            smoothing=e, **{k: o[k] for k in ("weights", "pos_weight", "reduction")})
        paths = every | (logits_only if from_logits else {})
        for name, fn in paths.items():
            loss, grad = fn(y, x, from_logits=from_logits, eps=eps, **o)
            what = f"{name}: logits={from_logits} e={e} pos_weight={use_pw} weights={sw_kind} {reduction} eps={eps}"
            _close(loss, want_loss, _rtol(dtype), what + " (loss)")
            _close(grad, want_grad, _rtol(dtype), what + " (grad)")


def test_metric_states_equal_the_losses():
    """The streaming metrics' log loss is the losses' weighted mean, with the same eps clipping."""
    from xent.metrics import BinaryState, MulticlassState

    rng = np.random.default_rng(4)
    n = 50
    w = rng.uniform(0, 2, n)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-rng.normal(0, 4, n)))
    p[:3] = [0.0, 1.0, 1e-300]
    for eps in ("auto", 1e-3):
        eps_value = float(np.finfo(np.float64).eps) if eps == "auto" else eps
        want, _ = binary_truth(y.astype(np.float64), p, from_logits=False, eps=eps_value, weights=w,
                               pos_weight=None, smoothing=0.0, reduction="mean")
        got = BinaryState(eps=eps).update(y, p, weights=w).compute().log_loss
        _close(got, want, 1e-12, f"BinaryState eps={eps}")
        _close(xent.binary_cross_entropy(y, p, weights=w, eps=eps), want, 1e-12, f"binary_cross_entropy eps={eps}")
    z = rng.normal(0, 3, n)
    want, _ = binary_truth(y.astype(np.float64), z, from_logits=True, eps=0.0, weights=w, pos_weight=None,
                           smoothing=0.0, reduction="mean")
    _close(BinaryState(from_logits=True).update(y, z, weights=w).compute().log_loss, want, 1e-12, "BinaryState logits")
    logits = rng.normal(0, 3, (n, 6))
    labels = rng.integers(0, 6, n)
    want, _ = softmax_truth(logits, labels, class_weights=None, weights=w, ignore_index=None, smoothing=0.0,
                            reduction="mean")
    got = MulticlassState(6, from_logits=True).update(labels, logits, weights=w).compute().log_loss
    _close(got, want, 1e-12, "MulticlassState logits")
    probs = np.exp(_log_softmax(logits))
    probs[0] = np.eye(6)[(labels[0] + 1) % 6]  # the true class has probability 0: clipped at eps
    for eps in ("auto", 1e-3):
        eps_value = float(np.finfo(np.float64).eps) if eps == "auto" else eps
        want = float(np.sum(w * -np.log(np.clip(probs[np.arange(n), labels], eps_value, 1 - eps_value))) / w.sum())
        got = MulticlassState(6, eps=eps).update(labels, probs, weights=w).compute().log_loss
        _close(got, want, 1e-12, f"MulticlassState probabilities eps={eps}")
        core = xent.sparse_categorical_cross_entropy(labels, probs, weights=w, eps=eps)
        _close(core, want, 1e-12, f"sparse_categorical_cross_entropy probabilities eps={eps}")
