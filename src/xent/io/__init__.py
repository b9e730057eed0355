"""Readers for prediction files (Parquet, CSV, NPY/NPZ) and the table -> metric state step.

See :mod:`xent.scoring` for the contract engines rely on.
"""

from __future__ import annotations

from xent.io._convert import state_from_table
from xent.io._paths import expand_paths, file_format
from xent.io._readers import DEFAULT_BATCH_ROWS, Batch, count_rows, iter_batches, open_parquet

__all__ = ["DEFAULT_BATCH_ROWS", "Batch", "count_rows", "expand_paths", "file_format", "iter_batches",
           "open_parquet", "state_from_table"]
