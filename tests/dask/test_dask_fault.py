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

# Run on each worker: make every partition take >= 50 ms so the run lasts a few seconds.
SLOW_WORKER = """
import time, xent.io
_orig = xent.io.state_from_table
def _slow(*a, **k):
    time.sleep(0.05)
    return _orig(*a, **k)
xent.io.state_from_table = _slow
"""


def test_killing_a_worker_mid_run_gives_the_local_result(tmp_path):
    from distributed import Client, LocalCluster

    cols = binary_frame(6000, seed=11, weights=True)
    sizes = [int(s) for s in np.random.default_rng(0).integers(20, 200, 59)]
    sizes.append(6000 - sum(sizes))
    path = write_parquet(tmp_path / "many.parquet", cols, sizes)
    spec = ScoreSpec(label="label", pred="prob", weight="w")
    want = local_score([path], spec)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster, set_as_default=False) as client:
        client.run(exec, SLOW_WORKER, {})  # fresh globals for the snippet
        pids = client.run(os.getpid)
        out: dict = {}

        def work():
            try:
                out["report"] = xent.dask.score([path], spec, client=client, partition_rows=1)
            except BaseException as exc:  # surfaced below
                out["error"] = exc

        t = threading.Thread(target=work)
        t.start()
        deadline = time.monotonic() + 30
        while not any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # some partitions done and held in worker memory, others running
        assert t.is_alive(), "the run finished before a worker could be killed"
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        t.join(timeout=120)
        assert not t.is_alive()
        assert "error" not in out, out.get("error")
        assert victim not in client.run(os.getpid).values()  # the nanny started a fresh process

    got = out["report"]
    assert got.result.rows == 6000
    assert_same_numbers(metrics_of(got), metrics_of(want))
