"""Scoring prediction files on a Dask cluster, with the local engine's numbers.

``xent score --engine dask`` and :func:`score` (and ``xent compare --engine dask``,
:func:`compare`, which folds two models over the same rows) cut the input into partitions
(runs of Parquet row groups, or whole CSV / NPY files), turn each partition
into an exact metric state on a worker with the local engine's own
``xent.io.state_from_table``, and merge the states with Dask's tree reduction
(``dask.bag.Bag.reduction``). The states are float64 sufficient statistics with
compensated sums, so the merged result equals the single-machine one whatever
the partition sizes, unlike averaging per-chunk means.

Worker loss is survived by Dask's lineage: the scheduler recomputes the lost
partitions on the remaining or restarted workers.

dask[distributed] is an optional extra: ``pip install "xent-ml[dask]"``.
``import xent`` never imports it; ``import xent.dask`` does, and raises
:class:`MissingDaskError` (an ImportError) with that install hint when it is
missing.
"""

from __future__ import annotations

import time
from typing import Any

from xent.dask._cluster import (
    INSTALL_HINT,
    MissingDaskError,
    open_client,
    require_distributed,
)
from xent.dask._compare import compare
from xent.dask._plan import DEFAULT_PARTITION_ROWS, plan_parts
from xent.dask._run import run_frame, run_parts
from xent.io import expand_paths
from xent.scoring import ScoreReport, ScoreSpec, raise_nothing_to_score

__all__ = ["INSTALL_HINT", "MissingDaskError", "compare", "score"]

require_distributed()  # a missing extra fails here, with the install hint


def _is_dask_frame(data: Any) -> bool:
    return type(data).__module__.split(".", 1)[0] in ("dask", "dask_expr") and hasattr(data, "to_delayed")


def score(
    data: Any,
    spec: ScoreSpec,
    *,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    partition_rows: int = DEFAULT_PARTITION_ROWS,
    split_every: int = 8,
) -> ScoreReport:
    """Score prediction files, or a dask DataFrame, on a Dask cluster.

    Parameters
    ----------
    data : path, list of paths, or dask.dataframe.DataFrame
        Files, directories or globs of Parquet, CSV or NPY/NPZ (as for
        ``xent score``), or a dask DataFrame holding the spec's columns.
    spec : xent.scoring.ScoreSpec
        What to read and how to score it.
    client : distributed.Client, optional
        Run on this client (not closed afterwards).
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    workers : int, optional
        Start a ``LocalCluster`` of this many worker processes (one thread
        each) on 127.0.0.1, and shut it down at the end, also on error.
        With none of ``client``, ``scheduler``, ``workers``: the default client
        if there is one, else a LocalCluster with one process per core.
    progress : bool
        Show a progress bar on stderr (only when it is a terminal).
    partition_rows : int
        About how many rows one Parquet partition holds (whole row groups).
    split_every : int
        Fan-in of the tree reduction that merges partition states.

    Returns
    -------
    xent.scoring.ScoreReport
        The same report as the local engine's ``xent.scoring.score``; equal
        numbers to 1e-12 relative (the merge is exact, see ``xent.metrics``).

    Raises
    ------
    xent.scoring.ScoreInputError
        Bad input, naming the file, row and column as the local engine does
        (for a dask DataFrame: the partition and the row inside it). With
        several bad partitions, the first one in input order is reported.
    MissingDaskError
        dask[distributed] is not installed.

    Examples
    --------
    >>> from xent.scoring import ScoreSpec
    >>> import xent.dask
    >>> report = xent.dask.score(["preds/*.parquet"], ScoreSpec(label="y", pred="p"),
    ...                          workers=4)  # doctest: +SKIP
    >>> report.to_dict()["log_loss"]  # doctest: +SKIP
    """
    require_distributed()
    if not isinstance(spec, ScoreSpec):
        raise TypeError(f"`spec` must be a xent.scoring.ScoreSpec, got {type(spec).__name__}")
    for name, v in (("partition_rows", partition_rows), ("split_every", split_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "partition_rows" else 2):
            low = 1 if name == "partition_rows" else 2
            raise ValueError(f"`{name}` must be an integer >= {low}, got {v!r}")

    start = time.perf_counter()
    if _is_dask_frame(data):
        sources = [f"<dask DataFrame, {data.npartitions} partitions>"]
        with open_client(client=client, scheduler=scheduler, workers=workers) as c:
            state = run_frame(c, data, spec, progress=progress, split_every=split_every)
    else:
        sources = expand_paths(data)  # before any cluster starts: a bad path fails fast
        parts = plan_parts(sources, partition_rows=partition_rows)
        with open_client(client=client, scheduler=scheduler, workers=workers) as c:
            state = run_parts(c, parts, spec, progress=progress, split_every=split_every)
    if state is None or state.rows == 0:
        raise_nothing_to_score(state, sources)
    return ScoreReport.from_state(state, spec, sources=sources, engine="dask",
                                  seconds=time.perf_counter() - start)
