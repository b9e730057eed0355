"""Every code block of the README runs as written, on the bundled data.

- ``python`` blocks run, each in a fresh interpreter, as a script file (so a Dask block's
  ``if __name__ == "__main__":`` guard behaves as it does for a reader).
- ``bash`` blocks run line by line (a trailing ``\\`` continues a line, ``#`` starts a comment);
  ``console`` blocks run each ``$ `` command, and the lines under it are its expected output:
  they must appear in the command's output in order and contiguously, where a line ``...``
  stands for any number of lines and durations (``0.98 s``) may differ. Every command must
  exit with status 0.
- Commands run in an empty directory that holds a link to ``examples/``, with this
  environment's ``bin`` first on PATH (``xent``, ``python``).
- Set-up steps are checked, not run: ``python3 -m venv ...`` and ``. .venv/bin/activate`` (this
  environment stands for the fresh one), ``pip install -e ".[EXTRAS]"`` (every extra must exist
  in pyproject.toml) and the test command ``python -m pytest ...`` (it is CI's command, checked by
  ``test_ci_runs_the_readme_test_command``; running the suite inside itself would recurse).
- A block that cannot run here is marked by an HTML comment on the line before it,
  ``<!-- readme-test: skip: WHY -->``. Keep such exceptions few (``MAX_SKIPPED``), each with its
  reason.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass

import pyarrow.parquet as pq
import pytest
from sklearn.metrics import log_loss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
MAX_SKIPPED = 2
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(?P<why>.+?)\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```\n", re.S | re.M)
DURATION = re.compile(r"\b\d+\.\d+ s\b")


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    line: int  # 1-based line of the opening fence
    section: str
    skip: str | None  # the reason given in a skip marker

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")[:30]
        return f"{self.lang}-{slug}-L{self.line}"


def readme_blocks(text: str | None = None) -> list[Block]:
    if text is None:
        with open(README, encoding="utf-8") as f:
            text = f.read()
    blocks = []
    for m in FENCE.finditer(text):
        before = text[: m.start()]
        line = before.count("\n") + 1
        headings = re.findall(r"^#{2,3} (.+)$", before, re.M)
        previous = before.rstrip("\n").rsplit("\n", 1)[-1]
        marker = SKIP.search(previous)
        blocks.append(Block(m["lang"], m["body"], line, headings[-1] if headings else "top",
                            marker["why"] if marker else None))
    return blocks


BLOCKS = readme_blocks()
RUNNABLE = [b for b in BLOCKS if b.lang in ("python", "bash", "console") and b.skip is None]


# ---- shell lines --------------------------------------------------------------------------------------


def _logical_lines(body: str) -> list[str]:
    out, cur = [], ""
    for raw in body.splitlines():
        if raw.rstrip().endswith("\\"):
            cur += raw.rstrip()[:-1] + " "
            continue
        out.append(cur + raw)
        cur = ""
    return out


def _strip_comment(line: str) -> str:
    # "#" after whitespace starts a comment; quotes in these commands never contain " #"
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()


def _extras() -> set[str]:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return set(tomllib.load(f)["project"]["optional-dependencies"])


def _setup_step(command: str) -> bool:
    """True for a set-up step (checked here instead of run); see the module docstring."""
    argv = shlex.split(command)
    if argv[:3] == ["python3", "-m", "venv"] or argv[:1] in (["."], ["source"]):
        return True
    if argv[:2] == ["pip", "install"]:
        targets = [a for a in argv[2:] if not a.startswith("-")]
        for t in targets:
            m = re.fullmatch(r"\.(?:\[(?P<extras>[\w,-]+)\])?", t)
            assert m, f"README installs {t!r}: expected the checkout, '.' or '.[extra,...]'"
            unknown = set(filter(None, (m["extras"] or "").split(","))) - _extras()
            assert not unknown, f"README names extras {sorted(unknown)} that pyproject.toml does not define"
        return True
    return argv[:3] == ["python", "-m", "pytest"]


def _env() -> dict[str, str]:
    bindir = os.path.dirname(sys.executable)
    return dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""), COLUMNS="100",
                MPLBACKEND="Agg")


@pytest.fixture
def workdir(tmp_path):
    os.symlink(os.path.join(ROOT, "examples"), tmp_path / "examples")
    return tmp_path


def _run_shell(command: str, cwd) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["bash", "-c", f"set -euo pipefail; {command}"], capture_output=True, text=True,
                          cwd=cwd, env=_env(), timeout=300)
    assert proc.returncode == 0, f"`{command}` exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _commands(block: Block) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) pairs of a bash or console block."""
    lines = _logical_lines(block.body)
    if block.lang == "bash":
        return [(c, []) for c in map(_strip_comment, lines) if c]
    pairs: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("$ "):
            pairs.append((_strip_comment(line[2:]), []))
        else:
            assert pairs, f"README line {block.line}: a console block must start with a `$ ` command"
            pairs[-1][1].append(line)
    return pairs


