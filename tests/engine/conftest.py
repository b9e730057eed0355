"""Engine test fixtures: small tiles and two threads, so small arrays still take many tiles."""

from __future__ import annotations

import pytest

from xent._lib import threads
from xent.engine import _layout


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_layout, "TILE_ELEMENTS", 64)
    monkeypatch.setitem(threads._state, "n", 2)  # was _threads._state, which nothing read
