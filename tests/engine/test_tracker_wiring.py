"""Trackers wired into the runner: a downloader finds a seeder through a loopback tracker alone."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.core.selection import FileSelection
from p2pshare.core.tracker.messages import AnnounceEvent
from p2pshare.core.types import InfoHash
from p2pshare.engine import runner
from p2pshare.engine.create import create_torrent
from p2pshare.engine.trackers import TrackerState
from p2pshare.errors import UsageError
from tests.engine.conftest import wait_until
from tests.helpers import make_tree
from tests.helpers.tracker_servers import HttpTracker, UdpTracker

STARTED, COMPLETED, STOPPED = AnnounceEvent.STARTED, AnnounceEvent.COMPLETED, AnnounceEvent.STOPPED

FAST = replace(
    DEFAULT_CONFIG,
    tracker=replace(DEFAULT_CONFIG.tracker, udp_retry_base=0.2, udp_max_retries=0, connect_timeout=2.0),
    announce=replace(DEFAULT_CONFIG.announce, first_scrape_delay=0.1),
)


def options(host: str, config: Config = FAST) -> runner.SwarmOptions:
    return runner.SwarmOptions(config=config, host=host, port=0, bootstrap=None, state=None)


def http_events(tracker: HttpTracker, port: int) -> list[bytes]:
    return [
        q.get("event", [b""])[0]
        for path, q in tracker.requests
        if path == "/announce" and q["port"] == [str(port).encode()]
    ]


def udp_events(tracker: UdpTracker, port: int) -> list[AnnounceEvent]:
    return [r.announce.event for r in tracker.received if r.announce is not None and r.announce.port == port]


@pytest.mark.parametrize("kind", ["http", "udp"])
async def test_download_through_a_tracker_only(tmp_path: Path, kind: str) -> None:
    """Without DHT or --peer, the tracker names the seeder; started, completed and stopped are sent."""
    host = "127.0.8.1" if kind == "http" else "127.0.8.11"
    server: HttpTracker | UdpTracker = HttpTracker(host) if kind == "http" else UdpTracker(host)
    async with server as tracker:
        files = make_tree(tmp_path / "src" / "pack", {"a.bin": 70_000, "b/c.bin": 20_000})
        assert files
        created = create_torrent(tmp_path / "src" / "pack", piece_length=16384, trackers=[tracker.url()])
        seeders: list[runner.Swarm] = []
        seeding = asyncio.create_task(runner.seed(created, options(host[:-1] + "2"), on_swarm=seeders.append))
        try:
            await wait_until(lambda: bool(seeders) and seeders[0].trackers.status()[0].state
                             is TrackerState.WORKING, 10, "the seeder's first announce")  # fmt: skip
            leechers: list[runner.Swarm] = []
            result = await asyncio.wait_for(
                runner.download(
                    created.info.info_hash,
                    options(host[:-1] + "3"),
                    out_dir=tmp_path / "out",
                    trackers=[[tracker.url()]],
                    timeout=20,
                    on_swarm=leechers.append,
                ),
                30,
            )
            assert (tmp_path / "out" / "pack" / "a.bin").read_bytes() == files["a.bin"].read_bytes()
            assert result.peers_used == 1
            port = leechers[0].port
            if isinstance(tracker, HttpTracker):
                assert http_events(tracker, port) == [b"started", b"completed", b"stopped"]
            else:
                assert udp_events(tracker, port) == [STARTED, COMPLETED, STOPPED]
        finally:
            seeding.cancel()
            with pytest.raises(asyncio.CancelledError):
                await seeding
        port = seeders[0].port
        if isinstance(tracker, HttpTracker):
            assert http_events(tracker, port) == [b"started", b"stopped"]
        else:
            assert udp_events(tracker, port) == [STARTED, STOPPED]


async def test_a_dead_first_tier_falls_over_to_the_next(tmp_path: Path) -> None:
    """A tracker that refuses connections is marked failed and the next tier's tracker is used."""
    async with HttpTracker("127.0.8.21") as good, UdpTracker("127.0.8.22") as dead:
        dead_url = dead.url()
        dead.drop = lambda req: True  # a UDP tracker that never answers
        make_tree(tmp_path / "src" / "one", {"x.bin": 40_000})
        created = create_torrent(tmp_path / "src" / "one", piece_length=16384, trackers=[good.url()])
        seeding = asyncio.create_task(runner.seed(created, options("127.0.8.23")))
        try:
            leechers: list[runner.Swarm] = []
            await asyncio.wait_for(
                runner.download(
                    created.info.info_hash,
                    options("127.0.8.24"),
                    out_dir=tmp_path / "out",
                    trackers=[[dead_url], [good.url()]],
                    timeout=20,
                    on_swarm=leechers.append,
                ),
                30,
            )
            dead_st, good_st = leechers[0].trackers.status()  # in the order they are tried
            assert dead_st.url == dead_url and dead_st.failures >= 1  # (it is tried again each round)
            assert good_st.state is TrackerState.WORKING and good_st.failures == 0
            assert dead.received, "the first tier was tried first"
        finally:
            seeding.cancel()
            with pytest.raises(asyncio.CancelledError):
                await seeding


