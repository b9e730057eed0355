"""The result of scoring files: numbers, provenance, and how to show them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from xent.metrics import BinaryResult, MulticlassResult
from xent.scoring._spec import ScoreSpec

__all__ = ["ScoreReport"]


@dataclass(frozen=True)
class ScoreReport:
    """What ``score`` returns, for every engine.

    Attributes
    ----------
    result : BinaryResult or MulticlassResult
        The metrics (see :mod:`xent.metrics._results` for definitions).
    spec : ScoreSpec
        What was scored.
    sources : tuple of str
        The files read, in order.
    engine : str
        "local" or "dask".
    seconds : float
        Wall-clock time of the scoring.
    skipped : dict
        Rows dropped under ``on_invalid="skip"``, by reason.
    """

    result: BinaryResult | MulticlassResult
    spec: ScoreSpec
    sources: tuple[str, ...]
    engine: str = "local"
    seconds: float = math.nan
    skipped: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: Any, spec: ScoreSpec, *, sources: Any, engine: str, seconds: float) -> ScoreReport:
        """Build the report from a final merged metric state."""
        return cls(result=state.compute(), spec=spec, sources=tuple(str(s) for s in sources), engine=engine,
                   seconds=float(seconds), skipped=dict(sorted(state.skipped.items())))

    @property
    def rows_per_second(self) -> float:
        return self.result.rows / self.seconds if self.seconds > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NaN and infinite values become None: JSON has neither)."""
        return {
            "metrics": self.result.to_dict(),
            "skipped_rows": dict(self.skipped),
            "skipped_total": sum(self.skipped.values()),
            "files": list(self.sources),
            "engine": self.engine,
            "seconds": self.seconds,
            "spec": {"label": self.spec.label, "pred": list(self.spec.pred), "from_logits": self.spec.from_logits,
                     "weight": self.spec.weight,
                     "classes": None if self.spec.classes is None else [str(c) for c in self.spec.classes],
                     "n_bins": self.spec.n_bins, "eps": self.spec.eps, "tolerance": self.spec.tolerance,
                     "on_invalid": self.spec.on_invalid},
        }

    def render(self) -> str:
        """The terminal table."""
        from xent.scoring._render import render

        return render(self)

    def plot(self, path: str) -> None:
        """Write the reliability diagram to ``path`` (PNG; matplotlib, imported here)."""
        from xent.scoring._plot import plot_reliability

        plot_reliability(self, path)
