"""Getting a Dask client: an existing one, a scheduler address, or a LocalCluster we own.

dask[distributed] is an optional extra. :func:`require_distributed` imports it
on demand and turns a missing install into one clear message. A LocalCluster
started here is always closed on the way out, also on an error or Ctrl-C,
because it lives in a ``with`` block.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["INSTALL_HINT", "MissingDaskError", "open_client", "require_distributed"]

INSTALL_HINT = 'pip install "xent-ml[dask]"'


class MissingDaskError(ImportError):
    """dask[distributed] is not installed; the message says how to install it."""


def require_distributed() -> Any:
    """Import and return ``dask.distributed``, or raise :class:`MissingDaskError`."""
    try:
        import dask  # noqa: F401  # optional dependency (the dask extra)
        import dask.bag  # noqa: F401  # optional dependency (the dask extra)
        import distributed  # optional dependency (the dask extra)
    except ImportError as exc:
        raise MissingDaskError(
            f"the Dask engine needs dask[distributed], which is not installed ({exc}); "
            f"install it with: {INSTALL_HINT}"
        ) from exc
    return distributed


def _check_workers(workers: Any) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be an integer >= 1, got {workers!r}")
    return workers


def _check_scheduler(scheduler: Any) -> str:
    if not isinstance(scheduler, str) or "://" not in scheduler and ":" not in scheduler:
        raise ValueError(
            f"`scheduler` must be a scheduler address such as 'tcp://127.0.0.1:8786', got {scheduler!r}"
        )
    return scheduler


@contextlib.contextmanager
def open_client(
    *,
    client: Any = None,
    scheduler: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    connect_timeout: float = 10.0,
) -> Iterator[Any]:
    """Yield a ``distributed.Client``; close whatever this function opened.

    Give at most one of ``client`` (used as is, not closed), ``scheduler`` (an
    address such as ``tcp://HOST:PORT``: connect to that cluster) and
    ``workers`` (start a ``LocalCluster`` of that many worker processes on
    127.0.0.1 and shut it down at the end). With none of them, the current
    default client is used if there is one, else a LocalCluster with one worker
    process per CPU core.
    """
    given = [name for name, v in (("client", client), ("scheduler", scheduler), ("workers", workers)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one of `client`, `scheduler` and `workers`, got {' and '.join(given)}")
    if scheduler is not None:
        scheduler = _check_scheduler(scheduler)
    if workers is not None:
        workers = _check_workers(workers)
    distributed = require_distributed()

    if client is not None:
        yield client
        return
    if scheduler is not None:
        try:
            c = distributed.Client(scheduler, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"could not connect to the Dask scheduler at {scheduler!r}: {exc}") from exc
        with c:
            yield c
        return
    if workers is None:
        try:
            default = distributed.default_client()
        except ValueError:  # no default client: start our own cluster
            workers = os.cpu_count() or 1
        else:
            yield default
            return
    import dask  # optional dependency (the dask extra)
    from distributed.utils import get_mp_context  # optional dependency (the dask extra)

    # Workers forked from one warmed forkserver: no per-worker imports
    # (~1 s each), and a forked worker exits by os._exit, so shutdown is ~0.7 s faster.
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        # replaces distributed's preload list; ignored if this process's forkserver already runs
        get_mp_context().set_forkserver_preload(["distributed", "xent.dask._warm"])
        with distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,  # with a nanny per worker, which restarts a lost worker
            host="127.0.0.1",
            dashboard_address=None,  # nobody could open it: the progress bar is our own
            silence_logs=logging.ERROR,
        ) as cluster, distributed.Client(cluster, set_as_default=False) as c:
            yield c
