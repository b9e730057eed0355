"""Shared test fixtures: the backend fixture runs a test over every array library.

Backends: NumPy, read-only NumPy (catches in-place writes), PyTorch (eager),
JAX (eager) and JAX under ``jax.jit``. Use ``backend.asarray`` to convert NumPy
test data, ``backend.call(fn, *arrays, **options)`` to call a function (jit
wraps the arrays, options stay static) and ``backend.to_numpy`` on results.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")


@dataclass(frozen=True)
class Backend:
    name: str
    asarray: Callable[[Any], Any]
    jit: bool = False
    eager: bool = True  # data-dependent validation runs only on eager backends

    def call(self, fn: Callable[..., Any], *arrays: Any, **options: Any) -> Any:
        if not self.jit:
            return fn(*arrays, **options)
        import jax

        return jax.jit(lambda *a: fn(*a, **options))(*arrays)

    @staticmethod
    def to_numpy(x: Any) -> Any:
        if isinstance(x, tuple):
            return tuple(Backend.to_numpy(v) for v in x)
        if hasattr(x, "detach"):
            return x.detach().cpu().numpy()
        return np.asarray(x)


def _readonly(x: Any) -> np.ndarray:
    a = np.array(x)
    a.setflags(write=False)
    return a


def _torch(x: Any) -> Any:
    import torch

    return torch.asarray(np.array(x))


def _jax(x: Any) -> Any:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jnp.asarray(np.array(x))


BACKENDS = {
    "numpy": Backend("numpy", np.asarray),
    "numpy-readonly": Backend("numpy-readonly", _readonly),
    "torch": Backend("torch", _torch),
    "jax": Backend("jax", _jax),
    "jax-jit": Backend("jax-jit", _jax, jit=True, eager=False),
}


@pytest.fixture(params=list(BACKENDS), ids=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Backend:
    return BACKENDS[request.param]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)
