"""Imported once by the forkserver that forks the worker processes of a LocalCluster we own.

Importing it loads pyarrow, the local engine and its native kernels, and scores a
two-row table, so that every worker forked afterwards inherits all of it
instead of paying ~1 s of imports in each process. It
starts no threads (forking a threaded process is unsafe).
"""

from __future__ import annotations

import numpy as np

import xent.dask._tasks  # noqa: F401  # what the workers run
from xent.io import state_from_table
from xent.scoring import ScoreSpec


def _warm() -> None:
    try:
        import pyarrow as pa  # optional dependency (the cli extra): without it, nothing to warm
        import pyarrow.parquet  # noqa: F401  # optional dependency (the cli extra)

        state_from_table(pa.table({"y": np.array([0, 1]), "p": np.array([0.25, 0.5])}), ScoreSpec(label="y", pred=("p",)))
    except Exception:  # a warm-up must never stop the cluster: the workers then load lazily
        pass


_warm()
