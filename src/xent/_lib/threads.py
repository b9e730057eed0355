"""The thread count of every native kernel and of the NumPy engine's pool.

In order of precedence: :func:`set_num_threads`, the environment variable
``XENT_NUM_THREADS``, the number of CPUs this process may run on.
"""

from __future__ import annotations

import os

from xent._lib.validation import check_count

__all__ = ["get_num_threads", "set_num_threads"]

_state: dict[str, int | None] = {"n": None}


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has sched_getaffinity
        return max(1, os.cpu_count() or 1)


def set_num_threads(n: int, /) -> None:
    """Set the number of threads the fast CPU engine uses (default: all CPUs available).

    Overrides the environment variable ``XENT_NUM_THREADS``. ``n = 1`` runs the
    engine in the calling thread only.

    Examples
    --------
    >>> import xent
    >>> xent.set_num_threads(2)
    >>> xent.get_num_threads()
    2
    """
    _state["n"] = check_count("n", n)


def get_num_threads() -> int:
    """Number of threads the fast CPU engine uses.

    :func:`set_num_threads` if it was called, else ``XENT_NUM_THREADS`` if set,
    else the number of CPUs this process may run on.
    """
    chosen = _state["n"]
    if chosen is not None:
        return chosen
    env = os.environ.get("XENT_NUM_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        return check_count("XENT_NUM_THREADS", value if value >= 1 else env)
    return _cpu_count()
