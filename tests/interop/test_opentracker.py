"""Trackers against Debian's opentracker on 127.0.0.1, over HTTP and UDP.

Facts about Debian's build: it answers only whitelisted info hashes (HTTP: "Requested
download is not authorized", UDP: an announce answer with nothing after its header).
It is started with ``-w`` naming the whitelist by absolute path (it chroots and then
works from /, so a relative name is not found), from its own world-readable working
directory (run as root it drops to an unprivileged user before reading the list),
without ``-d``/``-u``; after a hash is added it re-reads the list on SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from p2pshare.config import TrackerConfig
from p2pshare.core.metainfo import encode_torrent
from p2pshare.core.tracker import AnnounceEvent, AnnounceRequest, TrackerError
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.engine.create import CreatedTorrent
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.trackers import TrackerService, TrackerState, TransferTotals
from p2pshare.io.tracker_client import TrackerClient
from tests.engine.conftest import MakeSession, MakeShare, assert_same_files, seed, wait_complete, wait_until
from tests.helpers.tracker_servers import peer_id
from tests.interop.conftest import MakeLt
from tests.interop.ltpeer import lt_seed, save_path_of

lt = pytest.importorskip("libtorrent")  # without it the module skips (test_without_libtorrent.py)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        shutil.which("opentracker") is None, reason="opentracker not installed (scripts/install-tracker.sh)"
    ),
]

CFG = replace(TrackerConfig(), min_interval=0.2, retry_base=0.2, retry_max=1.0, udp_retry_base=1.0)
SPEC = {"d/one.bin": 200_003, "d/two.bin": 70_000}
#: Each opentracker gets its own address: libtorrent keeps UDP connection ids per tracker IP
#: across sessions, and a new opentracker on the same IP refused the next libtorrent's
#: announce (seen here as an empty failure message).
_TRACKER_HOSTS = itertools.cycle(range(100, 200))
ARIA2_TIMEOUT = 30.0  #: 270 kB from a loopback seed takes aria2 about 2 s


@dataclass
class OpenTracker:
    proc: subprocess.Popen[bytes]
    whitelist: Path
    host: str
    port: int

    def url(self, kind: str) -> str:
        return f"{kind}://{self.host}:{self.port}/announce"

    async def allow(self, info_hash: InfoHash) -> None:
        """Whitelist ``info_hash``, make opentracker re-read the list, and wait until it accepts it."""
        with self.whitelist.open("a") as f:
            f.write(info_hash.hex + "\n")
        self.proc.send_signal(signal.SIGHUP)
        client = TrackerClient(CFG)
        # opentracker accepts 'stopped' for any hash, so probe with 'started' and then leave.
        probe = AnnounceRequest(info_hash=info_hash, peer_id=peer_id(99), port=9, event=AnnounceEvent.STARTED)
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        await client.announce(self.url("http"), probe)
                        await client.announce(self.url("http"), replace(probe, event=AnnounceEvent.STOPPED))
                        return
                    except TrackerError:
                        await asyncio.sleep(0.05)
        finally:
            await client.aclose()


def same_files(share: CreatedTorrent, out: Path) -> bool:
    try:
        assert_same_files(share, out)
    except AssertionError:
        return False
    return True


def free_port(host: str) -> int:
    """A port free for both TCP and UDP on ``host``."""
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for opentracker")


@pytest.fixture
async def opentracker() -> AsyncIterator[OpenTracker]:
    """opentracker on 127.0.0.1 (TCP and UDP on one port), in its own folder with an empty whitelist.

    The folder is world-readable: run as root, opentracker drops to an unprivileged user
    before it reads the whitelist (pytest's tmp_path is private to root).
    """
    home = Path(tempfile.mkdtemp(prefix="p2pshare-opentracker-"))
    home.chmod(0o755)
    whitelist = home / "whitelist.txt"
    whitelist.write_text("")
    host = f"127.0.0.{next(_TRACKER_HOSTS)}"
    port = free_port(host)
    exe = shutil.which("opentracker")
    assert exe is not None
    log = (home / "log.txt").open("wb")
    proc = subprocess.Popen(
        [exe, "-i", host, "-p", str(port), "-P", str(port), "-w", str(whitelist)],
        cwd=home, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with asyncio.timeout(10):
            while True:
                assert proc.poll() is None, f"opentracker exited: {(home / 'log.txt').read_text()}"
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection(host, port)
                    writer.close()
                    break
                await asyncio.sleep(0.05)
        yield OpenTracker(proc, whitelist, host, port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def service(
    ih: InfoHash,
    url: str,
    host: str,
    port: int,
    got: list[PeerAddress],
    left: int = 0,
    pid: bytes | None = None,
) -> TrackerService:
    return TrackerService(
        ih, pid or peer_id(port), port, [[url]], lambda: TransferTotals(left=left), got.extend, CFG,
        client=TrackerClient(CFG, local_host=host),
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["http", "udp"])
async def test_second_service_gets_the_seeder_and_stopped_leaves_the_swarm(
    opentracker: OpenTracker, kind: str
) -> None:
    """Our seeder's address comes back to a second announcer; after close the tracker counts no seed."""
    ih = InfoHash(bytes(range(20)))
    await opentracker.allow(ih)
    url = opentracker.url(kind)
    seed_svc = service(ih, url, "127.0.0.2", 7001, [])
    got: list[PeerAddress] = []
    leech = service(ih, url, "127.0.0.3", 7002, got, left=1000)
    try:
        seed_svc.start()
        await wait_until(lambda: seed_svc.status()[0].state == TrackerState.WORKING, 10, "seed announced")
        leech.start()
        await wait_until(lambda: PeerAddress("127.0.0.2", 7001) in got, 10, "leecher got the seed")
        await seed_svc.close()
        stats = await leech.scrape()
        assert stats is not None and (stats.complete, stats.incomplete) == (0, 1)
    finally:
        await seed_svc.close()
        await leech.close()


async def test_unlisted_torrent_is_refused_over_both_protocols(opentracker: OpenTracker) -> None:
    """A hash opentracker does not list is a TrackerFailure over HTTP and over UDP."""
    client = TrackerClient(CFG)
    req = AnnounceRequest(info_hash=InfoHash(b"\x01" * 20), peer_id=peer_id(1), port=7001)
    for kind in ("http", "udp"):
        with pytest.raises(TrackerError, match=r"not authorized|does not serve"):
            await client.announce(opentracker.url(kind), req)
    await client.aclose()


@pytest.mark.parametrize("kind", ["http", "udp"])
async def test_libtorrent_downloads_from_a_p2pshare_seed_it_found_through_opentracker(
    opentracker: OpenTracker, make_share: MakeShare, sessions: MakeSession, lt_sessions: MakeLt,
    tmp_path: Path, kind: str,
) -> None:  # fmt: skip
    """libtorrent, told only the tracker, finds our announced seed and downloads every file from it."""
    share = make_share(SPEC, piece_length=16384)
    await opentracker.allow(share.info.info_hash)
    us = await sessions("127.0.0.4")
    t = await seed(us, share)
    svc = service(share.info.info_hash, opentracker.url(kind), "127.0.0.4", us.port, [], pid=us.peer_id)
    svc.start()
    try:
        await wait_until(lambda: svc.status()[0].state == TrackerState.WORKING, 10, "seed announced")
        ses, _ = lt_sessions("127.0.0.5")
        ti = lt.torrent_info(lt.bdecode(share.torrent))
        ti.add_tracker(opentracker.url(kind), 0)
        params = lt.add_torrent_params()
        params.ti, params.save_path = ti, str(tmp_path / "lt_out")
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        handle = ses.add_torrent(params)
        await wait_until(lambda: bool(handle.status().is_seeding), 30, "libtorrent to finish via the tracker")
        # Seeding means every piece passed libtorrent's hash check; its disk writes may lag a moment.
        await wait_until(lambda: same_files(share, tmp_path / "lt_out"), 10, "libtorrent's files on disk")
        assert t.uploaded >= share.info.total_length
    finally:
        await svc.close()


@pytest.mark.parametrize("kind", ["http", "udp"])
async def test_p2pshare_downloads_from_a_libtorrent_seed_it_found_through_opentracker(
    opentracker: OpenTracker, make_share: MakeShare, sessions: MakeSession, lt_sessions: MakeLt,
    tmp_path: Path, kind: str,
) -> None:  # fmt: skip
    """Our service finds libtorrent's seed via the tracker; the peers it hands on complete the download."""
    share = make_share(SPEC, piece_length=16384)
    await opentracker.allow(share.info.info_hash)
    ses, lt_port = lt_sessions("127.0.0.6")
    ti = lt.torrent_info(lt.bdecode(share.torrent))
    ti.add_tracker(opentracker.url(kind), 0)
    lt_seed(ses, ti, save_path_of(share.paths, share.info.file_paths()))
    us = await sessions("127.0.0.7")
    out = tmp_path / "out"
    t = await us.add_torrent(TorrentParams(share.info.info_hash, info=share.info, download_dir=out))
    got: list[PeerAddress] = []

    def on_peers(peers: list[PeerAddress]) -> None:
        got.extend(peers)
        t.add_peers([p.as_tuple() for p in peers], "tracker")

    svc = TrackerService(
        share.info.info_hash, us.peer_id, us.port, [[opentracker.url(kind)]],
        lambda: TransferTotals(left=share.info.total_length), on_peers, CFG,
        client=TrackerClient(CFG, local_host="127.0.0.7"),
    )  # fmt: skip
    svc.start()

    def found() -> bool:
        svc.announce_now()  # libtorrent may announce after us: ask again (min_interval bounds it)
        return PeerAddress("127.0.0.6", lt_port) in got

    try:
        try:
            await wait_until(found, 20, "libtorrent's seed via the tracker", interval=0.2)
        except AssertionError:
            print("libtorrent's alerts:", [a.message() for a in ses.pop_alerts()], "ours:", svc.status())
            raise
        await wait_complete(t, 30)
        assert_same_files(share, out)
    finally:
        await svc.close()


async def test_tiers_fail_over_to_opentracker_and_the_answering_tracker_leads_its_tier(
    opentracker: OpenTracker,
) -> None:
    """Dead trackers in the first tier fail over to opentracker in the second, over UDP or HTTP."""
    ih = InfoHash(b"\x42" * 20)
    await opentracker.allow(ih)
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp_sock:
        tcp.bind(("127.0.0.1", 0))
        udp_sock.bind(("127.0.0.1", 0))
        dead = [
            f"http://127.0.0.1:{tcp.getsockname()[1]}/announce",
            f"udp://127.0.0.1:{udp_sock.getsockname()[1]}",
        ]
    live = [opentracker.url("udp"), opentracker.url("http")]
    seed_svc = TrackerService(
        ih, peer_id(1), 7001, [[opentracker.url("http")]], lambda: TransferTotals(), lambda p: None, CFG,
        client=TrackerClient(CFG, local_host="127.0.0.2"),
    )  # fmt: skip
    got: list[PeerAddress] = []
    svc = TrackerService(
        ih, peer_id(2), 7002, [dead, live], lambda: TransferTotals(left=1), got.extend, CFG,
        client=TrackerClient(CFG, local_host="127.0.0.3"),
    )  # fmt: skip
    try:
        seed_svc.start()
        await wait_until(lambda: seed_svc.status()[0].state == TrackerState.WORKING, 10, "seed announced")
        svc.start()
        await wait_until(lambda: PeerAddress("127.0.0.2", 7001) in got, 10, "the seed via the second tier")
        states = {s.url: s.state for s in svc.status()}
        assert [states[u] for u in dead] == [TrackerState.FAILED, TrackerState.FAILED]
        working = svc.urls[2]
        assert working in live and states[working] == TrackerState.WORKING
        assert states[svc.urls[3]] == TrackerState.IDLE  # the other one of the tier was never needed
    finally:
        await seed_svc.close()
        await svc.close()


@pytest.mark.skipif(shutil.which("aria2c") is None, reason="aria2c not installed (apt-get install aria2)")
async def test_aria2_downloads_from_a_p2pshare_seed_it_found_through_opentracker(
    opentracker: OpenTracker, make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """aria2c, whose only peer source is the tracker in the .torrent, downloads everything from our seed."""
    # HTTP only: aria2 speaks UDP to trackers only through its DHT socket ("udp is not
    # supported yet" with the DHT off), and its DHT stays off here.
    kind = "http"
    share = make_share(SPEC, piece_length=16384)
    await opentracker.allow(share.info.info_hash)
    us = await sessions("127.0.0.8")
    t = await seed(us, share)
    svc = service(share.info.info_hash, opentracker.url(kind), "127.0.0.8", us.port, [], pid=us.peer_id)
    svc.start()
    torrent = tmp_path / "share.torrent"
    torrent.write_bytes(encode_torrent(share.info, announce=opentracker.url(kind)))
    out = tmp_path / "aria2_out"
    port = free_port("127.0.0.9")
    args = [
        "aria2c", "--no-conf=true", "--interface=127.0.0.9", f"--listen-port={port}", "--disable-ipv6=true",
        "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
        "--summary-interval=0", "--console-log-level=warn", "--file-allocation=none", "--seed-time=0",
        "--bt-stop-timeout=60", f"--dir={out}", f"--log={tmp_path / 'aria2.log'}", "--log-level=info",
        str(torrent),
    ]  # fmt: skip
    try:
        await wait_until(lambda: svc.status()[0].state == TrackerState.WORKING, 10, "seed announced")
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            async with asyncio.timeout(ARIA2_TIMEOUT):
                output, _ = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, output.decode(errors="replace")[-2000:]
        assert_same_files(share, out)
        assert t.uploaded >= share.info.total_length
    finally:
        await svc.close()
