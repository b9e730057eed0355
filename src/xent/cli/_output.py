"""What a scoring command prints: the figure (``--plot``), then the JSON (``--json``) or the table."""

from __future__ import annotations

import json
import sys
from typing import Any

from xent.cli import CLIError

__all__ = ["write_report"]


def write_report(report: Any, *, plot: str | None, as_json: bool, top: int, prefix: str = "") -> None:
    """Write ``report``'s figure to ``plot`` (when given), and print its JSON or its table on stdout.

    ``prefix`` starts the one-line error of a figure that cannot be written (``"compare: "``).
    A reader that leaves (``xent ... | head``) is not an error.
    """
    if plot:
        try:
            report.plot(plot)
        except (ImportError, OSError) as exc:
            raise CLIError(f"{prefix}--plot {plot}: {exc}") from None
    try:
        if as_json:
            json.dump(report.to_dict(), sys.stdout, indent=2, allow_nan=False)
            sys.stdout.write("\n")
        else:
            print(report.render(top=top))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left, which is not an error
        sys.stdout = None  # type: ignore[assignment]
