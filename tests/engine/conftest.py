"""Engine test fixtures: small tiles and two threads, so small arrays still take many tiles."""

from __future__ import annotations

import numpy as np
import pytest

from xent.engine import _layout, _threads


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_layout, "TILE_ELEMENTS", 64)
    monkeypatch.setitem(_threads._state, "n", 2)
