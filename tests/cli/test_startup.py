"""Start-up: `import xent` and `xent score` import only what the files in hand need (fresh processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Heavy or optional packages that scoring a file never needs unless asked (--plot, --engine dask).
FORBIDDEN = ("pandas", "matplotlib", "dask", "distributed", "torch", "scipy", "numba", "llvmlite", "jax", "sklearn",
             "polars")


def _modules_after(code: str) -> list[str]:
    """Top-level third-party modules loaded after running ``code`` in a fresh interpreter."""
    probe = code + (
        "\nimport json, sys\n"
        "std = set(sys.stdlib_module_names)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} - std)))\n"
        "print(json.dumps('xent._native' in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    *_, mods, native = proc.stdout.strip().splitlines()
    return [m for m in json.loads(mods) if not m.startswith("_")] + (["xent._native"] if json.loads(native) else [])


def test_import_xent_loads_only_numpy_and_array_api_compat():
    assert _modules_after("import xent") == ["array_api_compat", "numpy", "xent"]


def test_score_loads_nothing_it_does_not_need(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.random(200)
    pq.write_table(pa.table({"y": (rng.random(200) < p).astype(np.int8), "p": p}), tmp_path / "b.parquet")
    np.savez(tmp_path / "b.npz", y=(rng.random(50) < 0.5).astype(np.int8), p=rng.random(50))
    runs = [
        ["examples/data/ctr_sample.parquet", "--label", "clicked", "--prob", "p_click"],
        ["examples/data/species_sample.csv", "--label", "species", "--prob", "p_setosa", "p_versicolor",
         "p_virginica", "--classes", "setosa,versicolor,virginica", "--json"],
        [str(tmp_path / "b.parquet"), "--label", "y", "--prob", "p", "--weight", "p", "--threads", "1"],
        [str(tmp_path / "b.npz"), "--label", "y", "--logit", "p"],
    ]
    code = "from xent.cli import main\n" + "".join(f"assert main({['score', *r]!r}) == 0\n" for r in runs)
    loaded = _modules_after(code)
    assert not [m for m in loaded if m in FORBIDDEN], loaded
    assert "xent._native" in loaded or os.environ.get("XENT_NATIVE") == "0"
