"""Run a function on N torch.distributed processes (gloo, loopback) and collect what each rank returns.

Usage (from a test)::

    from dist_harness import run_distributed

    def _body(rank, world, payload):      # a module-level function: it is pickled to the workers
        import torch.distributed as dist
        ...                               # dist is initialised (gloo), group = WORLD
        return {"loss": loss.item(), "grad": grad.numpy()}

    results = run_distributed(_body, world=2, payload={"seed": 0})   # list, one entry per rank

Each call starts ``world`` fresh processes (forked from a server that imported torch once, see
:func:`_start_method`), so keep the number of calls
small: do several checks inside one body and return everything at once. A rank
that raises makes ``run_distributed`` raise with that rank's traceback; a rank
that hangs is killed after ``timeout`` seconds.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch.distributed as dist
import torch.multiprocessing as mp


def _start_method() -> str:
    """"forkserver" with torch and xent.torch imported once in the server, so that a rank starts in
    milliseconds instead of importing torch again (seconds each, minutes for a suite on a loaded
    machine). The server only imports: it holds no process group, OpenMP team or device context, so
    forking it is as safe as a DataLoader's fork. "spawn" where there is no forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    multiprocessing.set_forkserver_preload(["torch", "torch.distributed", "xent.torch"])  # before it starts
    return "forkserver"


def _worker(rank: int, world: int, port: int, fn: Callable[..., Any], payload: Any, outdir: str) -> None:
    import torch

    torch.set_num_threads(1)  # world processes share the machine's cores
    out: dict[str, Any]
    try:
        store = dist.TCPStore("127.0.0.1", port, is_master=False)  # the parent's (see run_distributed)
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
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
    # The rendezvous store lives here, on a port the OS picks and this process holds (port 0): no
    # fixed port, and no window in which another process could take a port chosen in advance.
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    with tempfile.TemporaryDirectory() as outdir:
        ctx = mp.start_processes(_worker, args=(world, store.port, fn, payload, outdir), nprocs=world,
                                 join=False, start_method=_start_method())
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
