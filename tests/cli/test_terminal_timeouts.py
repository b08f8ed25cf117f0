"""--timeout gives up when nothing new arrived for S seconds (aria2's --bt-stop-timeout); --max-time caps."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from p2pshare.config import DEFAULT_CONFIG
from p2pshare.core.types import InfoHash
from p2pshare.engine import events as ev
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.runner import Swarm, SwarmOptions
from p2pshare.errors import IncompleteError, NoMetadataError, NoPeersError

FAST = replace(DEFAULT_CONFIG, terminal=replace(DEFAULT_CONFIG.terminal, stall_poll=0.02))


class StubTorrent:
    """Just what wait_complete reads: events, counters, the manifest and a snapshot."""

    def __init__(self, info: Any = "manifest") -> None:
        self.params = TorrentParams(InfoHash(b"\xab" * 20))  # no trackers
        self.info_hash = self.params.info_hash
        self.peer_id = b"-PS0100-" + b"x" * 12
        self.completed = asyncio.Event()
        self.fatal_event = asyncio.Event()
        self.fatal: BaseException | None = None
        self.downloaded = 0
        self.info = info

    def status(self) -> ev.TorrentStatus:
        phase = ev.Phase.DOWNLOADING
        return ev.TorrentStatus("ab" * 20, "x", phase, 100, 10, 3, 30, self.downloaded, 0, 0, 0)


def swarm(torrent: StubTorrent, connected: int = 1) -> Swarm:
    s = Swarm(SimpleNamespace(port=0), torrent, SwarmOptions(config=FAST))  # type: ignore[arg-type]
    s.ever_connected = connected
    return s


async def trickle(t: StubTorrent, every: float, until: float) -> None:
    """New bytes every ``every`` seconds, then completion at ``until``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + until
    while loop.time() < end:
        await asyncio.sleep(every)
        t.downloaded += 1000
    t.completed.set()


async def test_a_slow_but_steady_transfer_outlives_a_short_timeout() -> None:
    """Data every 0.05 s keeps a 0.2 s --timeout from firing over a 0.6 s transfer."""
    t = StubTorrent()
    task = asyncio.create_task(trickle(t, 0.05, 0.6))
    await asyncio.wait_for(swarm(t).wait_complete(0.2), 5)
    await task
    assert t.completed.is_set()


async def test_a_stall_ends_the_wait_with_the_pieces_kept() -> None:
    """Nothing new for the timeout: IncompleteError naming the verified pieces and the stall."""
    t = StubTorrent()
    t.downloaded = 500
    with pytest.raises(IncompleteError, match=r"3/10 pieces verified, nothing new arrived for 0.1 s"):
        await asyncio.wait_for(swarm(t).wait_complete(0.1), 5)


async def test_max_time_caps_even_a_flowing_transfer() -> None:
    """--max-time stops a transfer that still makes progress."""
    t = StubTorrent()
    task = asyncio.create_task(trickle(t, 0.02, 10))
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(IncompleteError, match=r"--max-time"):
        await asyncio.wait_for(swarm(t).wait_complete(5.0, max_time=0.2), 5)
    assert loop.time() - began < 2
    task.cancel()


async def test_no_peer_and_no_manifest_keep_their_own_errors() -> None:
    """A stall with no peer ever is NoPeersError (6); with peers but no manifest NoMetadataError (7)."""
    with pytest.raises(NoPeersError, match="no peers found"):
        await asyncio.wait_for(swarm(StubTorrent(info=None), connected=0).wait_complete(0.05), 5)
    with pytest.raises(NoMetadataError, match="none sent the manifest"):
        await asyncio.wait_for(swarm(StubTorrent(info=None), connected=2).wait_complete(0.05), 5)


async def test_a_storage_failure_wins_over_waiting() -> None:
    """A fatal storage error ends the wait at once with that error."""
    t = StubTorrent()
    t.fatal = OSError(28, "No space left on device")
    t.fatal_event.set()
    with pytest.raises(OSError, match="No space"):
        await asyncio.wait_for(swarm(t).wait_complete(None), 5)
