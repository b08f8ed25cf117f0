"""The swarm of one torrent as the command line sees it: options, the running swarm, results.

:class:`SwarmOptions` says how to build the session around one torrent; :class:`Swarm` is
what :func:`p2pshare.engine.runner.open_swarm` hands out while it runs (status snapshots,
DHT searches, peers to add); :class:`DownloadResult` is what a finished download reports.
"""


from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.core.types import Addr, InfoHash, PeerAddress
from p2pshare.engine import events as ev
from p2pshare.engine.preflight import (
    raise_for_stall,
)
from p2pshare.engine.reach_events import ReachabilityNote
from p2pshare.engine.session import Session
from p2pshare.engine.state import StateDir
from p2pshare.engine.streamer import StreamRequest, stream_file
from p2pshare.engine.torrent import Torrent
from p2pshare.engine.tracker_room import TorrentTrackers, bind_host

__all__ = ["DownloadResult", "EventSink", "RunnerEvent", "Swarm", "SwarmOptions"]

log = logging.getLogger("p2pshare.runner")

RunnerEvent = ev.EngineEvent | ev.DhtReady | ev.Ready | ev.DemoStep | ReachabilityNote
EventSink = Callable[[RunnerEvent], None]


# ---------------------------------------------------------------------- options and results


@dataclass(frozen=True)
class SwarmOptions:
    """How to build the session around one torrent."""

    config: Config = DEFAULT_CONFIG
    host: str = "0.0.0.0"
    port: int = 0
    bootstrap: Sequence[Addr] | None = None  #: None: no DHT at all
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
