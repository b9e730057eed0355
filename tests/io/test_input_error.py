"""xent.io's own types: InputError (located) and ReadSpec (what to read); nothing of the scorer or the CLI."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xent.io import InputError, ReadSpec, iter_batches, state_from_table
from xent.metrics import BinaryState, MulticlassState, new_state
from xent.scoring import ScoreInputError, ScoreSpec


def test_the_located_error_keeps_its_parts_and_survives_pickling():
    exc = InputError("missing\n label", source="a.csv", row=3, column="y")
    assert str(exc) == "a.csv: row 3, column `y`: missing label"  # one line
    assert (exc.message, exc.source, exc.row, exc.column) == ("missing label", "a.csv", 3, "y")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is InputError and str(back) == str(exc) and back.row == 3
    assert str(InputError("no input files given")) == "no input files given"
    assert ScoreInputError is InputError and issubclass(InputError, ValueError)


def test_a_plain_read_spec_reads_as_a_score_spec_does(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.random(300)
    table = pa.table({"y": (rng.random(300) < p).astype(np.int8), "p": p, "w": rng.random(300)})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=100)
    read, score = ReadSpec(label="y", pred="p", weight="w"), ScoreSpec(label="y", pred="p", weight="w")
    assert isinstance(score, ReadSpec) and read.pred == ("p",) and read.columns == ("y", "p", "w")
    states = []
    for spec in (read, score):
        state = None
        for b in iter_batches(str(tmp_path / "t.parquet"), spec, batch_rows=64):
            state = state_from_table(b.table, spec, source=b.source, first_row=b.first_row, state=state)
        states.append(state.compute())
    assert states[0] == states[1] and states[0].rows == 300


def test_io_names_options_as_spec_fields_never_as_flags():
    table = {"y": np.array([0, 1]), "a": np.array([0.5, 0.3]), "b": np.array([0.5, 0.6])}
    with pytest.raises(InputError) as exc:
        state_from_table(table, ReadSpec(label="y", pred=("a", "b")), source="s.csv")
    assert str(exc.value) == ("s.csv: row 1, column `a, b`: probabilities sum to 0.9, not 1 (tolerance 0.0001; "
                              "use `tolerance`, or `from_logits` for unnormalised scores)")
    assert "--" not in exc.value.message


def test_new_state_takes_typed_options():
    b = new_state(n_bins=7, from_logits=True)
    assert type(b) is BinaryState and b.n_bins == 7 and b.from_logits
    m = new_state(3, classes=("a", "b", "c"), n_bins=5, tolerance=0.01)
    assert type(m) is MulticlassState and m.num_classes == 3 and m.tolerance == 0.01
