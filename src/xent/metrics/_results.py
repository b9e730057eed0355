"""Result objects computed from metric states: plain numbers, JSON-able via ``to_dict``.

Definitions (W = total weight, w_i row weights, 1 when absent; logs natural):

- ``log_loss`` = sum_i w_i l_i / W with l_i = -log p_i(y_i), p clipped to [eps, 1-eps]
  (scikit-learn ``log_loss``); ``log_loss_bits`` = log_loss / ln 2;
  ``perplexity`` = exp(log_loss).
- ``entropy_prior`` = H(prior) in nats, prior_k = weight of label k / W;
  ``normalized_entropy`` NE = log_loss / H(prior) (He et al. 2014);
  ``rig`` = 1 - NE, the relative information gain (= scikit-learn ``d2_log_loss_score``).
- ``brier``: binary = mean w (p - y)^2 (scikit-learn ``brier_score_loss``, range [0, 1]);
  multi-class = mean w sum_k (p_k - [y = k])^2 (scikit-learn >= 1.7 default for
  3+ classes, range [0, 2]).
- ``calibration_ratio_pred_over_obs`` = sum w p / sum w y (binary; > 1 means
  over-prediction); per class sum w p_k / sum w [y = k] for multi-class.
- ``accuracy``: binary predicts 1 when p >= 0.5; multi-class predicts the arg max.
- ECE = sum_b (W_b / W) |conf_b - obs_b| over non-empty bins, MCE = max_b |conf_b - obs_b|,
  with uniform bins b = min(floor(p * n_bins), n_bins - 1) (bin k is [k/n, (k+1)/n),
  p = 0 in the first bin, p = 1 in the last). Binary bins the positive-class
  probability against the positive rate; multi-class bins the top-label
  confidence against accuracy.

References: X. He et al., "Practical lessons from predicting clicks on ads at
Facebook", ADKDD 2014 (normalized entropy); C. Guo et al., "On calibration of
modern neural networks", ICML 2017 (ECE, reliability diagrams).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["BinaryResult", "ClassRow", "MulticlassResult", "Reliability", "entropy_nats"]

LN2 = math.log(2.0)


def entropy_nats(prior: np.ndarray) -> float:
    """H(prior) = -sum q log q in nats, 0 log 0 = 0."""
    q = prior[prior > 0]
    return float(-(q * np.log(q)).sum())


def _div(a: float, b: float) -> float:
    return a / b if b != 0 else math.nan


@dataclass(frozen=True)
class Reliability:
    """Reliability table over ``n_bins`` uniform bins of [0, 1]."""

    edges: tuple[float, ...]
    rows: tuple[int, ...]
    weight: tuple[float, ...]
    mean_predicted: tuple[float, ...]  # NaN for empty bins
    observed: tuple[float, ...]  # positive rate (binary) or accuracy (multi-class); NaN when empty
    ece: float
    mce: float

    @classmethod
    def from_sums(cls, rows: np.ndarray, w: np.ndarray, wp: np.ndarray, wy: np.ndarray) -> Reliability:
        n = len(rows)
        with np.errstate(invalid="ignore", divide="ignore"):
            conf = np.where(w > 0, wp / np.where(w > 0, w, 1.0), np.nan)
            obs = np.where(w > 0, wy / np.where(w > 0, w, 1.0), np.nan)
        total = w.sum()
        gap = np.abs(conf - obs)
        full = w > 0
        ece = float((w[full] * gap[full]).sum() / total) if total > 0 else math.nan
        mce = float(gap[full].max()) if full.any() else math.nan
        return cls(
            edges=tuple(float(k) / n for k in range(n + 1)),
            rows=tuple(int(r) for r in rows),
            weight=tuple(float(x) for x in w),
            mean_predicted=tuple(float(x) for x in conf),
            observed=tuple(float(x) for x in obs),
            ece=ece,
            mce=mce,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ece": _json(self.ece),
            "mce": _json(self.mce),
            "bins": [
                {"low": self.edges[k], "high": self.edges[k + 1], "rows": self.rows[k], "weight": self.weight[k],
                 "mean_predicted": _json(self.mean_predicted[k]), "observed": _json(self.observed[k])}
                for k in range(len(self.rows))
            ],
        }


def _json(x: float) -> float | None:
    """JSON has no NaN or infinity: undefined (NaN) and infinite (eps=0, p=0) values become null."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


