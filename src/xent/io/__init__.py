"""Readers for prediction files (Parquet, CSV, NPY/NPZ) and the table -> metric state step.

What to read is a :class:`ReadSpec` (columns, probabilities or logits,
tolerance, ...); every bad input raises :class:`InputError`, located by file,
row and column. This layer knows nothing of the scorer or the command line
above it: :class:`xent.scoring.ScoreSpec` is a validated ``ReadSpec``, and
``xent.scoring.ScoreInputError`` is ``InputError``. See :mod:`xent.scoring`
for the contract engines rely on.
"""

from __future__ import annotations

from xent.io._convert import state_from_table
from xent.io._errors import InputError
from xent.io._paths import FORMATS, PARQUET_SUFFIXES, expand_paths, file_format
from xent.io._readers import (
           DEFAULT_BATCH_ROWS,
           Batch,
           count_rows,
           iter_batches,
           open_parquet,
)
from xent.io._spec import OnInvalid, ReadSpec

__all__ = ["DEFAULT_BATCH_ROWS", "FORMATS", "PARQUET_SUFFIXES", "Batch", "InputError", "OnInvalid", "ReadSpec",
           "count_rows", "expand_paths", "file_format", "iter_batches", "open_parquet", "state_from_table"]
