"""The LocalCluster that xent.dask starts itself: workers forked from a warmed
forkserver, restarted by their nanny when killed, and all gone at the end."""

from __future__ import annotations

import os
import signal
import time

import psutil
from dask_data import assert_same_numbers, binary_frame, metrics_of, write_parquet

import xent.dask
from xent.dask._cluster import open_client
from xent.scoring import ScoreSpec
from xent.scoring import score as local_score


def _new_pids(client, old: set[int], timeout: float = 30.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = set(client.run(os.getpid, on_error="ignore").values())  # the dead one may not be noticed yet
        if len(pids) == 2 and not pids & old:
            return pids
        time.sleep(0.1)
    raise AssertionError(f"no fresh worker after {timeout} s: {pids}")


def test_owned_cluster_restarts_a_killed_worker_and_leaves_no_process(tmp_path):
    cols = binary_frame(3000, seed=5, weights=True)
    path = write_parquet(tmp_path / "x.parquet", cols, [700, 1300, 1000])
    spec = ScoreSpec(label="label", pred="prob", weight="w")
    want = local_score([path], spec)

    with open_client(workers=2) as client:
        first = set(client.run(os.getpid).values())
        assert all(psutil.Process(p).ppid() != os.getpid() for p in first)  # forked by the forkserver
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        second = _new_pids(client, {victim}) - first  # the nanny forks a fresh worker
        assert len(second) == 1
        got = xent.dask.score([path], spec, client=client, partition_rows=1)
        pids = first | second

    assert_same_numbers(metrics_of(got), metrics_of(want))
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    deadline = time.monotonic() + 10
    while alive and time.monotonic() < deadline:  # the forkserver reaps its children
        time.sleep(0.1)
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"worker processes left behind: {alive}"