@dataclass(frozen=True)
class _Common:
    rows: int
    weight: float
    log_loss: float
    brier: float
    accuracy: float
    entropy_prior: float
    reliability: Reliability

    @property
    def log_loss_bits(self) -> float:
        return self.log_loss / LN2

    @property
    def perplexity(self) -> float:
        return math.exp(self.log_loss) if self.log_loss < 709.0 else math.inf

    @property
    def normalized_entropy(self) -> float:
        return _div(self.log_loss, self.entropy_prior)

    @property
    def rig(self) -> float:
        return 1.0 - self.normalized_entropy

    @property
    def ece(self) -> float:
        return self.reliability.ece

    @property
    def mce(self) -> float:
        return self.reliability.mce

    def _common_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "weight": _json(self.weight),
            "log_loss": _json(self.log_loss),
            "log_loss_bits": _json(self.log_loss_bits),
            "perplexity": _json(self.perplexity),
            "entropy_prior": _json(self.entropy_prior),
            "normalized_entropy": _json(self.normalized_entropy),
            "rig": _json(self.rig),
            "brier": _json(self.brier),
            "accuracy": _json(self.accuracy),
            "ece": _json(self.ece),
            "mce": _json(self.mce),
        }


@dataclass(frozen=True)
class BinaryResult(_Common):
    """Metrics of a binary prediction stream (see the module docstring for definitions)."""

    positive_rate: float = math.nan
    mean_predicted: float = math.nan
    roc_auc: float = math.nan
    roc_auc_error_bound: float = math.nan
    average_precision: float = math.nan
    average_precision_error_bound: float = math.nan

    kind = "binary"

    @property
    def calibration_ratio_pred_over_obs(self) -> float:
        return _div(self.mean_predicted, self.positive_rate)

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": "binary", **self._common_dict()}
        d["brier_convention"] = "mean (p - y)^2, as sklearn brier_score_loss (binary)"
        d["positive_rate"] = _json(self.positive_rate)
        d["mean_predicted"] = _json(self.mean_predicted)
        d["calibration_ratio_pred_over_obs"] = _json(self.calibration_ratio_pred_over_obs)
        d["roc_auc"] = _json(self.roc_auc)
        d["roc_auc_error_bound"] = _json(self.roc_auc_error_bound)
        d["average_precision"] = _json(self.average_precision)
        d["average_precision_error_bound"] = _json(self.average_precision_error_bound)
        d["reliability"] = self.reliability.to_dict()
        return d


@dataclass(frozen=True)
class ClassRow:
    """Per-class figures of a multi-class stream."""

    label: Any
    rows: int
    weight: float
    prior: float
    log_loss: float  # mean loss over rows labelled with this class (NaN when none)
    mean_predicted: float  # sum w p_k / W
    calibration_ratio_pred_over_obs: float  # sum w p_k / sum w [y = k]
    roc_auc: float = math.nan  # one-vs-rest: p_k ranks rows labelled k above the others
    roc_auc_error_bound: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label if isinstance(self.label, (int, float, str)) else str(self.label),
                "rows": self.rows, "weight": self.weight, "prior": self.prior,
                "log_loss": _json(self.log_loss), "mean_predicted": _json(self.mean_predicted),
                "calibration_ratio_pred_over_obs": _json(self.calibration_ratio_pred_over_obs),
                "roc_auc": _json(self.roc_auc), "roc_auc_error_bound": _json(self.roc_auc_error_bound)}


@dataclass(frozen=True)
class MulticlassResult(_Common):
    """Metrics of a multi-class prediction stream, with a per-class table."""

    classes: tuple[ClassRow, ...] = field(default=())
    roc_auc: float = math.nan  # one-vs-rest, macro average over the classes where it is defined
    roc_auc_error_bound: float = math.nan
    roc_auc_weighted: float = math.nan  # one-vs-rest, weighted by each class's weight of rows
    roc_auc_weighted_error_bound: float = math.nan

    kind = "multiclass"

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": "multiclass", **self._common_dict()}
        d["brier_convention"] = "mean sum_k (p_k - y_k)^2, range [0, 2], as sklearn >= 1.7 multiclass brier_score_loss"
        d["roc_auc"] = _json(self.roc_auc)
        d["roc_auc_error_bound"] = _json(self.roc_auc_error_bound)
        d["roc_auc_weighted"] = _json(self.roc_auc_weighted)
        d["roc_auc_weighted_error_bound"] = _json(self.roc_auc_weighted_error_bound)
        d["roc_auc_convention"] = "one-vs-rest (sklearn multi_class='ovr'): roc_auc macro, roc_auc_weighted weighted"
        d["classes"] = [c.to_dict() for c in self.classes]
        d["reliability"] = self.reliability.to_dict()
        return d
