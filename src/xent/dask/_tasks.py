"""What runs on a Dask worker: one partition -> one metric state, and merging states.

Every row goes through the local engine's ``xent.io.state_from_table``, so the
validation, the numbers and the error messages (file, row, column) are the
local engine's. Only the choice of rows (a run of Parquet row groups) is done
here; the rest of a file is never read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import xent.io  # its functions are looked up at call time, so a patched one (the worker-loss test) is used
from xent.dask._plan import Part
from xent.scoring import ScoreInputError, ScoreSpec

__all__ = ["InputFailure", "frame_state", "merge_states", "part_state", "partition"]


@dataclass(frozen=True)
class InputFailure:
    """A partition's located input error (``xent.scoring.ScoreInputError``), returned as the
    partition's value instead of raised.

    A task that raises makes its worker log a "Compute Failed" record with a traceback,
    which a LocalCluster's workers print on the user's terminal before the one-line error.
    Bad input is an expected outcome, not a crash: the client re-raises it. Any other
    exception still raises on the worker, and is logged as the crash it is.
    """

    error: Exception


def partition(fn: Callable[..., Any], *args: Any) -> list[Any]:
    """``[fn(*args)]`` (a ``dask.bag`` partition), or ``[InputFailure(error)]`` for bad input."""
    try:
        return [fn(*args)]
    except ScoreInputError as exc:
        return [InputFailure(exc)]


def _row_group_tables(part: Part, spec: ScoreSpec, batch_rows: int) -> Iterator[tuple[Any, int]]:
    import pyarrow as pa  # optional dependency (the cli extra)

    first = part.first_row
    # The local reader's settings: with pre_buffer, every row group read stays resident.
    with xent.io.open_parquet(part.path) as f:
        if not set(spec.columns) <= set(f.schema_arrow.names):
            # pyarrow would silently drop an unknown column: let the local reader name it
            raise LookupError("missing column")
        for batch in f.iter_batches(batch_size=batch_rows, row_groups=list(part.row_groups or ()),
                                    columns=list(spec.columns)):
            yield pa.Table.from_batches([batch]), first
            first += batch.num_rows


def _fold_file(path: str, spec: ScoreSpec) -> Any:
    state = None
    for b in xent.io.iter_batches(path, spec):
        state = xent.io.state_from_table(b.table, spec, source=b.source, first_row=b.first_row, state=state)
    return state


def part_state(part: Part, spec: ScoreSpec) -> Any:
    """The metric state of one partition, None when it has no rows."""
    if part.row_groups is None:
        state = _fold_file(part.path, spec)
    else:
        state = None
        try:
            for table, first_row in _row_group_tables(part, spec, xent.io.DEFAULT_BATCH_ROWS):
                state = xent.io.state_from_table(table, spec, source=part.path, first_row=first_row, state=state)
        except ScoreInputError:
            raise
        except Exception:
            # A missing column or a damaged row group: the local reader, run over the
            # whole file, raises the local engine's message for it; if it finds
            # nothing wrong, the original error stands.
            _fold_file(part.path, spec)
            raise
    return state


def frame_state(frame: Any, spec: ScoreSpec, index: int) -> Any:
    """The state of partition ``index`` of a dask DataFrame. Rows are numbered within the partition."""
    return xent.io.state_from_table(frame, spec, source=f"<dask partition {index}>", first_row=0)


def merge_states(states: Iterable[Any]) -> Any:
    """Merge states exactly (float64 sums with compensation), skipping None (no rows).

    Inputs are not modified: Dask may hold them to recompute after a worker is lost.
    """
    merged = None
    for s in states:
        if s is not None:
            merged = s.copy() if merged is None else merged.merge(s)
    return merged
