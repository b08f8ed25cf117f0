"""The wired torrent (runner.seed / runner.download) against opentracker, libtorrent and aria2c, both ways.

Unlike test_opentracker.py, which drives a TrackerService by hand, these start the
runner as the CLI does: trackers come from the manifest (or a magnet's tiers) and the
torrent announces, hears peers, reports completed and stopped by itself.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from p2pshare.config import DEFAULT_CONFIG
from p2pshare.core.metainfo import encode_torrent
from p2pshare.core.selection import FileSelection
from p2pshare.core.types import InfoHash
from p2pshare.engine import runner
from p2pshare.engine.create import CreatedTorrent
from p2pshare.engine.trackers import TrackerState
from p2pshare.io.tracker_client import TrackerClient
from tests.engine.conftest import MakeShare, assert_same_files, wait_until
from tests.interop.conftest import MakeLt
from tests.interop.ltpeer import add_torrent, lt_seed, save_path_of
from tests.interop.test_opentracker import CFG, SPEC, OpenTracker, free_port, opentracker, same_files

__all__ = ["opentracker"]  # the fixture, shared with test_opentracker.py

lt = pytest.importorskip("libtorrent")  # without it this module skips instead of failing to collect

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        shutil.which("opentracker") is None, reason="opentracker not installed (scripts/install-tracker.sh)"
    ),
]

CONFIG = replace(DEFAULT_CONFIG, tracker=CFG)


def options(host: str) -> runner.SwarmOptions:
    return runner.SwarmOptions(config=CONFIG, host=host, port=0, bootstrap=None, state=None)


def with_tracker(share: CreatedTorrent, url: str) -> CreatedTorrent:
    return replace(share, torrent=encode_torrent(share.info, announce=url), trackers=(url,))


async def seeders_seen(tracker: OpenTracker, ih: InfoHash, count: int) -> None:
    """Wait until opentracker's scrape counts ``count`` seeders (so a later announcer gets them)."""
    client = TrackerClient(CFG)
    try:

        async def probe() -> bool:
            stats = (await client.scrape(tracker.url("http"), [ih])).files.get(ih)
            return stats is not None and stats.complete >= count

        async with asyncio.timeout(20):
            while not await probe():
                await asyncio.sleep(0.1)
    finally:
        await client.aclose()


def announced(swarms: list[runner.Swarm]) -> bool:
    return bool(swarms) and swarms[0].trackers.status()[0].state is TrackerState.WORKING


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("kind", ["http", "udp"])
async def test_libtorrent_finds_a_wired_p2pshare_seed(
    opentracker: OpenTracker, make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Path, kind: str
) -> None:
    """runner.seed announces the manifest's tracker by itself; libtorrent finds it there and downloads."""
    share = with_tracker(make_share(SPEC, piece_length=16384), opentracker.url(kind))
    await opentracker.allow(share.info.info_hash)
    swarms: list[runner.Swarm] = []
    seeding = asyncio.create_task(runner.seed(share, options("127.0.3.4"), on_swarm=swarms.append))
    try:
        await wait_until(lambda: announced(swarms), 10, "our seed's announce")
        ses, _ = lt_sessions("127.0.3.5")
        handle = add_torrent(ses, share.torrent, tmp_path / "lt_out")
        await wait_until(lambda: bool(handle.status().is_seeding), 30, "libtorrent to finish via the tracker")
        await wait_until(lambda: same_files(share, tmp_path / "lt_out"), 10, "libtorrent's files on disk")
        assert swarms[0].torrent.uploaded >= share.info.total_length
    finally:
        await stop(seeding)


@pytest.mark.parametrize("kind", ["http", "udp"])
async def test_wired_download_finds_a_libtorrent_seed_after_a_dead_tier(
    opentracker: OpenTracker, make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Path, kind: str
) -> None:
    """runner.download with a dead first tier falls over to opentracker and gets the files from libtorrent."""
    share = make_share(SPEC, piece_length=16384)
    await opentracker.allow(share.info.info_hash)
    ses, _ = lt_sessions("127.0.3.6")
    ti = lt.torrent_info(lt.bdecode(share.torrent))
    ti.add_tracker(opentracker.url(kind), 0)
    lt_seed(ses, ti, save_path_of(share.paths, share.info.file_paths()))
    await seeders_seen(opentracker, share.info.info_hash, 1)
    with socket.socket() as dead_sock:
        dead_sock.bind(("127.0.3.9", 0))
        dead = f"http://127.0.3.9:{dead_sock.getsockname()[1]}/announce"  # nothing listens once closed
    out = tmp_path / "out"
    leechers: list[runner.Swarm] = []
    result = await asyncio.wait_for(
        runner.download(
            share.info.info_hash,
            options("127.0.3.7"),
            out_dir=out,
            trackers=[[dead], [opentracker.url(kind)]],  # a magnet: the manifest comes from libtorrent
            timeout=30,
            on_swarm=leechers.append,
        ),
        40,
    )
    assert_same_files(share, out)
    assert result.peers_used == 1
    dead_st, live_st = leechers[0].trackers.status()
    assert dead_st.failures >= 1  # (the first tier is tried again each round: BEP 12)
    assert live_st.last_announce is not None and live_st.failures == 0 and live_st.seeders == 1


