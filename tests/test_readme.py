"""The README's two set-up commands stay true: the main job runs, and CI runs the test command."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import pyarrow.parquet as pq
from sklearn.metrics import log_loss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup_commands() -> list[str]:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_opens_with_two_setup_commands():
    commands = _setup_commands()
    assert len(commands) == 2, commands
    assert all(c.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e ") for c in commands)


def test_readme_main_job_runs_and_is_right():
    main_job = _setup_commands()[0].split(" && ")[-1]
    argv = shlex.split(main_job)
    assert argv[:2] == ["xent", "score"], main_job
    proc = subprocess.run([sys.executable, "-m", "xent.cli", *argv[1:], "--json"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)["metrics"]
    t = pq.read_table(os.path.join(ROOT, "examples/data/ctr_sample.parquet")).to_pandas()
    want = log_loss(t["clicked"], t["p_click"].astype("float64"), sample_weight=t["weight"])
    assert abs(got["log_loss"] - want) <= 1e-9 * want
    assert got["rows"] == len(t)


def test_ci_runs_the_readme_test_command():
    test_command = _setup_commands()[1].split(". .venv/bin/activate && ", 1)[1]
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    assert test_command in ci, (test_command, ci)
