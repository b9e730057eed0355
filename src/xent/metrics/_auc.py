"""ROC AUC and average precision from score histograms: bounded memory, exact merges, a proven error bound.

Design
------
Every row's score goes to one bin of a fixed, data-independent, monotone binning
(:func:`score_bins`), and a state keeps, per bin, the weight of the positive rows and
of the negative rows (``pos``, ``neg``; row counts when unweighted, which float64
holds exactly, so merges in any order agree). Memory is set by the bin count, never by
the row count, and merging two states adds their histograms.

The binning is the *folded float bits* of the probability: with
``q = min(p, 1 - p)`` (exact in float64 for p >= 1/2) rounded to float32, a bin is
one of ``2**mantissa_bits`` slices of one octave ``[2**-(e+1), 2**-e)`` of ``2 q``
for ``e < octaves``; scores with ``2 q < 2**-octaves`` share the outermost bin of
their side; the side ``p > 1/2`` is mirrored above the side ``p <= 1/2``. The bins
are relatively fine near 0 and 1 (log-odds-like resolution), so a click model with
p ~ 1e-3 gets as many bins as one with p ~ 0.3. Logits x use ``q = 1 / (1 + exp(|x|))``
(every step correctly rounded and monotone), so no large logit is rounded to 1.

From the histogram, with ties inside a bin counted half (scikit-learn's rule for
tied scores)::

    AUC   = sum_b pos_b (NEG_below_b + neg_b / 2) / (P N)
    bound = sum_b pos_b neg_b / (2 P N)

The rows of one bin may be in any order, so the true (scikit-learn) AUC of the
rows is within ``bound`` of this value: a pair inside a bin counts 1/2 here and
0, 1/2 or 1 there. Average precision (scikit-learn's step-wise sum
``sum_k (R_k - R_{k-1}) P_k``) treats a bin as one threshold; inside a bin, the
precision at any positive lies between ``T_prev / (T_prev + F_b)`` and
``T_b / (T_b + F_prev)`` (T, F: positive and negative weight at or above the bin),
and the bound adds ``pos_b / P`` times that range over the bins.

Multi-class one-vs-rest keeps one histogram per class of the class's probability
``p_k`` (softmax of the logits), positives being the rows labelled k.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["auc_from_histogram", "average_precision_from_histogram", "macro_weighted", "n_score_bins", "scatter",
           "score_bins"]


def n_score_bins(octaves: int, mantissa_bits: int) -> int:
    """The number of bins of :func:`score_bins`: ``2 * octaves * 2**mantissa_bits``."""
    return 2 * octaves * (1 << mantissa_bits)


def score_bins(x: np.ndarray, *, logits: bool, octaves: int, mantissa_bits: int) -> np.ndarray:
    """Bin index (int64, monotone non-decreasing in the score) of probabilities or logits ``x``.

    ``x`` is any float array of valid scores (probabilities in [0, 1] or finite logits).
    See the module docstring for the binning.
    """
    return score_bins_at(x, logits=logits, resolutions=((octaves, mantissa_bits),))[0]


def score_bins_at(x: np.ndarray, *, logits: bool, resolutions: Any) -> list[np.ndarray]:
    """:func:`score_bins` at several ``(octaves, mantissa_bits)`` resolutions, the float bits taken once."""
    x = np.asarray(x, dtype=np.float64)
    if logits:  # |x| as float32, octaves [-octaves/2, octaves/2); x > 0 above
        high = x > 0.0
        f = np.abs(x).astype(np.float32)
    else:  # 2 min(p, 1 - p) as float32 (1 - p is exact for p >= 1/2), mirrored above p = 1/2
        high = x > 0.5
        f = (2.0 * np.where(high, 1.0 - x, x)).astype(np.float32)
    bits = f.view(np.uint32).astype(np.int64)
    e0 = (bits >> 23) - 127
    mant = bits & ((1 << 23) - 1)
    out = []
    for octaves, mantissa_bits in resolutions:
        half = octaves << mantissa_bits
        e = e0 + (octaves // 2 if logits else octaves)
        h = np.clip((e << mantissa_bits) + (mant >> (23 - mantissa_bits)), 0, half - 1)  # beyond: outer/inner bin
        out.append(np.where(high, half + h, half - 1 - h) if logits else np.where(high, 2 * half - 1 - h, h))
    return out


def auc_from_histogram(pos: np.ndarray, neg: np.ndarray) -> tuple[Any, Any]:
    """``(roc_auc, error_bound)`` from positive and negative weight per bin (bins in score order, last axis).

    Leading axes are batch axes (classes, segments, replicates). NaN where there is no
    positive or no negative weight (scikit-learn raises there).
    """
    pos, neg = _nonempty(pos, neg)
    P = pos.sum(axis=-1)
    N = neg.sum(axis=-1)
    below = np.cumsum(neg, axis=-1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        pn = P * N
        auc = np.where(pn > 0, (pos * (below + 0.5 * neg)).sum(axis=-1) / np.where(pn > 0, pn, 1.0), np.nan)
        bound = np.where(pn > 0, 0.5 * (pos * neg).sum(axis=-1) / np.where(pn > 0, pn, 1.0), np.nan)
    return _scalar(auc), _scalar(bound)


def average_precision_from_histogram(pos: np.ndarray, neg: np.ndarray) -> tuple[Any, Any]:
    """``(average_precision, error_bound)`` as scikit-learn ``average_precision_score``, from a histogram.

    NaN when there is no positive weight.
    """
    pos, neg = _nonempty(pos, neg)
    pos, neg = pos[..., ::-1], neg[..., ::-1]  # from the highest scores down
    T = np.cumsum(pos, axis=-1)
    F = np.cumsum(neg, axis=-1)
    P = T[..., -1] if T.shape[-1] else np.zeros(T.shape[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(T > 0, T / np.where(T + F > 0, T + F, 1.0), 0.0)
        hi = np.where(T > 0, T / np.where(T + F - neg > 0, T + F - neg, 1.0), 0.0)
        tp = T - pos
        lo = np.where(tp > 0, tp / np.where(tp + F > 0, tp + F, 1.0), 0.0)
        ap = np.where(P > 0, (pos * prec).sum(axis=-1) / np.where(P > 0, P, 1.0), np.nan)
        bound = np.where(P > 0, (pos * (hi - lo)).sum(axis=-1) / np.where(P > 0, P, 1.0), np.nan)
    return _scalar(ap), _scalar(bound)


def _nonempty(pos: Any, neg: Any) -> tuple[np.ndarray, np.ndarray]:
    """float64 histograms; one histogram (1-d) keeps only its non-empty bins (the results depend on nothing else)."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    if pos.ndim == 1:
        keep = np.flatnonzero((pos != 0) | (neg != 0))
        return pos[keep], neg[keep]
    return pos, neg


