"""Shared fixtures for engine tests: shares on disk, sessions on loopback, bounded waits, leak checks."""

from __future__ import annotations

import asyncio
import filecmp
import gc
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.engine import events as ev
from p2pshare.engine.create import CreatedTorrent, create_torrent
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.session import Session
from p2pshare.engine.torrent import Torrent
from tests.helpers import make_tree

MakeShare = Callable[..., CreatedTorrent]
MakeSession = Callable[..., Awaitable[Session]]


async def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``predicate`` on the event loop until it holds; fail naming ``what`` after ``timeout`` s."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}") from None


async def wait_complete(torrent: Torrent, timeout: float) -> None:
    """Wait (bounded) until ``torrent`` has every piece verified."""
    try:
        async with asyncio.timeout(timeout):
            await torrent.completed.wait()
    except TimeoutError:
        st = torrent.status()
        raise AssertionError(
            f"download incomplete after {timeout:.0f}s: {st.have_pieces}/{st.num_pieces} pieces, "
            f"peers {[(p.address, p.downloaded) for p in st.peers]}"
        ) from None


def seed_params(share: CreatedTorrent) -> TorrentParams:
    """Parameters that seed ``share`` from the files where they were created."""
    return TorrentParams(
        share.info.info_hash,
        info=share.info,
        download_dir=share.paths[0].parent,
        file_paths=share.paths,
        assume_complete=True,
    )


async def seed(session: Session, share: CreatedTorrent) -> Torrent:
    """Add ``share`` to ``session`` as a seed, serving the files where they were created."""
    return await session.add_torrent(seed_params(share))


def assert_same_files(share: CreatedTorrent, out_root: Path) -> None:
    """Every file of ``share`` exists under ``out_root`` with identical bytes (empty ones too)."""
    info = share.info
    for src, parts in zip(share.paths, info.file_paths(), strict=True):
        dst = out_root.joinpath(*parts)
        assert dst.is_file(), f"{dst} was not created"
        assert dst.stat().st_size == src.stat().st_size, f"{dst} has the wrong size"
        assert filecmp.cmp(src, dst, shallow=False), f"{dst} differs from {src}"


class EventLog:
    """Collects engine events for assertions."""

    def __init__(self) -> None:
        self.events: list[ev.EngineEvent] = []

    def __call__(self, event: ev.EngineEvent) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def make_share(tmp_path: Path) -> MakeShare:
    """Build a share from a {relative path: size} spec, with a chosen piece size."""
    counter = iter(range(1000))

    def make(
        spec: dict[str, int], *, piece_length: int = 16384, name: str | None = None, seed: int = 0
    ) -> CreatedTorrent:
        root = tmp_path / f"src{next(counter)}" / (name or "share")
        made = make_tree(root, spec, seed)
        if len(spec) == 1 and "/" not in next(iter(spec)):
            return create_torrent(next(iter(made.values())), piece_length=piece_length)
        return create_torrent(root, piece_length=piece_length)

    return make


@pytest.fixture
async def sessions() -> AsyncIterator[MakeSession]:
    """Start p2pshare sessions on given loopback hosts; close them all and check nothing leaked."""
    made: list[Session] = []

    async def make(host: str, config: Config = DEFAULT_CONFIG, **kw: Any) -> Session:
        s = Session(config, listen_host=host, **kw)
        await s.start()
        made.append(s)
        return s

    yield make
    async with asyncio.timeout(20):
        for s in made:
            await s.close()
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not left, f"tasks left running after Session.close(): {left}"


@pytest.fixture
def no_resource_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record ResourceWarnings (unclosed sockets/files) raised during the test and fail on any."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield caught
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, f"resources left open: {[str(w.message) for w in leaks]}"
