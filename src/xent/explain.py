r"""Step-by-step explanations of cross-entropy numbers, computed by xent itself.

Each ``explain_*`` function returns an :class:`Explanation`: the inputs, an
ordered list of :class:`Step` (a title, the formula and the numbers) and a flat
``results`` mapping. Every number in it comes from a call to xent's public
functions (``sigmoid``, ``softmax``, the losses with ``reduction="none"``,
``"sum"`` and ``"mean"``, ``return_grad=True``, the information measures), so
what ``xent explain`` prints is what the library computes. ``xent explain``
(``xent.cli.explain``) only parses the command line and prints
:meth:`Explanation.to_text` or :meth:`Explanation.to_dict`.

Examples
--------
The three doors of the seed article: gifts behind doors 1 and 2, predicted
gift probabilities 0.8, 0.7 and 0.1.

>>> from xent.explain import explain_binary
>>> ex = explain_binary([1, 1, 0], probs=[0.8, 0.7, 0.1])
>>> round(ex.results["sum"], 5)
0.68518
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

import xent
from xent._lib.validation import check_base, check_choice

__all__ = [
    "Explanation",
    "Measure",
    "Step",
    "explain_binary",
    "explain_categorical",
    "explain_distributions",
    "plot_explanation",
]

Measure = Literal["entropy", "cross_entropy", "kl", "js"]

# Rows of probabilities must sum to 1 within this absolute tolerance (users type decimals).
SUM_TOLERANCE = 1e-6


@dataclass
class Step:
    """One step of a derivation: what it computes, the formula, and the numbers."""

    title: str
    formula: str
    values: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "formula": self.formula, "values": self.values}


@dataclass
class Explanation:
    """The result of an ``explain_*`` call.

    Attributes
    ----------
    kind : str
        "binary", "categorical" or "distributions".
    inputs : dict
        The inputs as given (lists of floats).
    steps : list of Step
        The derivation, in order.
    results : dict
        Flat results: per-example losses, sum, mean, the same in ``base`` and,
        when asked, the gradient. Floats and nested lists of floats.
    points : list of (probability, -log probability)
        The probabilities that the loss takes the log of, for :func:`plot_explanation`.
    """

    kind: str
    inputs: dict[str, Any]
    steps: list[Step]
    results: dict[str, Any]
    points: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``inf`` stays a float; ``json.dumps`` writes ``Infinity``)."""
        return {
            "kind": self.kind,
            "inputs": self.inputs,
            "steps": [s.to_dict() for s in self.steps],
            "results": self.results,
        }

    def to_text(self, *, digits: int = 5) -> str:
        """The derivation as plain text, one numbered step after another."""
        out: list[str] = []
        for i, s in enumerate(self.steps, 1):
            out.append(f"{i}. {s.title}")
            out.append(f"   {s.formula}")
            for line in s.lines:
                out.append(f"   {line}")
            for name, v in s.values.items():
                out.append(f"   {name} = {_fmt(v, digits)}")
        return "\n".join(out)


def _fmt(v: Any, digits: int) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x, digits) for x in v) + "]"
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        v = v + 0.0  # -0.0 prints as 0
        return f"{v:.{digits}f}" if 10.0 ** -digits <= abs(v) < 1e6 or v == 0 else f"{v:.{digits}g}"
    return str(v)


def _py(x: Any) -> Any:
    """NumPy results as plain floats / nested lists of floats (JSON-ready)."""
    return np.asarray(x, dtype=np.float64).tolist()


def _units(base: float | None, *, singular: bool = False) -> str:
    """The name of the unit of log base ``base`` (None or e: nats)."""
    if base is None or base == math.e:
        name = "nat"
    elif base == 2:
        name = "bit"
    elif base == 10:
        name = "hartley"
    else:
        return f"unit{'' if singular else 's'} of log base {base:g}"
    return name if singular else name + "s"


def quantity(value: float, base: float | None) -> str:
    """``value`` with its unit, e.g. ``"1 bit"``, ``"0.510826 nats"`` (6 significant digits)."""
    return f"{value:.6g} {_units(base, singular=value == 1)}"


