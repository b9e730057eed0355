"""The layers of src/xent import one way, and no module needs a partially initialised one.

Two checks:

* Static, from the source (AST): every ``import`` of an xent module, eager or lazy,
  goes to the same package or a lower layer of ``LAYERS``; the Dask engine and the
  CLI import other packages through their public names only; a lazy (indented)
  import on the scorer side (io, scoring, dask, cli, explain) says in a comment why
  it is lazy.
* Dynamic, in a fresh interpreter: every module of src/xent is imported alone (in a
  forked child that holds the third-party packages but no xent module) and all of
  them in a few seeded random orders, with ``builtins.__import__`` watched: an
  import of an xent module that is still initialising (a cycle), or any import
  error, fails the test.

A cycle hidden behind a lazy import (as ``xent.io`` <-> ``xent.scoring`` was, through
``scoring/__init__.py``) passes the dynamic check, because nothing is initialising when
the lazy import runs; the static check names it. Made eager, the same cycle fails the
dynamic check too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "xent"

# Lowest first; a module imports its own package or a lower layer, never a higher one, and never
# another package of its own layer. `xent` is the package's __init__ (the public API of the core).
# xent._native is the compiled extension (the C++ kernels), loaded by xent._lib.native.
# The engine sits under the primitives: they call its typed kernels and fall back to NumPy.
# The CLI drives both engines, so it sits above the Dask engine.
LAYERS: list[tuple[str, ...]] = [
    ("xent._native",),
    ("xent._lib",),
    ("xent.engine",),
    ("xent.primitives",),
    ("xent.information", "xent.losses"),
    ("xent",),
    ("xent.torch", "xent.metrics", "xent.explain"),
    ("xent.io",),
    ("xent.scoring",),
    ("xent.dask",),
    ("xent.cli",),
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}

# Upward imports that are allowed: (importing module, imported module) -> why. Each must be lazy
# (inside a function) and carry a comment on its line.
UPWARD_EXCEPTIONS = {
    ("xent.losses._common", "xent.torch._route"): "torch is optional: the torch kernels run only for torch tensors",
}
# The faces of the scorer (the Dask engine, the CLI) import other packages through their public names only.
PUBLIC_ONLY = ("xent.dask", "xent.cli")
PRIVATE_EXCEPTIONS: dict[tuple[str, str], str] = {}  # (importing module, imported module) -> why
# Where every lazy import must say why: an optional dependency, or start-up time.
LAZY_EXPLAINED = ("xent.io", "xent.scoring", "xent.dask", "xent.cli", "xent.explain")
LAZY_REASONS = ("optional dependency", "start-up time")


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(src: Path = SRC) -> dict[str, Path]:
    return {_module_name(p, src): p for p in sorted((src / "xent").rglob("*.py"))}


def _unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: xent.io._convert -> xent.io."""
    return ".".join(module.split(".")[:2])


