"""Run a function on N torch.distributed processes (gloo, loopback) and collect what each rank returns.

Usage (from a test)::

    from dist_harness import run_distributed

    def _body(rank, world, payload):      # a module-level function: it is pickled to the workers
        import torch.distributed as dist
        ...                               # dist is initialised (gloo), group = WORLD
        return {"loss": loss.item(), "grad": grad.numpy()}

    results = run_distributed(_body, world=2, payload={"seed": 0})   # list, one entry per rank

Each call starts ``world`` fresh processes (spawn), so keep the number of calls
small: do several checks inside one body and return everything at once. A rank
that raises makes ``run_distributed`` raise with that rank's traceback; a rank
that hangs is killed after ``timeout`` seconds.
"""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, fn: Callable[..., Any], payload: Any, outdir: str) -> None:
    import torch
    import torch.distributed as dist

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)  # world processes share the machine's cores
    out: dict[str, Any]
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world)
        try:
            out = {"ok": fn(rank, world, payload)}
        finally:
            dist.destroy_process_group()
    except BaseException:  # reported to the parent, which raises
        out = {"error": traceback.format_exc()}
    with open(os.path.join(outdir, f"rank{rank}.pkl"), "wb") as f:
        pickle.dump(out, f)


def run_distributed(fn: Callable[[int, int, Any], Any], *, world: int, payload: Any = None,
                    timeout: float = 120.0) -> list[Any]:
    """``[fn(rank, world, payload) for rank in range(world)]``, each in its own gloo process."""
    with tempfile.TemporaryDirectory() as outdir:
        ctx = mp.start_processes(_worker, args=(world, _free_port(), fn, payload, outdir), nprocs=world,
                                 join=False, start_method="spawn")
        deadline = time.monotonic() + timeout
        try:
            while not ctx.join(timeout=1.0):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{world} ranks did not finish within {timeout:.0f} s")
        except mp.ProcessExitedException:
            pass  # the rank's own report (below) says why
        finally:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
        results = []
        for rank in range(world):
            path = os.path.join(outdir, f"rank{rank}.pkl")
            if not os.path.exists(path):
                raise RuntimeError(f"rank {rank} of {world} exited without a result")
            with open(path, "rb") as f:
                out = pickle.load(f)
            if "error" in out:
                raise RuntimeError(f"rank {rank} of {world} failed:\n{out['error']}")
            results.append(out["ok"])
        return results