def _as_vector(name: str, values: Any) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"`{name}` must be a non-empty list of numbers, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        i = int(np.argmin(np.isfinite(a)))
        raise ValueError(f"`{name}` must hold finite numbers, got {a[i]} at position {i}")
    return a


def _as_rows(name: str, values: Any) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=np.float64)
    except ValueError:
        raise ValueError(f"`{name}` rows must all have the same number of values") from None
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"`{name}` must be one row or a list of equal-length rows of numbers, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        r, c = (int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(f"`{name}` must hold finite numbers, got {a[r, c]} in row {r} at position {c}")
    return a


def _check_unit_interval(name: str, a: np.ndarray, what: str) -> None:
    bad = (a < 0) | (a > 1)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"position {idx[0]}" if len(idx) == 1 else f"row {idx[0]} at position {idx[1]}"
        raise ValueError(f"`{name}` must hold {what} in [0, 1], got {a[idx]:g} in {where}")


def _check_rows_sum_to_one(name: str, rows: np.ndarray) -> None:
    sums = rows.sum(axis=-1)
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
        r = int(np.argmax(bad))
        row = f"row {r} " if rows.shape[0] > 1 else ""
        raise ValueError(
            f"`{name}` {row}must sum to 1 (within {SUM_TOLERANCE:g}), got {sums[r]:.10g}; "
            "fractions such as 1/3 are exact"
        )


def _one_of(probs: Any, logits: Any) -> tuple[str, Any]:
    if (probs is None) == (logits is None):
        raise ValueError("give exactly one of `probs` and `logits`")
    return ("probs", probs) if probs is not None else ("logits", logits)


def _reductions(loss_fn: Any, y: Any, x: Any, opts: dict[str, Any], base: float, grad: bool) -> dict[str, Any]:
    """Per-example losses, sum and mean in nats and in ``base``, and the gradient of the mean (nats)."""
    res: dict[str, Any] = {
        "per_example": _py(loss_fn(y, x, reduction="none", **opts)),
        "sum": float(loss_fn(y, x, reduction="sum", **opts)),
        "mean": float(loss_fn(y, x, reduction="mean", **opts)),
        "base": base,
        "per_example_base": _py(loss_fn(y, x, reduction="none", base=base, **opts)),
        "sum_base": float(loss_fn(y, x, reduction="sum", base=base, **opts)),
        "mean_base": float(loss_fn(y, x, reduction="mean", base=base, **opts)),
    }
    if grad:
        _, g = loss_fn(y, x, reduction="mean", return_grad=True, **opts)
        res["grad"] = _py(g)
    return res


def _reduction_steps(res: dict[str, Any], n: int, shown_base: float, wrt: str, grad_formula: str,
                     grad_lines: Sequence[str] = ()) -> list[Step]:
    units = _units(shown_base)
    steps = [
        Step("Sum over examples (the negative log-likelihood of all the data)", "L_sum = sum_i l_i",
             {"sum (nats)": res["sum"]}),
        Step("Mean over examples (the cost that training minimises)", f"L_mean = L_sum / N,  N = {n}",
             {"mean (nats)": res["mean"]}),
    ]
    if shown_base != math.e:
        steps.append(Step(f"In {units}: divide nats by ln({shown_base:g})",
             f"L_{_base_tag(shown_base)} = L_nats / ln({shown_base:g}) = L_nats / {math.log(shown_base):.6f}",
             {f"per-example ({units})": res["per_example_base"], f"sum ({units})": res["sum_base"],
              f"mean ({units})": res["mean_base"]}))
    if "grad" in res:
        symbol = "z" if wrt == "logits" else "p"
        steps.append(Step(f"Gradient of the mean loss (nats) with respect to the {wrt} {symbol}", grad_formula,
                          {f"dL_mean/d{symbol}": res["grad"]}, list(grad_lines)))
    return steps


def _shown_base(base: Any) -> float:
    """The unit shown beside nats: ``base`` when given, else 2 (bits)."""
    b = check_base(base)
    return 2.0 if b is None else b


