"""High-level orchestration for the command line: download and seed (the demo is in :mod:`.demo`).

The CLI stays a thin shell: it parses options, builds a :class:`SwarmOptions`, and
calls :func:`download`, :func:`seed` or :func:`~p2pshare.engine.demo.demo`; it renders the events they
emit and the :class:`Swarm` status snapshots it polls.  Everything here is policy
about *when*: which session to build, whether to start the DHT, where peers come
from, how long to wait, and which error a timeout means.  It never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.core.metainfo import Info
from p2pshare.core.selection import FileSelection
from p2pshare.core.types import InfoHash, InfoHashV2, PeerAddress
from p2pshare.engine import events as ev
from p2pshare.engine.checking import CheckResult
from p2pshare.engine.create import CreatedTorrent
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.preflight import (
    CheckListener,
    check_existing,
    check_port,
    check_writable,
    raise_for_stall,
)
from p2pshare.engine.reach_events import ReachabilityNote
from p2pshare.engine.reachability import start_reachability
from p2pshare.engine.session import Session
from p2pshare.engine.state import SharedManifest, StateDir
from p2pshare.engine.streamer import StreamRequest, stream_file
from p2pshare.engine.torrent import Torrent
from p2pshare.engine.tracker_room import TorrentTrackers, bind_host
from p2pshare.errors import (
    NoMetadataError,
    NoPeersError,
    PortInUseError,
    UsageError,
)

__all__ = [
    "CheckListener",
    "DemoStep",
    "DhtReady",
    "DownloadResult",
    "StreamRequest",
    "Ready",
    "RunnerEvent",
    "Swarm",
    "SwarmOptions",
    "check_existing",
    "check_port",
    "check_writable",
    "download",
    "fetch_manifest",
    "open_swarm",
    "seed",
    "seed_params",
]

log = logging.getLogger("p2pshare.runner")

# ---------------------------------------------------------------------- events the runner adds


# DhtReady, Ready and DemoStep live in engine/events.py (the CLI imports them without
# loading the swarm engine); they are re-exported here.
DhtReady = ev.DhtReady
Ready = ev.Ready
DemoStep = ev.DemoStep

RunnerEvent = ev.EngineEvent | DhtReady | Ready | DemoStep | ReachabilityNote
EventSink = Callable[[RunnerEvent], None]


def _ignore(_: RunnerEvent) -> None:
    return None


# ---------------------------------------------------------------------- options and results


@dataclass(frozen=True)
class SwarmOptions:
    """How to build the session around one torrent."""

    config: Config = DEFAULT_CONFIG
    host: str = "0.0.0.0"
    port: int = 0
    bootstrap: Sequence[tuple[str, int]] | None = None  #: None: no DHT at all
    dht_port: int | None = None  #: None: the TCP port number when one was given, else any
    state: StateDir | None = None
    dht_state: bool = True  #: keep the DHT node id and good nodes in the state dir
    port_mapping: bool = False  #: map our ports on the router (UPnP IGD, NAT-PMP/PCP); the CLI turns it on
    lsd: bool = False  #: BEP 14 Local Service Discovery; the CLI turns it on
    mapping_wait: float = 0.0  #: wait this long for the mapping before Ready (share: its magnet has x.pe)


@dataclass(frozen=True)
class DownloadResult:
    """What a finished download reports in its summary."""

    info_hash: str
    name: str
    total_size: int
    num_pieces: int
    elapsed: float
    downloaded: int
    uploaded: int
    peers_used: int
    pieces_failed: int
    wasted: int
    out_dir: Path
    contributions: dict[str, int] = field(default_factory=dict)  #: peer IP -> payload bytes from it
    had_pieces: int = 0  #: pieces already on disk (verified) when the download started
    had_bytes: int = 0
    resumed: bool = False  #: an earlier run's resume state was used
    transfer_time: float = 0.0  #: seconds from the start of the download phase to the last piece

    @property
    def fetched(self) -> int:
        """Bytes this run verified (the whole size less what was already here)."""
        return max(self.total_size - self.had_bytes, 0)

    @property
    def rate(self) -> float:
        """The average over the transfer itself: what the live rate showed, not the checking."""
        return self.fetched / self.transfer_time if self.transfer_time > 0 else 0.0

    @property
    def path(self) -> Path:
        return self.out_dir / self.name


# ---------------------------------------------------------------------- the swarm of one torrent


class Swarm:
    """A session with one torrent (and maybe a DHT node): what a command runs."""

    def __init__(self, session: Session, torrent: Torrent, options: SwarmOptions) -> None:
        self.session = session
        self.torrent = torrent
        self.options = options
        self.started = time.monotonic()
        self.ever_connected = 0
        self.transfer_started: float | None = None  #: when the download phase began
        self.transfer_ended: float | None = None
        self.had_pieces = 0
        self.had_bytes = 0
        self.resumed = False
        self._lookups_done = 0
        self._lookups_running = 0
        self._dht_peers = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.trackers = TorrentTrackers(
            torrent,
            torrent.params.trackers,
            options.config,
            port=session.port,
            local_host=bind_host(options.host),
        )

    @property
    def info_hash(self) -> InfoHash:
        return self.torrent.info_hash

    @property
    def port(self) -> int:
        return self.session.port

    @property
    def dht_port(self) -> int | None:
        return self.session.dht.port if self.session.dht is not None else None

    def status(self) -> ev.TorrentStatus:
        return self.torrent.status()

    def reach_summary(self) -> str | None:
        """One line on port mapping and LSD for the live view (None when both are off)."""
        return self.session.reach.summary() if self.session.reach is not None else None

    def contributions(self) -> dict[str, int]:
        """Payload bytes received per peer IP, over every connection so far."""
        return {host: down for host, (down, _) in self.torrent.transfer_by_host().items() if down}

    def add_peers(self, addresses: Sequence[PeerAddress], source: str) -> int:
        return self.torrent.add_peers(list(addresses), source)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed: %r", task.get_name(), task.exception())

    def find_peers(self) -> None:
        """Look the hash up on the DHT now and again while the download runs (no-op without DHT)."""
        if self.session.dht is not None:
            self._spawn(self._find_peers_forever(), "dht-find-peers")

    async def _find_peers_forever(self) -> None:
        """The session's search loop, counted: lookups done and peers found show in ``dht_search``."""
        dht, t = self.session.dht, self.torrent
        assert dht is not None
        cfg = self.options.config.engine
        pause = cfg.dht_search_pause
        while not t.closed and not t.completed.is_set():
            self._lookups_running += 1
            found = 0
            try:
                async for addr in dht.get_peers(t.info_hash, timeout=cfg.dht_search_first_timeout):
                    found += t.add_peers([addr], "dht")
            finally:
                self._lookups_running -= 1
                self._lookups_done += 1
                self._dht_peers += found
            log.info("DHT lookup for %s: %d new peers", t.info_hash.hex[:8], found)
            await asyncio.sleep(pause)
            pause = min(pause * 2, cfg.dht_search_max_pause)

    def dht_search(self) -> ev.DhtSearch | None:
        """How the DHT search goes (None without a DHT node)."""
        dht = self.session.dht
        if dht is None:
            return None
        try:
            nodes = int(dht.status().get("nodes", 0))
        except Exception:  # a status view must never stop the run
            nodes = 0
        return ev.DhtSearch(nodes, self._lookups_done, self._lookups_running, self._dht_peers)

    def stream(self, request: StreamRequest) -> asyncio.Task[int]:
        """Start writing one file to ``request``'s sink as its pieces are verified; cancelled at close."""
        task = asyncio.get_running_loop().create_task(
            stream_file(self.torrent, request, self.options.config.stream), name="stream"
        )
        self._tasks.add(task)  # cancelled with the other helpers
        task.add_done_callback(self._tasks.discard)
        return task

    def announce(self) -> None:
        """Announce on the DHT now and every 15 minutes (no-op without DHT)."""
        self.session.announce(self.torrent)

    def _progress_key(self) -> tuple[int, bool]:
        """What counts as "something new arrived": payload bytes, or the manifest."""
        return self.torrent.downloaded, self.torrent.info is not None

    async def wait_complete(self, timeout: float | None, max_time: float | None = None) -> None:
        """Return once every piece is verified; raise the error a stall, the cap or a failure means.

        ``timeout`` (``--timeout``) gives up when nothing new arrived for that many seconds,
        as aria2's ``--bt-stop-timeout`` does; ``max_time`` (``--max-time``) caps the whole wait.
        """
        t = self.torrent
        loop = asyncio.get_running_loop()
        poll = self.options.config.terminal.stall_poll
        begun = last_new = loop.time()
        key = self._progress_key()
        waits = [
            asyncio.ensure_future(t.completed.wait()),
            asyncio.ensure_future(t.fatal_event.wait()),
        ]
        reason = ""
        try:
            while True:
                _, pending = await asyncio.wait(waits, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
                if len(pending) < len(waits):
                    break
                now = loop.time()
                if (k := self._progress_key()) != key:
                    key, last_new = k, now
                if timeout is not None and now - last_new >= timeout:
                    reason = f"nothing new arrived for {timeout:g} s"
                    break
                if max_time is not None and now - begun >= max_time:
                    reason = f"after {max_time:g} s (--max-time)"
                    break
        finally:
            for w in waits:
                w.cancel()
        if t.fatal is not None:
            raise t.fatal
        if t.completed.is_set():
            return
        st = t.status()
        raise_for_stall(st, self.ever_connected, t.info is not None, reason)

    async def serve_forever(self) -> None:
        """Seed until cancelled; raise if the storage fails."""
        await self.torrent.fatal_event.wait()
        if self.torrent.fatal is not None:
            raise self.torrent.fatal

    def note_phase(self, phase: ev.Phase) -> None:
        """Time the transfer: from the download phase to the last piece."""
        now = time.monotonic()
        if phase is ev.Phase.DOWNLOADING and self.transfer_started is None:
            self.transfer_started = now
            st = self.status()
            self.had_pieces = max(self.had_pieces, st.have_pieces)
            self.had_bytes = max(self.had_bytes, st.verified_bytes)
        elif phase is ev.Phase.SEEDING and self.transfer_ended is None:
            self.transfer_ended = now

    def result(self, out_dir: Path) -> DownloadResult:
        st = self.status()
        contributions = self.contributions()
        end = self.transfer_ended or time.monotonic()
        transfer = end - self.transfer_started if self.transfer_started is not None else 0.0
        return DownloadResult(
            info_hash=st.info_hash,
            name=st.name or "",
            total_size=st.total_size,
            num_pieces=st.num_pieces,
            elapsed=time.monotonic() - self.started,
            downloaded=st.downloaded,
            uploaded=st.uploaded,
            peers_used=len(contributions),
            pieces_failed=st.pieces_failed,
            wasted=st.wasted,
            out_dir=out_dir,
            contributions=contributions,
            had_pieces=self.had_pieces,
            had_bytes=self.had_bytes,
            resumed=self.resumed,
            transfer_time=transfer,
        )

    async def close(self) -> None:
        await self.trackers.close()  # 'stopped' while the listener still runs
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.options.config.engine.task_close_timeout)
        await self.session.close()


