"""A core-only install (no pyarrow, matplotlib, dask): every command that needs an extra says
which one in one line on stderr and exits 2, never with a traceback.

The missing modules are simulated in a fresh interpreter by a meta-path finder that refuses to import
them, as Python does when a package is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = r"""
import contextlib, io, json, sys

BLOCKED = set()


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())


def run(argv):
    from xent.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            rc = main(argv)
        except BaseException as exc:  # a traceback would be printed: report it as such
            rc = f"raised {type(exc).__name__}: {exc}"
    return {"argv": argv, "rc": rc, "err": err.getvalue(), "out": out.getvalue()}


data = "examples/data/ctr_sample.parquet"
cols = ["--label", "clicked", "--prob", "p_click"]
results = []
BLOCKED.update({"pyarrow", "matplotlib", "dask", "distributed"})
import xent  # the core imports without any extra
results.append(run(["score", data, *cols]))
results.append(run(["score", data, *cols, "--engine", "dask", "--workers", "1"]))
results.append(run(["explain", "kl", "--p", "0.5,0.5", "--q", "0.9,0.1", "--plot", "kl.png"]))
results.append(run(["explain", "kl", "--p", "0.5,0.5", "--q", "0.9,0.1"]))
BLOCKED.discard("pyarrow")  # the cli extra without matplotlib
results.append(run(["score", data, *cols, "--plot", "rel.png"]))
results.append(run(["score", data, *cols, "--engine", "dask", "--workers", "1"]))
print(json.dumps(results))
"""


def test_missing_extras_are_one_line_naming_the_extra(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.join(ROOT, "src"),
                                                                       os.environ.get("PYTHONPATH")])))
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    score, dask, plot, text, score_plot, no_dask = json.loads(proc.stdout)
    cli = 'pip install "xent-ml[cli]"'
    assert score["err"] == f"xent: error: xent score needs pyarrow, which is not installed: {cli}\n", score
    assert dask["err"] == f"xent: error: xent score needs pyarrow, which is not installed: {cli}\n", dask
    assert plot["err"] == f"xent: error: --plot needs matplotlib, which is not installed: {cli}\n", plot
    assert score_plot["err"] == f"xent: error: --plot needs matplotlib, which is not installed: {cli}\n"
    assert no_dask["err"].startswith("xent: error: --engine dask: the Dask engine needs dask[distributed]")
    assert no_dask["err"].endswith('pip install "xent-ml[dask]"\n') and no_dask["err"].count("\n") == 1
    for r in (score, dask, plot, score_plot, no_dask):
        assert r["rc"] == 2 and r["out"] == "", r
    assert text["rc"] == 0 and "KL(p || q) = 0.510826 nats" in text["out"]  # explain itself needs no extra
    assert not (tmp_path / "kl.png").exists() and not (tmp_path / "rel.png").exists()


def test_library_hints_name_the_xent_ml_distribution():
    from xent.dask._cluster import INSTALL_HINT

    assert INSTALL_HINT == 'pip install "xent-ml[dask]"'
    from xent.cli import install_hint

    assert install_hint("distributed", "--engine dask").endswith('pip install "xent-ml[dask]"')
