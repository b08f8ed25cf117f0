"""Fixtures for interop tests: libtorrent sessions on loopback, plus the engine fixtures.

Nothing here imports libtorrent at module level: without it, each interop module
skips itself (``pytest.importorskip``, also inside ltpeer.py) instead of failing to collect.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.engine.conftest import make_share, no_resource_warnings, sessions  # noqa: F401  (fixtures)

MakeLt = Callable[..., tuple[Any, int]]


@pytest.fixture
def lt_sessions() -> Iterator[MakeLt]:
    """Start libtorrent sessions on given loopback hosts; returns (session, port); all torn down after."""
    pytest.importorskip("libtorrent")
    from tests.interop.ltpeer import lt_port, lt_session

    made: list[Any] = []

    def make(host: str, **settings: Any) -> tuple[Any, int]:
        ses = lt_session(host, **settings)
        made.append(ses)
        return ses, lt_port(ses)

    yield make
    for ses in made:
        ses.pause()
    made.clear()
    gc.collect()
