"""Turn user paths (files, directories, globs) into a sorted list of readable files."""

from __future__ import annotations

import glob
import os
from typing import Any

from xent.scoring._spec import ScoreInputError

__all__ = ["FORMATS", "expand_paths", "file_format"]

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".npy": "npy", ".npz": "npz"}


def file_format(path: str) -> str:
    """"parquet", "csv", "npy" or "npz" from the file name."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ScoreInputError(
            f"unknown file type {ext or '(no extension)'!r}; expected one of {', '.join(sorted(FORMATS))}",
            source=path)
    return FORMATS[ext]


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
                if os.path.splitext(f)[1].lower() in FORMATS
            )
            if not found:
                raise ScoreInputError("directory holds no Parquet, CSV, NPY or NPZ files", source=p)
            out.extend(found)
        elif os.path.isfile(p):
            file_format(p)
            out.append(p)
        elif glob.has_magic(p):
            found = sorted(f for f in glob.glob(p, recursive=True) if os.path.isfile(f))
            if not found:
                raise ScoreInputError("no file matches this pattern", source=p)
            for f in found:
                file_format(f)
            out.extend(found)
        else:
            raise ScoreInputError("no such file or directory", source=p)
    if not out:
        raise ScoreInputError("no input files given")
    return out