@contextlib.asynccontextmanager
async def open_swarm(
    params: TorrentParams, options: SwarmOptions, *, on_event: EventSink = _ignore
) -> AsyncIterator[Swarm]:
    """Start a session (TCP listener, maybe a DHT node), add the torrent; close it all on exit."""
    session = Session(
        options.config,
        listen_host=options.host,
        listen_port=options.port,
        state_dir=None,
    )
    swarm: Swarm | None = None
    dht_lock = False
    try:
        await session.start()
        if options.bootstrap is not None:
            if options.state is not None and options.dht_state:
                session.state_dir = options.state.claim_dht_state()
                dht_lock = session.state_dir is not None
            dht_port = options.dht_port
            if dht_port is None:
                dht_port = options.port
            try:
                await session.start_dht(bootstrap=options.bootstrap, host=options.host, port=dht_port)
            except (OSError, PortInUseError):
                if not dht_port or options.dht_port is not None:
                    raise  # the user asked for this UDP port: say it is taken
                log.warning("UDP port %d is taken; the DHT node uses any free port", dht_port)
                await session.start_dht(bootstrap=options.bootstrap, host=options.host, port=0)
            assert session.dht is not None
            on_event(DhtReady(options.host, session.dht.port))

        holder: list[Swarm] = []

        def sink(event: ev.EngineEvent) -> None:
            if isinstance(event, ev.PeerConnected) and holder:
                holder[0].ever_connected += 1
            if isinstance(event, ev.PhaseChanged) and holder:
                holder[0].note_phase(event.phase)
            if isinstance(event, ev.Listening):
                return  # replaced by Ready, which says more
            on_event(event)

        torrent = await session.add_torrent(params, on_event=sink)
        swarm = Swarm(session, torrent, options)
        holder.append(swarm)
        if torrent.phase in (ev.Phase.DOWNLOADING, ev.Phase.SEEDING):
            swarm.note_phase(ev.Phase.DOWNLOADING)
            if torrent.phase is ev.Phase.SEEDING:
                swarm.note_phase(ev.Phase.SEEDING)
        swarm.ever_connected = len(torrent.peers)
        swarm.trackers.start()  # beside the DHT, never instead of it
        public = await start_reachability(session, options, on_event)
        on_event(Ready(params.info_hash.hex, options.host, session.port, swarm.dht_port, public))
        yield swarm
    finally:
        if swarm is not None:
            await asyncio.shield(swarm.close())
        else:
            await asyncio.shield(session.close())
        if dht_lock and options.state is not None:
            options.state.release()