async def test_scrape_reports_the_swarm(tmp_path: Path) -> None:
    """Shortly after start the torrent scrapes its tracker and keeps the counts."""
    async with HttpTracker("127.0.8.31") as tracker:
        make_tree(tmp_path / "src" / "s", {"x.bin": 20_000})
        created = create_torrent(tmp_path / "src" / "s", piece_length=16384, trackers=[tracker.url()])
        seeders: list[runner.Swarm] = []
        seeding = asyncio.create_task(runner.seed(created, options("127.0.8.32"), on_swarm=seeders.append))
        try:
            await wait_until(
                lambda: bool(seeders) and seeders[0].trackers.last_scrape is not None, 10, "a scrape"
            )
            assert seeders[0].trackers.last_scrape is not None
            assert seeders[0].trackers.last_scrape.complete == 1
        finally:
            seeding.cancel()
            with pytest.raises(asyncio.CancelledError):
                await seeding


async def test_no_trackers_and_no_other_source_is_a_usage_error(tmp_path: Path) -> None:
    """With trackers turned off and no DHT or --peer there is no way to find peers."""
    off = replace(FAST, tracker=replace(FAST.tracker, enabled=False))
    with pytest.raises(UsageError, match="no-trackers"):
        await runner.download(
            InfoHash.parse("ab" * 20),
            options("127.0.8.41", off),
            out_dir=tmp_path / "out",
            trackers=[["http://127.0.8.42:1/announce"]],
        )


async def test_no_trackers_sends_nothing(tmp_path: Path) -> None:
    """A seed with trackers in its manifest announces to none of them when trackers are off."""
    async with HttpTracker("127.0.8.51") as tracker:
        make_tree(tmp_path / "src" / "n", {"x.bin": 20_000})
        created = create_torrent(tmp_path / "src" / "n", piece_length=16384, trackers=[tracker.url()])
        off = replace(FAST, tracker=replace(FAST.tracker, enabled=False))
        seeders: list[runner.Swarm] = []
        seeding = asyncio.create_task(
            runner.seed(created, options("127.0.8.52", off), on_swarm=seeders.append)
        )
        await wait_until(lambda: bool(seeders), 5, "the seeder")
        await asyncio.sleep(0.5)
        seeding.cancel()
        with pytest.raises(asyncio.CancelledError):
            await seeding
        assert tracker.requests == []
        assert not seeders[0].trackers.active


async def test_a_partial_download_is_not_reported_as_a_seed(tmp_path: Path) -> None:
    """With some files chosen the tracker hears a non-zero left and no 'completed', then 'stopped'."""
    async with HttpTracker("127.0.8.61") as tracker:
        make_tree(tmp_path / "src" / "p", {"a.bin": 40_000, "b.bin": 40_000})
        created = create_torrent(tmp_path / "src" / "p", piece_length=16384, trackers=[tracker.url()])
        seeding = asyncio.create_task(runner.seed(created, options("127.0.8.62")))
        try:
            leechers: list[runner.Swarm] = []
            await asyncio.wait_for(
                runner.download(
                    created.info.info_hash,
                    options("127.0.8.63"),
                    out_dir=tmp_path / "out",
                    trackers=[[tracker.url()]],
                    select=FileSelection.parse(["a.bin"]),
                    timeout=20,
                    on_swarm=leechers.append,
                ),
                30,
            )
        finally:
            seeding.cancel()
            with pytest.raises(asyncio.CancelledError):
                await seeding
        port = leechers[0].port
        assert http_events(tracker, port) == [b"started", b"stopped"]
        mine = [
            q for path, q in tracker.requests if path == "/announce" and q["port"] == [str(port).encode()]
        ]
        assert int(mine[-1]["left"][0]) > 0