def _surprise(prob: float) -> float:
    """-ln(prob), as the cross-entropy of a certain outcome against ``prob`` (inf for 0)."""
    return float(xent.cross_entropy([1.0], [float(prob)]))


def _base_tag(base: float) -> str:
    return "bits" if base == 2 else f"base{base:g}"


@dataclass(frozen=True)
class _Clip:
    """Clipping of probabilities to [eps, 1 - eps], as the losses do with ``eps="auto"``."""

    eps: float  # 0.0: no clipping (--exact, or logits)

    @classmethod
    def of(cls, which: str, exact: bool) -> _Clip:
        # the losses' eps="auto" for these float64 inputs: float64 machine epsilon
        return cls(0.0 if exact or which == "logits" else float(np.finfo(np.float64).eps))

    def value(self, p: float) -> float:
        return min(max(p, self.eps), 1.0 - self.eps) if self.eps else p

    def bites(self, p: float) -> bool:
        return self.value(p) != p

    def show(self, p: float) -> str:
        """``"0.5"``, or ``"0 -> eps"`` when clipped: a probability and what the loss uses instead."""
        if not self.bites(p):
            return f"{p:.5g}"
        return f"{p:.5g} -> {'eps' if p < self.eps else '1 - eps'}"

    def note(self) -> list[str]:
        return [f"p is clipped to [eps, 1 - eps], eps = {self.eps:.6g} (float64 machine epsilon, as scikit-learn "
                ">= 1.5):",
                f"a p of 0 for what happened costs -ln(eps) = {-math.log(self.eps):.5f} nats instead of inf "
                "(--exact: no clipping)"]

    def grad_lines(self, where: Sequence[str]) -> list[str]:
        if not where:
            return []
        return [f"clipped at {', '.join(where)}: there the loss uses the bound (eps or 1 - eps), a constant,",
                "so it does not change with p and dL/dp = 0, as torch autograd and jax.grad give "
                "(--exact: unclipped)"]


def _ln_text(v: float, eps: float) -> str:
    """The argument of ``-ln(...)``, keeping ``1 - eps`` readable."""
    return f"1 - {eps:.6g}" if eps and v == 1.0 - eps else f"{v:.6g}"


