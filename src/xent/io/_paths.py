"""Turn user paths (files, directories, globs) into a sorted list of readable files."""

from __future__ import annotations

import glob
import os
from typing import Any

from xent.io._errors import InputError

__all__ = ["FORMATS", "PARQUET_SUFFIXES", "expand_paths", "file_format"]

# The one list of the files xent reads, by the end of their name (every engine and reader uses it).
PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
# CSV compressed with a codec pyarrow decompresses while it streams (gzip, bzip2, zstd, lz4, brotli)
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".csv.lz4", ".csv.br")
FORMATS = {**dict.fromkeys(PARQUET_SUFFIXES, "parquet"), **dict.fromkeys(CSV_SUFFIXES, "csv"), ".npy": "npy",
           ".npz": "npz"}
_LONGEST_FIRST = sorted(FORMATS, key=len, reverse=True)


def _suffix(path: str) -> str | None:
    name = os.path.basename(os.fspath(path)).lower()
    return next((s for s in _LONGEST_FIRST if name.endswith(s)), None)


def file_format(path: str) -> str:
    """"parquet", "csv", "npy" or "npz" from the end of the file name (see ``FORMATS``)."""
    suffix = _suffix(path)
    if suffix is None:
        ext = os.path.splitext(path)[1].lower()
        raise InputError(
            f"unknown file type {ext or '(no extension)'!r}; expected one of {', '.join(FORMATS)}", source=path)
    return FORMATS[suffix]


def expand_paths(paths: Any) -> list[str]:
    """Files named, files under directories (recursively, known extensions only), glob matches; sorted per argument."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    for raw in paths:
        p = os.fspath(raw)
        if os.path.isdir(p):
            found = sorted(
                os.path.join(root, f) for root, _, files in os.walk(p) for f in files
                if _suffix(f) is not None
            )
            if not found:
                raise InputError("directory holds no Parquet, CSV, NPY or NPZ files", source=p)
            out.extend(found)
        elif os.path.isfile(p):
            file_format(p)
            out.append(p)
        elif glob.has_magic(p):
            found = sorted(f for f in glob.glob(p, recursive=True) if os.path.isfile(f))
            if not found:
                raise InputError("no file matches this pattern", source=p)
            for f in found:
                file_format(f)
            out.extend(found)
        else:
            raise InputError("no such file or directory", source=p)
    if not out:
        raise InputError("no input files given")
    return out