def _imports(module: str, path: Path, known: set[str]) -> list[tuple[str, int, bool, str]]:
    """(imported xent module, line, lazy, source line) for every import in ``path``."""
    text = path.read_text()
    lines = text.splitlines()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from xent import engine` imports the module xent.engine; `from xent import f` the package xent
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in dict.fromkeys(targets):
            if target == "xent" or target.startswith("xent."):
                out.append((target, node.lineno, node.col_offset > 0, lines[node.lineno - 1]))
    return out


def layer_violations(src: Path = SRC) -> list[str]:
    """Every import that breaks the rules above, one line each (empty when none)."""
    modules = _modules(src)
    known = set(modules) | {"xent._native"}
    problems = []
    for module, path in modules.items():
        unit = _unit(module)
        where = f"{path.relative_to(src.parent)}"
        if unit not in LAYER:
            problems.append(f"{where}: package {unit} is in no layer; add it to LAYERS in tests/test_layers.py")
            continue
        for target, line, lazy, code in _imports(module, path, known):
            target_unit = _unit(target)
            at = f"{where}:{line}: {module} imports {target}"
            if target_unit not in LAYER:
                problems.append(f"{at}: {target_unit} is in no layer")
            elif target_unit != unit and LAYER[target_unit] >= LAYER[unit]:
                ok = (module, target) in UPWARD_EXCEPTIONS and lazy and "#" in code
                if not ok:
                    what = "a higher layer" if LAYER[target_unit] > LAYER[unit] else "a package of its own layer"
                    problems.append(f"{at}: {target_unit} is {what} ({' <- '.join('/'.join(u) for u in LAYERS)})")
            if (unit in PUBLIC_ONLY and target_unit != unit
                    and any(part.startswith("_") for part in target.split(".")[2:])
                    and (module, target) not in PRIVATE_EXCEPTIONS):
                problems.append(f"{at}: a private module of another package; import its public names")
        if unit in LAZY_EXPLAINED:
            lines = path.read_text().splitlines()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and node.col_offset > 0:
                    comment = lines[node.lineno - 1].partition("#")[2]
                    if not any(reason in comment for reason in LAZY_REASONS):
                        problems.append(f"{where}:{node.lineno}: a lazy import without a comment naming its "
                                        f"reason ({' or '.join(LAZY_REASONS)}): {lines[node.lineno - 1].strip()}")
    return problems


def test_layers_import_one_way():
    problems = layer_violations()
    assert not problems, "\n".join(problems)


def test_the_static_check_sees_an_upward_import(tmp_path):
    """The check fails on the old io, which imported the scorer's ScoreSpec and ScoreInputError."""
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(SRC / "xent", copy / "xent", ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    paths = copy / "xent" / "io" / "_paths.py"
    paths.write_text(paths.read_text().replace("from xent.io._errors import InputError",
                                               "from xent.scoring._spec import ScoreInputError as InputError"))
    lazy = copy / "xent" / "dask" / "_run.py"
    lazy.write_text(lazy.read_text() + "\n\ndef _late():\n    from xent.scoring._local import score\n")
    problems = layer_violations(copy)
    assert any("xent.io._paths imports xent.scoring._spec: xent.scoring is a higher layer" in p for p in problems)
    assert any("xent.dask._run imports xent.scoring._local: a private module" in p for p in problems)
    assert any("_run.py:" in p and "a lazy import without a comment" in p for p in problems)
    assert len(problems) == 3, problems


# Run in a fresh interpreter. The parent learns which third-party modules importing all of xent
# loads (in a throwaway child) and imports them, so that each forked child only runs xent code.
DRIVER = r"""
import builtins, importlib, importlib.machinery, importlib.util, json, os, random, sys, traceback

modules, seeds = json.loads(sys.argv[1]), json.loads(sys.argv[2])
real_import = builtins.__import__
found = []


def initialising(name):
    module = sys.modules.get(name)
    return module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False)


def is_submodule(package, name):
    # without importing anything (importlib.util.find_spec would call the watched __import__)
    if f"{package}.{name}" in sys.modules:
        return True
    path = getattr(sys.modules[package], "__path__", None)
    return path is not None and importlib.machinery.PathFinder.find_spec(f"{package}.{name}", path) is not None


def watched(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__", "?")
    target = importlib.util.resolve_name("." * level + name, (globals or {}).get("__package__")) if level else name
    if target.split(".")[0] == "xent" and target != importer and initialising(target):
        # `from package import submodule` is safe while the package initialises; anything else is a cycle
        names = [n for n in (fromlist or ()) if n != "*"]
        if not names or not all(is_submodule(target, n) for n in names):
            found.append(f"{importer} imports {target} (names {names or 'none'}) while {target} is "
                         "still initialising: an import cycle")
    return real_import(name, globals, locals, fromlist, level)


def run_child(names):
    # returns the problems of importing `names` in order, in a forked child with no xent module loaded
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        builtins.__import__ = watched
        try:
            for name in names:
                try:
                    importlib.import_module(name)
                except BaseException as exc:
                    found.append(f"importing {name} raised {type(exc).__name__}: {exc}")
                    break
            out = {"problems": found,
                   "loaded": [m for m in sys.modules if m.split(".")[0] != "xent" and m != "__main__"]}
            os.write(write, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 20):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"problems": ["the child died"], "loaded": []}')


first = run_child(modules)
for name in first["loaded"]:  # in load order; a module that cannot be imported on its own is left to xent
    if name not in sys.modules:
        try:
            importlib.import_module(name)
        except BaseException:
            pass
assert not any(m.split(".")[0] == "xent" for m in sys.modules), "the parent must hold no xent module"
report = {"all": first["problems"], "isolation": {}, "orders": {}}
for name in modules:
    report["isolation"][name] = run_child([name])["problems"]
for seed in seeds:
    order = list(modules)
    random.Random(seed).shuffle(order)
    report["orders"][str(seed)] = run_child(order)["problems"]
print(json.dumps(report))
"""

# xent.cli.__main__ runs the CLI when imported.
NOT_IMPORTED = {"xent.cli.__main__"}
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def import_report():
    modules = sorted(set(_modules()) - NOT_IMPORTED)
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(modules), json.dumps(SEEDS)],
                          capture_output=True, text=True, timeout=600, cwd=SRC.parent)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return modules, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_module_imports_alone(import_report):
    modules, report = import_report
    assert set(report["isolation"]) == set(modules)
    problems = {m: p for m, p in report["isolation"].items() if p}
    assert not problems, json.dumps(problems, indent=1)


@pytest.mark.slow
def test_every_module_imports_in_random_orders(import_report):
    modules, report = import_report
    assert not report["all"], report["all"]
    problems = {seed: p for seed, p in report["orders"].items() if p}
    assert not problems, json.dumps(problems, indent=1)