def explain_binary(
    labels: Sequence[float],
    /,
    *,
    probs: Sequence[float] | None = None,
    logits: Sequence[float] | None = None,
    base: float | None = None,
    grad: bool = False,
    exact: bool = False,
) -> Explanation:
    r"""Explain binary cross-entropy of ``labels`` against ``probs`` or ``logits``.

    .. math:: \ell_i = -[y_i \log p_i + (1 - y_i) \log(1 - p_i)], \quad p_i = \sigma(z_i)

    Probabilities are clipped to ``[eps, 1 - eps]`` (``eps`` = float64 machine
    epsilon) as the loss does by default; the text shows each clipped value and
    why the gradient is 0 there.

    Parameters
    ----------
    labels : sequence of float in [0, 1], length N
        0/1 labels (or soft labels).
    probs, logits : sequence of float, length N
        Exactly one: predicted probabilities of label 1, or logits.
    base : float, optional
        The unit shown beside nats (``results["base"]``): None shows bits (base 2).
    grad : bool
        Add the gradient of the mean loss (``return_grad=True``).
    exact : bool
        Probabilities are not clipped (``eps=0.0``): p = 0 for a true label gives inf.

    Returns
    -------
    Explanation
        ``results["eps"]`` is the clipping bound (0.0 for logits or ``exact``)
        and ``results["clipped"]`` the positions of clipped probabilities.

    Examples
    --------
    >>> ex = explain_binary([1, 0], probs=[0.0, 0.5])
    >>> ex.results["clipped"], round(ex.results["per_example"][0], 5)
    ([0], 36.04365)
    """
    base = _shown_base(base)
    y = _as_vector("labels", labels)
    _check_unit_interval("labels", y, "labels")
    which, given = _one_of(probs, logits)
    x = _as_vector(which, given)
    if x.shape != y.shape:
        raise ValueError(f"`labels` and `{which}` must have the same length, got {y.size} and {x.size}")
    steps: list[Step] = []
    opts: dict[str, Any] = {"from_logits": which == "logits"}
    clip = _Clip.of(which, exact)
    if which == "logits":
        p = np.asarray(xent.sigmoid(x))
        steps.append(Step("Sigmoid turns each logit into the probability of label 1",
                          "p_i = sigmoid(z_i) = 1 / (1 + exp(-z_i))", {"z": _py(x), "p": _py(p)}))
    else:
        _check_unit_interval("probs", x, "probabilities")
        p = x
        opts["eps"] = clip.eps if clip.eps else 0.0
    res = _reductions(xent.binary_cross_entropy, y, x, opts, base, grad)
    res["probs"] = _py(p)
    clipped = [i for i, pi in enumerate(p.tolist()) if clip.bites(pi)]
    res["eps"], res["clipped"] = clip.eps, clipped
    hard = bool(np.all((y == 0) | (y == 1)))
    per = res["per_example"]
    lines = []
    points = []
    for i, (yi, pi, li) in enumerate(zip(y.tolist(), p.tolist(), per)):
        pc = clip.value(pi)
        if hard:
            # the probability the model gave to what actually happened
            if yi == 1:
                pt, expr = pc, f"-ln({_ln_text(pc, clip.eps)})"
            elif clip.bites(pi):
                pt, expr = 1.0 - pc, f"-ln(1 - ({_ln_text(pc, clip.eps)})) = -ln({1.0 - pc:.6g})"
            else:
                pt, expr = 1.0 - pc, f"-ln(1 - {pc:.5g})"
            lines.append(f"i={i}: y={yi:g}, p={clip.show(pi)}: {expr} = {_fmt(li, 5)}")
            points.append((pt, li))
        else:
            lines.append(f"i={i}: y={yi:g}, p={clip.show(pi)}: -[{yi:g} ln({_ln_text(pc, clip.eps)}) + {1 - yi:g} "
                         f"ln(1 - {_ln_text(pc, clip.eps)})] = {_fmt(li, 5)}")
    if clipped:
        lines += clip.note()
    steps.append(Step("Per-example loss: -log of the probability given to the observed label",
                      "l_i = -[y_i ln(p_i) + (1 - y_i) ln(1 - p_i)]", {"l (nats)": per}, lines))
    grad_formula = ("dL/dz_i = (sigmoid(z_i) - y_i) / N" if which == "logits"
                    else "dL/dp_i = (p_i - y_i) / (N p_i (1 - p_i))")
    steps += _reduction_steps(res, y.size, base, "logits" if which == "logits" else "probabilities", grad_formula,
                              clip.grad_lines([f"i={i}" for i in clipped]))
    return Explanation("binary", {"labels": _py(y), which: _py(x)}, steps, res, points)


def _parse_target(target: Any, n: int, c: int) -> tuple[str, np.ndarray]:
    """Class indices (one per example) or distributions (one row per example)."""
    t = np.asarray(target, dtype=np.float64)
    if t.ndim == 0:
        t = t[None]
    if t.ndim == 2 or (t.ndim == 1 and n == 1 and t.size == c and c > 1):
        rows = t.reshape(-1, c) if t.size == n * c else None
        if rows is None or rows.shape[0] != n:
            raise ValueError(f"`target` as distributions must have {n} row(s) of {c} values, got shape {t.shape}")
        _check_unit_interval("target", rows, "target probabilities")
        _check_rows_sum_to_one("target", rows)
        return "distribution", rows
    if t.ndim != 1 or t.size != n:
        raise ValueError(
            f"`target` must be {n} class index(es) or {n} row(s) of {c} probabilities, got {t.size} value(s)"
        )
    if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
        i = int(np.argmax(~np.isfinite(t) | (t != np.round(t))))
        raise ValueError(f"`target` class indices must be integers, got {t[i]:g} at position {i}")
    bad = (t < 0) | (t >= c)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"`target` class index must be in [0, {c}) for {c} classes, got {int(t[i])} at position {i}")
    return "index", t.astype(np.int64)