# ---------------------------------------------------------------------- download and seed


def seed_params(created: CreatedTorrent) -> TorrentParams:
    """Parameters that serve ``created``'s files where they are, trusted (they were just hashed)."""
    return TorrentParams(
        created.info.info_hash,
        info=created.info,
        download_dir=created.selection.root,
        file_paths=created.paths,
        assume_complete=True,
        trackers=tuple((url,) for url in created.trackers),
        piece_layers=created.piece_layers or None,
    )


async def download(
    info_hash: InfoHash,
    options: SwarmOptions,
    *,
    out_dir: Path,
    info: Info | None = None,
    peers: Sequence[PeerAddress] = (),
    magnet_peers: Sequence[PeerAddress] = (),
    timeout: float | None = None,
    max_time: float | None = None,
    seed: bool = False,
    on_event: EventSink = _ignore,
    on_swarm: Callable[[Swarm], None] | None = None,
    on_complete: Callable[[DownloadResult], None] | None = None,
    on_check: CheckListener | None = None,
    trackers: Sequence[Sequence[str]] = (),
    select: FileSelection | None = None,
    sequential: bool = False,
    stream: StreamRequest | None = None,
    info_hash_v2: InfoHashV2 | None = None,
    piece_layers: Mapping[bytes, bytes] | None = None,
) -> DownloadResult:
    """Fetch ``info_hash`` (its manifest too, when ``info`` is None) into ``out_dir``.

    Peers come from ``peers``, ``magnet_peers``, the DHT (when ``options.bootstrap``
    is set) and the ``trackers`` tiers (unless ``config.tracker.enabled`` is off).  With
    a v1 ``info`` and the whole torrent wanted, the files already in ``out_dir`` are
    checked first (told to ``on_check``): complete files need no peers at all, and with
    ``seed`` are served at once.  Only the files ``select`` chooses are downloaded;
    ``sequential`` fetches in file order; ``stream`` writes one chosen file, in order
    and verified, to its sink as it arrives.  Returns when every chosen piece is
    verified; with ``seed``, calls ``on_complete`` and then keeps serving until
    cancelled.  Raises NoPeersError, NoMetadataError or IncompleteError when nothing
    new arrived for ``timeout`` seconds or ``max_time`` passed, and the storage error
    (disk full, not writable) when writing fails.
    """
    use_trackers = bool(trackers) and options.config.tracker.enabled
    no_peers = (
        options.bootstrap is None and not peers and not magnet_peers and not use_trackers and not options.lsd
    )
    precheck = info is not None and info.has_v1 and select is None and stream is None
    if no_peers and not precheck:
        raise UsageError(
            "no way to find peers: give --peer HOST:PORT, or leave the DHT, the trackers or LSD on "
            "(drop --no-dht / --no-trackers / --no-lsd)"
        )
    check_port(options.host, options.port)
    out_dir = check_writable(out_dir)
    checked: CheckResult | None = None
    if precheck:
        assert info is not None
        on_event(ev.PhaseChanged(ev.Phase.CHECKING))
        checked = await check_existing(info, out_dir, options, on_check)
        if no_peers and not checked.complete:
            raise UsageError(
                f"{checked.have_pieces}/{info.num_pieces} pieces are in {out_dir} and there is no way to "
                "find peers for the rest: give --peer HOST:PORT, or leave the DHT on (drop --no-dht)"
            )
    resume = options.state.resume_path(info_hash.hex, out_dir) if options.state is not None else None
    if checked is None or not checked.complete:
        on_event(ev.PhaseChanged(ev.Phase.FINDING_PEERS))
    params = TorrentParams(
        info_hash,
        info=info,
        download_dir=out_dir,
        resume_path=resume,
        assume_complete=checked is not None and checked.complete,
        trackers=tuple(tuple(tier) for tier in trackers),
        select=select,
        sequential=sequential or stream is not None,
        info_hash_v2=info_hash_v2,  # a btmh magnet: the manifest is checked by SHA-256
        piece_layers=piece_layers,  # a v2 .torrent's layers (else fetched from peers)
    )
    async with open_swarm(params, options, on_event=on_event) as swarm:
        if checked is not None:
            swarm.had_pieces, swarm.had_bytes, swarm.resumed = (
                checked.have_pieces,
                checked.have_bytes,
                checked.resumed,
            )
        if on_swarm is not None:
            on_swarm(swarm)
        if peers:
            swarm.add_peers(peers, "cli")
        if magnet_peers:
            swarm.add_peers(magnet_peers, "magnet")
        if not swarm.torrent.completed.is_set():
            swarm.find_peers()
        if seed:
            swarm.announce()
        if stream is None:
            await swarm.wait_complete(timeout, max_time)
        else:
            await _complete_and_stream(swarm, swarm.stream(stream), timeout, max_time)
        result = swarm.result(out_dir)
        if on_complete is not None:
            on_complete(result)
        if seed:
            await swarm.serve_forever()
        return result