def _scalar(a: np.ndarray) -> Any:
    return float(a) if np.ndim(a) == 0 else a


def macro_weighted(values: np.ndarray, bounds: np.ndarray, support: np.ndarray) -> tuple[float, float, float, float]:
    """One-vs-rest averages: ``(macro, macro_bound, weighted, weighted_bound)`` over the defined classes.

    ``macro`` is the mean over classes whose AUC is defined (some positive and some
    negative weight); ``weighted`` weights them by ``support`` (their weight of rows),
    as scikit-learn ``average="weighted"``.
    """
    ok = np.isfinite(values)
    if not ok.any():
        return math.nan, math.nan, math.nan, math.nan
    v, b, s = values[ok], bounds[ok], support[ok]
    macro, macro_b = float(v.mean()), float(b.mean())
    if s.sum() > 0:
        weighted, weighted_b = float((s * v).sum() / s.sum()), float((s * b).sum() / s.sum())
    else:
        weighted = weighted_b = math.nan
    return macro, macro_b, weighted, weighted_b


def scatter(pos: np.ndarray, neg: np.ndarray, b: np.ndarray, positive: np.ndarray, w: np.ndarray | None) -> None:
    """``pos[b] += w`` where ``positive``, ``neg[b] += w`` elsewhere (w = 1 when None); in place."""
    nb = len(pos)
    if len(b) * 8 < nb:  # a small batch: touch its bins only, not the whole histogram
        wv = np.ones(len(b)) if w is None else w
        np.add.at(pos, b[positive], wv[positive])
        np.add.at(neg, b[~positive], wv[~positive])
        return
    # one histogram of (bin, label) pairs: pos at 2 b + 1, neg at 2 b
    h = np.bincount(2 * b + positive, weights=w, minlength=2 * nb)
    pos += h[1::2]
    neg += h[0::2]