def explain_categorical(
    target: Any,
    /,
    *,
    probs: Any = None,
    logits: Any = None,
    base: float | None = None,
    grad: bool = False,
    exact: bool = False,
) -> Explanation:
    r"""Explain categorical cross-entropy of ``target`` against ``probs`` or ``logits``.

    .. math:: \ell_i = -\sum_c t_{ic} \log p_{ic}, \quad p_i = \mathrm{softmax}(z_i)

    Parameters
    ----------
    target : int, sequence of int, or rows of probabilities
        Class indices, one per example (``sparse_categorical_cross_entropy``),
        or one-hot / soft target rows of C values (``categorical_cross_entropy``).
    probs, logits : rows of C floats (one row or N rows)
        Exactly one. Probability rows must sum to 1.
    base, grad, exact
        As in :func:`explain_binary` (probabilities are clipped to [eps, 1 - eps]
        unless ``exact``).

    Returns
    -------
    Explanation
    """
    base = _shown_base(base)
    which, given = _one_of(probs, logits)
    x = _as_rows(which, given)
    n, c = x.shape
    if c < 2:
        raise ValueError(f"`{which}` rows need at least 2 classes, got {c}")
    if which == "probs":
        _check_unit_interval("probs", x, "probabilities")
        _check_rows_sum_to_one("probs", x)
    form, t = _parse_target(target, n, c)
    steps: list[Step] = []
    opts: dict[str, Any] = {"from_logits": which == "logits"}
    clip = _Clip.of(which, exact)
    if which == "logits":
        p = np.asarray(xent.softmax(x))
        steps.append(Step("Softmax turns each row of logits into probabilities that sum to 1",
                          "p_ic = exp(z_ic) / sum_k exp(z_ik)  (computed as exp(z_ic - max_k z_ik) / ...)",
                          {"z": _py(x), "p": _py(p)}))
    else:
        p = x
        opts["eps"] = clip.eps if clip.eps else 0.0
    # the probabilities the loss takes the log of: clipped like the loss clips them
    pc = np.vectorize(clip.value, otypes=[np.float64])(p) if clip.eps else p
    loss_fn = xent.sparse_categorical_cross_entropy if form == "index" else xent.categorical_cross_entropy
    res = _reductions(loss_fn, t, x, opts, base, grad)
    res["probs"] = _py(p)
    res["target_form"] = form
    res["eps"] = clip.eps
    per = res["per_example"]
    lines, points = [], []
    if form == "index":
        used = [(i, int(yi)) for i, yi in enumerate(t.tolist())]
        for i, yi in used:
            lines.append(f"i={i}: true class {yi}, p[{yi}] = {clip.show(p[i, yi])}: "
                         f"-ln({_ln_text(pc[i, yi], clip.eps)}) = {_fmt(per[i], 5)}")
            points.append((float(pc[i, yi]), per[i]))
        formula = "l_i = -ln(p_i[y_i])  (the one-hot target keeps only the true class)"
        title = "Per-example loss: -log of the probability of the true class"
    else:
        used = [(i, k) for i in range(n) for k in range(c) if t[i, k] > 0]
        # each class's contribution -t_c ln p_c, from the information measure on single outcomes
        terms = np.asarray(xent.cross_entropy(t[..., None], pc[..., None]))
        for i in range(n):
            parts = " + ".join(f"{_fmt(float(v), 5)}" for v in terms[i])
            lines.append(f"i={i}: -sum_c t_c ln(p_c) = {parts} = {_fmt(per[i], 5)}")
        points += [(float(pc[i, k]), _surprise(pc[i, k])) for i, k in used]
        res["per_class_terms"] = _py(terms)
        formula = "l_i = -sum_c t_ic ln(p_ic)"
        title = "Per-example loss: cross-entropy of the target row against the predicted row"
    # only the probabilities that the loss reads (t_ic > 0) matter; the others have a zero gradient anyway
    clipped = [(i, k) for i, k in used if clip.bites(float(p[i, k]))]
    res["clipped"] = [list(ik) for ik in clipped]
    if clipped:
        lines += [f"i={i}: p[{k}] = {clip.show(float(p[i, k]))}" for i, k in clipped if form != "index"]
        lines += clip.note()
    steps.append(Step(title, formula, {"l (nats)": per}, lines))
    if which == "logits":
        gf = "dL/dz_ic = (p_ic - t_ic) / N"
    else:
        gf = "dL/dp_ic = -t_ic / (N p_ic)"
    steps += _reduction_steps(res, n, base, "logits" if which == "logits" else "probabilities", gf,
                              clip.grad_lines([f"(i={i}, c={k})" for i, k in clipped]))
    inputs = {"target": t.tolist() if form == "index" else _py(t), which: _py(x)}
    return Explanation("categorical", inputs, steps, res, points)