async def _complete_and_stream(
    swarm: Swarm, streaming: asyncio.Task[int], timeout: float | None, max_time: float | None = None
) -> None:
    """Wait for the download and the stream together; the first failure of either ends both."""
    waiting = asyncio.ensure_future(swarm.wait_complete(timeout, max_time))
    try:
        done, _ = await asyncio.wait({waiting, streaming}, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        await waiting
        await streaming  # the last pieces are verified: the rest of the file goes out now
    finally:
        for task in (waiting, streaming):
            task.cancel()


async def fetch_manifest(
    info_hash: InfoHash,
    options: SwarmOptions,
    *,
    peers: Sequence[PeerAddress] = (),
    trackers: Sequence[Sequence[str]] = (),
    timeout: float | None = None,
    on_event: EventSink = _ignore,
) -> Info:
    """Only the manifest of ``info_hash`` (BEP 9), for ``get --list``: no file is written.

    Raises NoPeersError or NoMetadataError when ``timeout`` passes first.
    """
    with tempfile.TemporaryDirectory(prefix="p2pshare-list-") as scratch:
        params = TorrentParams(
            info_hash,
            download_dir=Path(scratch),
            trackers=tuple(tuple(tier) for tier in trackers),
            select=FileSelection(),  # nothing chosen: nothing is downloaded or created
        )
        async with open_swarm(params, options, on_event=on_event) as swarm:
            if peers:
                swarm.add_peers(peers, "cli")
            swarm.find_peers()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await swarm.torrent.metadata_ready.wait()
            if swarm.torrent.info is not None:
                return swarm.torrent.info
            if not swarm.ever_connected:
                raise NoPeersError(f"no peers found after {timeout:g} s; give --peer HOST:PORT or a tracker")
            raise NoMetadataError(f"no peer sent the manifest after {timeout:g} s; try again later")


async def seed(
    manifest: SharedManifest | CreatedTorrent,
    options: SwarmOptions,
    *,
    on_event: EventSink = _ignore,
    on_swarm: Callable[[Swarm], None] | None = None,
    peers: Sequence[PeerAddress] = (),
) -> None:
    """Serve the files of ``manifest`` (already verified by hashing) until cancelled."""
    created = manifest.created if isinstance(manifest, SharedManifest) else manifest
    async with open_swarm(seed_params(created), options, on_event=on_event) as swarm:
        if on_swarm is not None:
            on_swarm(swarm)
        if peers:
            swarm.add_peers(peers, "cli")
        swarm.announce()
        await swarm.serve_forever()
