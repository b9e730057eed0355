"""Client handling of the Dask engine: the missing-extra message, argument checks,
and a LocalCluster that is shut down even when the work inside fails."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from xent.dask._cluster import INSTALL_HINT, open_client


def _run_without_dask(code: str) -> subprocess.CompletedProcess[str]:
    # sys.modules[name] = None makes `import name` raise ImportError, as if it were not installed.
    prelude = "import sys\nfor m in ('dask', 'distributed'):\n    sys.modules[m] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_missing_extra_message_library():
    proc = _run_without_dask(
        """
        import xent
        try:
            import xent.dask
        except ImportError as exc:
            print(type(exc).__name__, exc)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("MissingDaskError the Dask engine needs dask[distributed], which is not installed")
    assert proc.stdout.rstrip().endswith(INSTALL_HINT)


def test_missing_extra_message_cli(tmp_path):
    proc = _run_without_dask(
        f"""
        from xent.cli import main
        sys.exit(main(["score", {str(tmp_path / "x.parquet")!r}, "--engine", "dask", "--workers", "2"]))
        """
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert INSTALL_HINT in proc.stderr


def test_import_xent_does_not_import_dask():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, xent; print('dask' in sys.modules, 'distributed' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "`workers` must be an integer >= 1, got 0"),
        ({"workers": 1.5}, "`workers` must be an integer >= 1, got 1.5"),
        ({"scheduler": 8786}, "`scheduler` must be a scheduler address"),
        ({"scheduler": "tcp://127.0.0.1:1", "workers": 2}, "give at most one of"),
    ],
)
def test_bad_cluster_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        with open_client(**kwargs):
            pass


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(ConnectionError, match="could not connect to the Dask scheduler at 'tcp://127.0.0.1:9'"):
        with open_client(scheduler="tcp://127.0.0.1:9", connect_timeout=1.0):
            pass


def test_owned_cluster_is_closed_on_error():
    seen = {}
    with pytest.raises(KeyboardInterrupt):
        with open_client(workers=1) as client:
            seen["client"] = client
            seen["cluster"] = client.cluster
            raise KeyboardInterrupt
    assert seen["client"].status == "closed"
    assert seen["cluster"].status.name == "closed"