def explain_distributions(
    p: Sequence[float],
    q: Sequence[float] | None = None,
    /,
    *,
    base: float | None = None,
    measure: str = "entropy",
) -> Explanation:
    r"""Explain H(p) and, with ``q``, H(p, q), KL(p || q) and JS(p, q), in nats and ``base``.

    .. math::

        H(p) = -\sum_i p_i \ln p_i, \quad H(p, q) = -\sum_i p_i \ln q_i = H(p) + D_{KL}(p \| q)

    Parameters
    ----------
    p, q : sequence of float
        Distributions (each must sum to 1 within 1e-6); ``q`` is needed for every
        measure other than ``"entropy"``.
    base : float, optional
        The unit shown beside nats (``results["base"]``): None shows bits (base 2).
    measure : {"entropy", "cross_entropy", "kl", "js"}
        The headline measure (``results["value"]``); all applicable measures are shown.

    Returns
    -------
    Explanation
    """
    check_choice("measure", measure, Measure)
    shown = base = _shown_base(base)
    units = _units(shown)
    pa = _as_vector("p", p)
    _check_unit_interval("p", pa, "probabilities")
    _check_rows_sum_to_one("p", pa[None])
    if measure != "entropy" and q is None:
        raise ValueError(f"measure {measure!r} needs both `p` and `q`")
    res: dict[str, Any] = {"base": base}
    # per-outcome terms come from the measures on one-outcome "distributions" (no renormalisation)
    h_terms = np.asarray(xent.entropy(pa[:, None]))
    res["entropy"] = float(xent.entropy(pa))
    res["entropy_base"] = float(xent.entropy(pa, base=shown))
    steps = [Step("Entropy of p: the average surprise -ln p_i of outcomes drawn from p",
                  "H(p) = -sum_i p_i ln(p_i)   (0 ln 0 = 0)",
                  {"-p_i ln(p_i)": _py(h_terms), "H(p) (nats)": res["entropy"], f"H(p) ({units})": res["entropy_base"]})]
    points = [(float(v), _surprise(v)) for v in pa if v > 0]
    inputs: dict[str, Any] = {"p": _py(pa)}
    if q is not None:
        qa = _as_vector("q", q)
        if qa.shape != pa.shape:
            raise ValueError(f"`p` and `q` must have the same length, got {pa.size} and {qa.size}")
        _check_unit_interval("q", qa, "probabilities")
        _check_rows_sum_to_one("q", qa[None])
        inputs["q"] = _py(qa)
        ce_terms = np.asarray(xent.cross_entropy(pa[:, None], qa[:, None]))
        kl_terms = np.asarray(xent.kl_divergence(pa[:, None], qa[:, None]))
        ma = (pa + qa) / 2
        js_terms = (np.asarray(xent.kl_divergence(pa[:, None], ma[:, None]))
                    + np.asarray(xent.kl_divergence(qa[:, None], ma[:, None]))) / 2
        for key, fn in (("cross_entropy", xent.cross_entropy), ("kl", xent.kl_divergence), ("js", xent.js_divergence)):
            res[key] = float(fn(pa, qa))
            res[f"{key}_base"] = float(fn(pa, qa, base=shown))
        steps += [
            Step("Cross-entropy H(p, q): the average surprise when outcomes from p are coded with q",
                 "H(p, q) = -sum_i p_i ln(q_i)",
                 {"-p_i ln(q_i)": _py(ce_terms), "H(p, q) (nats)": res["cross_entropy"],
                  f"H(p, q) ({units})": res["cross_entropy_base"]}),
            Step("KL divergence: the extra surprise of using q instead of p",
                 "KL(p || q) = sum_i p_i ln(p_i / q_i) = H(p, q) - H(p) >= 0",
                 {"p_i ln(p_i / q_i)": _py(kl_terms), "KL(p || q) (nats)": res["kl"],
                  f"KL(p || q) ({units})": res["kl_base"]},
                 [f"check: H(p, q) - H(p) = {_fmt(res['cross_entropy'] - res['entropy'], 5)} nats"]),
            Step("Jensen-Shannon divergence: symmetric, finite, at most ln 2 = 1 bit",
                 "JS(p, q) = KL(p || m) / 2 + KL(q || m) / 2,  m = (p + q) / 2",
                 {"m_i": _py(ma), "[p_i ln(p_i / m_i) + q_i ln(q_i / m_i)] / 2": _py(js_terms),
                  "JS(p, q) (nats)": res["js"], f"JS(p, q) ({units})": res["js_base"]}),
        ]
        res["terms"] = {"entropy": _py(h_terms), "cross_entropy": _py(ce_terms), "kl": _py(kl_terms),
                        "js": _py(js_terms)}
        points = [(float(v), _surprise(v)) for v, w in zip(qa, pa) if w > 0]
    else:
        res["terms"] = {"entropy": _py(h_terms)}
    res["measure"] = measure
    res["value"] = res[measure]
    res["value_base"] = res[f"{measure}_base"]
    return Explanation("distributions", inputs, steps, res, points)


