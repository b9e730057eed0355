"""The CLI words xent.io's errors with its own flags; the rest of each line is io's, byte for byte."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from xent.cli import main


def _error(capsys, *args: str) -> str:
    assert main(["score", *args, "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    return err.rstrip("\n")


def test_the_sum_error_names_the_flags_as_before(tmp_path, capsys):
    f = str(tmp_path / "s.parquet")
    pq.write_table(pa.table({"y": [0, 1], "a": [0.5, 0.3], "b": [0.5, 0.6]}), f)
    assert _error(capsys, f, "--label", "y", "--prob", "a", "b") == (
        f"xent: error: {f}: row 1, column `a, b`: probabilities sum to 0.9, not 1 (tolerance 0.0001; "
        "use --tolerance, or --logit for unnormalised scores)")


def test_a_column_named_like_an_option_is_not_reworded(tmp_path, capsys):
    f = str(tmp_path / "c.parquet")
    pq.write_table(pa.table({"from_logits": [0, 1, 7], "tolerance": [0.5, 0.2, 0.3]}), f)
    assert _error(capsys, f, "--label", "from_logits", "--prob", "tolerance") == (
        f"xent: error: {f}: row 2, column `from_logits`: label 7 is not in the class list [0, 1]; labels other "
        "than 0, 1 (binary) or 0..K-1 need --classes, e.g. --classes no,yes (binary: the positive class last)")