def _normalise(lines: list[str]) -> list[str]:
    return [DURATION.sub("<duration> s", line.rstrip()) for line in lines]


def assert_output_matches(expected: list[str], actual: str, command: str) -> None:
    """``expected`` appears in ``actual``, in order; "..." lines stand for any lines."""
    want = _normalise(expected)
    while want and not want[-1]:
        want.pop()
    if not want:
        return
    got = _normalise(actual.splitlines())
    segments, cur = [], []
    for line in want:
        if line.strip() == "...":
            segments.append(cur)
            cur = []
        else:
            cur.append(line)
    segments.append(cur)
    pos = 0
    for k, seg in enumerate(segments):
        if not seg:
            continue
        anchored = k == 0  # no "..." before the first segment: it starts the output
        starts = [pos] if anchored else range(pos, len(got) - len(seg) + 1)
        found = next((s for s in starts if got[s:s + len(seg)] == seg), None)
        assert found is not None, (
            f"the README's output of `{command}` is not what it prints; expected (in order):\n"
            + "\n".join(seg) + "\n\nactual:\n" + "\n".join(got))
        pos = found + len(seg)
    if segments[-1]:
        assert pos == len(got), f"`{command}` printed more than the README shows:\n" + "\n".join(got[pos:])


# ---- the tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_readme_block_runs_as_written(block, workdir):
    if block.lang == "python":
        script = workdir / "readme_block.py"
        script.write_text(block.body)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=workdir,
                              env=_env(), timeout=300)
        assert proc.returncode == 0, f"README line {block.line}:\n{block.body}\n{proc.stdout}\n{proc.stderr}"
        return
    for command, expected in _commands(block):
        steps = [c.strip() for c in command.split(" && ")]
        for step in steps:
            if _setup_step(step):
                continue
            proc = _run_shell(step, workdir)
            assert_output_matches(expected, proc.stdout, step)


def test_skips_are_few_and_give_a_reason():
    skipped = [b for b in BLOCKS if b.skip is not None]
    assert len(skipped) <= MAX_SKIPPED, [(b.line, b.skip) for b in skipped]
    assert all(len(b.skip) > 20 for b in skipped), [(b.line, b.skip) for b in skipped]
    assert all(b.lang in ("python", "bash", "console") for b in BLOCKS if b.lang), \
        sorted({b.lang for b in BLOCKS})


def test_the_harness_reads_markers_and_matches_output():
    text = ("## A\n\n<!-- readme-test: skip: needs a running scheduler somewhere -->\n```bash\nxent x\n```\n\n"
            "```console\n$ echo a \\\n  b   # comment\na b\n...\nz\n```\n")
    skip, console = readme_blocks(text)
    assert skip.skip == "needs a running scheduler somewhere" and console.skip is None
    assert _commands(console) == [("echo a    b", ["a b", "...", "z"])]
    assert_output_matches(["a b", "...", "z"], "a b\nx\ny\nz\n", "c")
    assert_output_matches(["took 0.98 s"], "took 12.50 s\n", "c")
    for expected, actual in ((["a b", "z"], "a b\nx\nz\n"), (["b"], "a\nb\n"), (["a"], "a\nb\n")):
        with pytest.raises(AssertionError):
            assert_output_matches(expected, actual, "c")
    assert _setup_step('pip install -e ".[cli,dask]"') and not _setup_step("xent score x")
    with pytest.raises(AssertionError, match="nope"):
        _setup_step('pip install -e ".[cli,nope]"')


# ---- the two set-up commands at the top --------------------------------------------------------------


def _setup_commands() -> list[str]:
    return [b.body.strip() for b in BLOCKS if b.section.startswith("Set up") and b.lang == "bash"]


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


def test_install_hints_name_the_xent_ml_distribution():
    # `xent` on PyPI is another project: hints say `pip install "xent-ml[...]"` (the import name stays xent)
    wrong = re.compile(r"pip install [\"']?xent(?![\w-])|(?<![\w./-])xent\[")
    with open(README, encoding="utf-8") as f:
        hits = [f"README.md:{i}: {line}" for i, line in enumerate(f, 1) if wrong.search(line)]
    for folder, _, names in os.walk(os.path.join(ROOT, "src", "xent")):
        for name in (n for n in names if n.endswith(".py")):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                hits += [f"{name}:{i}: {line.strip()}" for i, line in enumerate(f, 1) if wrong.search(line)]
    assert not hits, "\n".join(hits)
