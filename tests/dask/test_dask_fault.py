"""Worker loss: killing a worker process mid-run still gives the local engine's result."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

import numpy as np
from dask_data import assert_same_numbers, binary_frame, metrics_of, write_parquet

import xent.dask
from xent.scoring import ScoreSpec
from xent.scoring import score as local_score

# Run on each worker: after its first partition, a worker waits at a gate (a file) before each
# further one. The test kills a worker while both hold a finished partition and wait at the gate,
# then opens the gate: the kill lands mid-run by construction, not by timing.
GATED_WORKER = """
import os, time, xent.io
_orig = xent.io.state_from_table
_done = [0]
def _gated(*a, **k):
    if _done[0]:
        while not os.path.exists(GATE):
            time.sleep(0.01)
    out = _orig(*a, **k)
    _done[0] += 1
    open(os.path.join(DONE, f"{os.getpid()}.{_done[0]}"), "w").close()
    return out
xent.io.state_from_table = _gated
"""


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout  # a guard against a hang, not a timing assumption
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_killing_a_worker_mid_run_gives_the_local_result(tmp_path):
    from distributed import Client, LocalCluster

    cols = binary_frame(6000, seed=11, weights=True)
    sizes = [int(s) for s in np.random.default_rng(0).integers(20, 200, 59)]
    sizes.append(6000 - sum(sizes))
    path = write_parquet(tmp_path / "many.parquet", cols, sizes)
    spec = ScoreSpec(label="label", pred="prob", weight="w")
    want = local_score([path], spec)
    gate, done = tmp_path / "gate", tmp_path / "done"
    done.mkdir()

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster, set_as_default=False) as client:
        client.run(exec, GATED_WORKER, {"GATE": str(gate), "DONE": str(done)})  # fresh globals for the snippet
        pids = client.run(os.getpid)
        out: dict = {}

        def work():
            try:
                out["report"] = xent.dask.score([path], spec, client=client, partition_rows=1)
            except BaseException as exc:  # surfaced below
                out["error"] = exc

        t = threading.Thread(target=work)
        t.start()
        # both workers have finished (and hold) one partition and wait at the gate with the next
        _wait_for(lambda: {f.split(".")[0] for f in os.listdir(done)} == {str(p) for p in pids.values()},
                  "a finished partition on each worker")
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        gate.touch()
        t.join(timeout=300)
        assert not t.is_alive()
        assert "error" not in out, out.get("error")
        assert victim not in client.run(os.getpid).values()  # the nanny started a fresh process

    got = out["report"]
    assert got.result.rows == 6000
    assert_same_numbers(metrics_of(got), metrics_of(want))