_TERM_LABELS = {
    "entropy": ("-p_i ln p_i", "H(p)"),
    "cross_entropy": ("-p_i ln q_i", "H(p, q)"),
    "kl": ("p_i ln(p_i / q_i)", "KL(p || q)"),
    "js": ("[p_i ln(p_i / m_i) + q_i ln(q_i / m_i)] / 2", "JS(p, q)"),
}


def _pyplot() -> Any:
    try:
        import matplotlib  # optional dependency (the cli extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # optional dependency (the cli extra)
    except ImportError:
        raise ModuleNotFoundError('plotting needs matplotlib: pip install "xent-ml[cli]"', name="matplotlib") from None
    return plt


def plot_explanation(explanation: Explanation, path: str, *, title: str | None = None) -> None:
    """Draw an explanation and save it as a PNG to ``path``.

    Losses (binary, categorical): the curve -ln p against p, with each example's
    probability of what happened and its loss marked (clipped probabilities at
    their clipped value). Distributions: bars of p and q (and m for JS) per
    outcome, and below them the pointwise terms of the measure, which sum to it.

    Needs matplotlib (the ``cli`` extra); it is imported here, with the Agg backend.
    """
    plt = _pyplot()
    if explanation.kind == "distributions":
        fig = _plot_distributions(plt, explanation, title)
    else:
        fig = _plot_losses(plt, explanation, title)
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def _plot_losses(plt: Any, e: Explanation, title: str | None) -> Any:
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    lo = 1e-3
    grid = np.linspace(lo, 1.0, 500)
    ax.plot(grid, -np.log(grid), color="0.35", lw=1.5, label="loss -ln p")
    points = [(i, a, b) for i, (a, b) in enumerate(e.points) if math.isfinite(b)]
    on = [(i, a, b) for i, a, b in points if a >= lo]
    off = [(i, a, b) for i, a, b in points if a < lo]  # e.g. p = 0 clipped to eps: -ln p is far above the rest
    top = max(4.0, *(1.15 * b for _, _, b in on)) if on else 4.0
    if on:
        _, xs, ys = zip(*on)
        ax.scatter(xs, ys, color="C3", zorder=3, s=36, label="each example")
        for i, a, b in on:
            ax.annotate(f"i={i}: {b:.4g}", (a, b), textcoords="offset points", xytext=(6, 4), fontsize=9)
    for k, (i, a, b) in enumerate(off):
        y = top * (0.97 - 0.08 * k)
        ax.scatter([0.0], [y], marker="^", color="C3", zorder=3, s=50, clip_on=False)
        ax.annotate(f"i={i}: p = {a:.3g}, loss {b:.4g} (off the scale)", (0.0, y), textcoords="offset points",
                    xytext=(8, -3), fontsize=9)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, top)
    ax.set_xlabel("probability given to what happened")
    ax.set_ylabel("loss (nats)")
    r = e.results
    ax.set_title(title or f"xent explain {e.kind}: mean loss {r['mean']:.4g} nats over {len(r['per_example'])} "
                          "example(s)", fontsize=10)
    if r.get("clipped"):
        ax.text(0.98, 0.70, f"p clipped to [eps, 1 - eps]\neps = {r['eps']:.3g}", transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color="0.3")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    fig.tight_layout()
    return fig