def aria2_args(tmp_path: Path, host: str, out: Path, torrent: Path, *extra: str) -> list[str]:
    return [
        "aria2c", "--no-conf=true", f"--interface={host}", f"--listen-port={free_port(host)}",
        "--disable-ipv6=true", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
        "--enable-peer-exchange=false", "--summary-interval=0", "--console-log-level=warn",
        "--file-allocation=none", f"--dir={out}", f"--log={tmp_path / 'aria2.log'}", "--log-level=info",
        *extra, str(torrent),
    ]  # fmt: skip


@pytest.mark.skipif(shutil.which("aria2c") is None, reason="aria2c not installed (apt-get install aria2)")
async def test_aria2_finds_a_wired_p2pshare_seed(
    opentracker: OpenTracker, make_share: MakeShare, tmp_path: Path
) -> None:
    """aria2c, told only the .torrent's HTTP tracker, downloads everything from runner.seed."""
    share = with_tracker(make_share(SPEC, piece_length=16384), opentracker.url("http"))
    await opentracker.allow(share.info.info_hash)
    swarms: list[runner.Swarm] = []
    seeding = asyncio.create_task(runner.seed(share, options("127.0.3.10"), on_swarm=swarms.append))
    torrent = tmp_path / "share.torrent"
    torrent.write_bytes(share.torrent)
    out = tmp_path / "aria2_out"
    try:
        await wait_until(lambda: announced(swarms), 10, "our seed's announce")
        args = aria2_args(tmp_path, "127.0.3.11", out, torrent, "--seed-time=0", "--bt-stop-timeout=60")
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            async with asyncio.timeout(30):
                output, _ = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, output.decode(errors="replace")[-2000:]
        assert_same_files(share, out)
    finally:
        await stop(seeding)


@pytest.mark.skipif(shutil.which("aria2c") is None, reason="aria2c not installed (apt-get install aria2)")
async def test_wired_download_finds_an_aria2_seed(
    opentracker: OpenTracker, make_share: MakeShare, tmp_path: Path
) -> None:
    """runner.download, given only the .torrent's HTTP tracker, finds aria2c seeding and gets every file."""
    share = with_tracker(make_share(SPEC, piece_length=16384), opentracker.url("http"))
    await opentracker.allow(share.info.info_hash)
    torrent = tmp_path / "share.torrent"
    torrent.write_bytes(share.torrent)
    seed_dir = save_path_of(share.paths, share.info.file_paths())
    args = aria2_args(tmp_path, "127.0.3.12", seed_dir, torrent, "--check-integrity=true", "--seed-ratio=0.0",
                      "--seed-time=1")  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        await seeders_seen(opentracker, share.info.info_hash, 1)
        out = tmp_path / "out"
        await asyncio.wait_for(
            runner.download(share.info.info_hash, options("127.0.3.13"), out_dir=out, info=share.info,
                            trackers=[[opentracker.url("http")]], timeout=30),
            40,
        )  # fmt: skip
        assert_same_files(share, out)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_wired_download_of_one_file_from_libtorrent(
    opentracker: OpenTracker, make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Path
) -> None:
    """One file chosen from a libtorrent seed found over UDP arrives whole; its neighbour never appears."""
    share = make_share(SPEC, piece_length=16384)  # one.bin ends inside a piece that two.bin starts
    await opentracker.allow(share.info.info_hash)
    ses, _ = lt_sessions("127.0.3.14")
    ti = lt.torrent_info(lt.bdecode(share.torrent))
    ti.add_tracker(opentracker.url("udp"), 0)
    lt_seed(ses, ti, save_path_of(share.paths, share.info.file_paths()))
    await seeders_seen(opentracker, share.info.info_hash, 1)
    out = tmp_path / "out"
    result = await asyncio.wait_for(
        runner.download(
            share.info.info_hash,
            options("127.0.3.15"),
            out_dir=out,
            trackers=[[opentracker.url("udp")]],
            select=FileSelection.parse(["two.bin"]),
            timeout=30,
        ),
        40,
    )
    one, two = (out.joinpath(*parts) for parts in share.info.file_paths())
    assert two.read_bytes() == share.paths[1].read_bytes()
    assert not one.exists()
    assert result.total_size == share.paths[1].stat().st_size
