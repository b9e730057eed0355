"""The thread count of every native kernel and of the NumPy engine's pool.

In order of precedence: :func:`set_num_threads`, the environment variable
``XENT_NUM_THREADS``, the number of CPUs this process may run on.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["get_num_threads", "set_num_threads"]

_state: dict[str, Any] = {"n": None}


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has sched_getaffinity
        return max(1, os.cpu_count() or 1)


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    return value


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
    _state["n"] = _check_count("n", n)


def get_num_threads() -> int:
    """Number of threads the fast CPU engine uses.

    :func:`set_num_threads` if it was called, else ``XENT_NUM_THREADS`` if set,
    else the number of CPUs this process may run on.
    """
    if _state["n"] is not None:
        return _state["n"]
    env = os.environ.get("XENT_NUM_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            value = 0
        return _check_count("XENT_NUM_THREADS", value if value >= 1 else env)
    return _cpu_count()