def _plot_distributions(plt: Any, e: Explanation, title: str | None) -> Any:
    r = e.results
    measure = r["measure"]
    p = np.asarray(e.inputs["p"])
    series = [("p", p, "C0")]
    if "q" in e.inputs:
        q = np.asarray(e.inputs["q"])
        series.append(("q", q, "C1"))
        if measure == "js":
            series.append(("m = (p + q) / 2", (p + q) / 2, "0.6"))
    terms = np.asarray(r["terms"][measure], dtype=np.float64)
    n = p.size
    x = np.arange(n)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(5.5, 0.7 * n + 2.5), 6.0), dpi=100, sharex=True,
                                      gridspec_kw={"height_ratios": [1, 1]})
    width = 0.8 / len(series)
    for k, (name, v, color) in enumerate(series):
        xs = x - 0.4 + width * (k + 0.5)
        top.bar(xs, v, width=width, color=color, label=name)
        if n <= 12:
            for a, b in zip(xs, v):
                top.annotate(f"{b:.3g}", (a, b), textcoords="offset points", xytext=(0, 2), ha="center", fontsize=8)
    top.set_ylim(0, 1.12)
    top.set_ylabel("probability")
    top.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=9, ncol=len(series), frameon=False)
    top.grid(axis="y", alpha=0.3)

    label, name = _TERM_LABELS[measure]
    finite = terms[np.isfinite(terms)]
    span = float(np.max(np.abs(finite))) if finite.size else 0.0
    span = span if span > 0 else 1.0
    shown = np.where(np.isfinite(terms), terms, 1.15 * span)  # an infinite term: a hatched bar past the rest
    bars = bottom.bar(x, shown, width=0.6, color="C2")
    for bar, v in zip(bars, terms):
        if not math.isfinite(v):
            bar.set_hatch("//")
            bar.set_facecolor("white")
            bar.set_edgecolor("C3")
        if n <= 12 or not math.isfinite(v):
            bottom.annotate("inf" if not math.isfinite(v) else f"{v:.3g}", (bar.get_x() + bar.get_width() / 2,
                            bar.get_height()), textcoords="offset points", xytext=(0, 2 if v >= 0 else -2),
                            ha="center", va="bottom" if v >= 0 else "top", fontsize=8)
    bottom.axhline(0, color="0.3", lw=0.8)
    low = min(0.0, float(np.min(shown)))
    bottom.set_ylim(low - 0.15 * span if low < 0 else 0.0, 1.2 * max(float(np.max(shown)), 0.0) + 0.05 * span)
    bottom.set_ylabel("term (nats)")
    bottom.set_xticks(x, [f"i={i}" for i in x] if n <= 20 else None)
    bottom.set_xlabel("outcome i")
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_title(f"pointwise terms, which sum to {name}:\n{label}", fontsize=10)
    fig.suptitle(title or f"xent explain: {name} = {quantity(r['value'], None)}", fontsize=11)
    fig.tight_layout()
    return fig
