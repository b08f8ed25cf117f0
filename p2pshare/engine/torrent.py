"""One torrent's swarm: peers, requests, verification, uploads, metadata, resume.

Theory of operation
-------------------
The protocol knowledge lives in sans-I/O objects: a
:class:`~p2pshare.core.wire.connection.PeerConnection` per peer (framing, state,
rule checks), one :class:`~p2pshare.core.picker.PiecePicker` (which block next),
one :class:`~p2pshare.core.choker.Choker` (who may download from us) and, for a
magnet, one :class:`~p2pshare.core.wire.metadata.MetadataFetcher`.  This class is
the policy and the glue:

* bytes from a :class:`~p2pshare.io.peer_link.PeerLink` go into the peer's
  connection; every event that comes out is handled synchronously, then requests
  are topped up *once per batch of bytes* (not per block), in one write;
* blocks are copied into a per-piece buffer; a complete piece is hashed and written
  in one trip to a worker thread (per piece, never per block), then announced with
  ``have``; a piece that fails its hash is fetched again and its senders get strikes;
* the memory of partial pieces is bounded by ``StorageConfig.max_pieces_in_flight_bytes``
  (the picker is told not to start new pieces while the budget is full);
* uploads are served from a small per-piece read cache, off the event loop, with
  the transport's flow control;
* one tick a second keeps time: rates, keep-alives, idle and snub timeouts,
  reconnects with back-off, metadata re-requests, re-choking, resume saves.

Any :class:`~p2pshare.errors.RemoteProtocolError` drops the peer with the reason
logged (and bans it when the error says so); it never escapes this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from p2pshare import __version__
from p2pshare.config import Config
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.choker import Choker, PeerStats
from p2pshare.core.geometry import BlockRef
from p2pshare.core.metainfo import Info, parse_info
from p2pshare.core.picker import PiecePicker, queue_depth
from p2pshare.core.types import InfoHash
from p2pshare.core.wire import connection as wc
from p2pshare.core.wire import messages as wm
from p2pshare.core.wire.extension import UT_METADATA, UT_METADATA_ID, ExtensionHandshake
from p2pshare.core.wire.metadata import (
    MetadataComplete,
    MetadataData,
    MetadataFetcher,
    MetadataHashMismatch,
    MetadataReject,
    MetadataRequest,
    metadata_response,
)
from p2pshare.engine import events as ev
from p2pshare.engine.peer import Peer
from p2pshare.engine.resume import load_resume, pieces_to_recheck, save_resume
from p2pshare.errors import MetainfoError, RemoteProtocolError, StorageError, UnsafeManifestError
from p2pshare.io.hasher import verify_files
from p2pshare.io.peer_link import PeerLink, open_link
from p2pshare.io.storage import FileStorage

__all__ = ["Torrent"]

log = logging.getLogger("p2pshare.torrent")


@dataclass(slots=True)
class _Known:
    """A peer address we may connect to, with its back-off."""

    attempts: int = 0
    next_try: float = 0.0
    connected: bool = False
    source: str = ""


def _compact_ip(host: str) -> bytes | None:
    """The peer's address as BEP 10 ``yourip`` wants it (4 or 16 bytes)."""
    try:
        return ipaddress.ip_address(host).packed
    except ValueError:
        return None


class Torrent:
    """The swarm of one info hash: download (or fetch metadata first), verify, seed."""

    def __init__(
        self,
        info_hash: InfoHash,
        *,
        info: Info | None,
        download_dir: Path,
        peer_id: bytes,
        config: Config,
        listen_port: Callable[[], int] = lambda: 0,
        bind_host: str | None = None,
        dht_port: Callable[[], int | None] = lambda: None,
        on_dht_node: Callable[[str, int], None] | None = None,
        file_paths: list[Path] | None = None,
        assume_complete: bool = False,
        resume_path: Path | None = None,
        on_event: Callable[[ev.EngineEvent], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.info_hash = info_hash
        self.info: Info | None = None
        self.download_dir = Path(download_dir)
        self.peer_id = peer_id
        self.config = config
        self._listen_port = listen_port
        self._bind_host = bind_host
        self._dht_port = dht_port
        self._on_dht_node = on_dht_node
        self._file_paths = file_paths
        self._assume_complete = assume_complete
        self._resume_path = resume_path
        self._on_event = on_event
        self._rng = rng or random.Random()
        self.phase = "starting"
        self.peers: dict[tuple[str, int], Peer] = {}
        self._known: dict[tuple[str, int], _Known] = {}
        self._banned: dict[str, None] = {}  # an ordered set: the oldest ban is forgotten first
        self._peer_ids: set[bytes] = set()
        #: bytes [down, up] of closed connections per IP (at most max_known_peers rows, then "other")
        self._host_totals: dict[str, list[int]] = {}
        self._half_open = 0
        self.picker: PiecePicker | None = None
        self.storage: FileStorage | None = None
        self._choker = Choker(config.choker, self._rng)
        self._next_rechoke = 0.0
        self._buffers: dict[int, bytearray] = {}
        #: Piece buffers to reuse: a fresh large bytearray costs page faults on first write.
        self._spare_buffers: list[bytearray] = []
        self._verifying: set[int] = set()
        self._pool = ThreadPoolExecutor(
            max_workers=config.storage.hash_workers, thread_name_prefix="p2pshare-io"
        )
        self._read_cache: OrderedDict[int, bytes] = OrderedDict()
        self._reads: dict[int, asyncio.Future[bytes | None]] = {}
        self._fetcher: MetadataFetcher | None = None
        self._metadata_contributors: set[tuple[str, int]] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._dirty: list[Peer] = []  # peers with queued bytes, flushed once per loop turn
        self._tick_task: asyncio.Task[None] | None = None
        self.completed = asyncio.Event()
        self.metadata_ready = asyncio.Event()
        self.closed = False
        self.downloaded = 0
        self.uploaded = 0
        self.wasted = 0
        self.pieces_failed = 0
        self._resume_dirty = False
        self._super_seeding = False
        self._reveal_order: list[int] = []
        self._reveal_cursor = 0
        self._last_resume_save = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fatal: BaseException | None = None
        self.fatal_event = asyncio.Event()
        if info is not None:
            if info.info_hash != info_hash:
                raise MetainfoError("the manifest does not match the info hash")
            self.info = info

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Check existing data (or trust a seed), then start the tick loop."""
        self._loop = asyncio.get_running_loop()
        if self.info is not None:
            await self._prepare(self.info)
        else:
            self._set_phase("fetching_metadata")
        self._tick_task = asyncio.create_task(self._tick_loop(), name=f"tick-{self.info_hash.hex[:8]}")

    async def close(self) -> None:
        """Close every peer, stop every task, flush files and save the resume state."""
        if self.closed:
            return
        self.closed = True
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        for peer in list(self.peers.values()):
            self._drop(peer, "shutting down")
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # Let pieces being hashed/written finish, so nothing is torn.
        await asyncio.get_running_loop().run_in_executor(None, self._pool.shutdown, True)
        self._save_resume(force=True)
        if self.storage is not None:
            self.storage.close()

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str) -> asyncio.Task[object]:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, StorageError):
                self._fail(exc)
            else:
                log.error("task %s failed: %r", task.get_name(), exc, exc_info=exc)

    def _fail(self, exc: BaseException) -> None:
        """A local failure the torrent cannot go on after (disk full, folder not writable)."""
        if self._fatal is None:
            self._fatal = exc
            log.error("torrent stopped: %s", exc)
            self.fatal_event.set()

    @property
    def fatal(self) -> BaseException | None:
        return self._fatal

    def _emit(self, event: ev.EngineEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a renderer bug must not stop the swarm
                log.exception("event handler failed")

    def _set_phase(self, phase: str) -> None:
        if phase != self.phase:
            self.phase = phase
            self._emit(ev.PhaseChanged(phase))

    # ------------------------------------------------------------------ data & resume

    async def _prepare(self, info: Info) -> None:
        """Open storage for ``info`` and find which pieces we already have."""
        geometry = info.geometry
        self.storage = FileStorage(
            info, self.download_dir, paths=self._file_paths, max_open_files=self.config.storage.max_open_files
        )
        if self._assume_complete:
            have = Bitfield(geometry.num_pieces, full=True)
        else:
            self._set_phase("checking")
            have = await asyncio.get_running_loop().run_in_executor(None, self._check_existing, info)
        self.picker = PiecePicker(geometry, have, self.config.picker, self._rng)
        if have.complete and self.config.swarm.super_seed and geometry.num_pieces > 1:
            self._super_seeding = True
            self._reveal_order = list(range(geometry.num_pieces))
            self._rng.shuffle(self._reveal_order)
        self.metadata_ready.set()
        if have.complete:
            await self._on_complete()
        else:
            self._set_phase("downloading")

    def _check_existing(self, info: Info) -> Bitfield:
        """Trust the resume file for unchanged files; hash pieces that touch changed ones."""
        assert self.storage is not None
        geometry = info.geometry
        current = self.storage.file_sizes_and_mtimes()
        saved = (
            load_resume(self._resume_path, info.info_hash.value, geometry.num_pieces)
            if self._resume_path
            else None
        )
        if saved is not None:
            trusted, recheck = pieces_to_recheck(geometry, saved[0], saved[1], current)
        else:
            trusted = Bitfield(geometry.num_pieces)
            recheck = {
                p for f, fp in enumerate(current) if fp is not None for p in geometry.pieces_for_file(f)
            }
        # Pieces that touch a missing file cannot be complete.
        missing = {p for f, fp in enumerate(current) if fp is None for p in geometry.pieces_for_file(f)}
        todo = sorted(recheck - missing - set(trusted))
        if todo:
            good = verify_files(
                self.storage.paths, geometry, info.pieces, todo, workers=self.config.storage.hash_workers
            )
            for p in good:
                trusted.add(p)
        for p in list(trusted):
            if p in missing:
                trusted.discard(p)
        log.info("resume: %d/%d pieces present (%d hashed)", len(trusted), geometry.num_pieces, len(todo))
        return trusted

    def _save_resume(self, force: bool = False) -> None:
        if self._resume_path is None or self.picker is None or self.storage is None:
            return
        if not (self._resume_dirty or force):
            return
        try:
            save_resume(
                self._resume_path,
                self.info_hash.value,
                self.picker.have,
                self.storage.file_sizes_and_mtimes(),
            )
            self._resume_dirty = False
        except OSError as exc:
            log.warning("could not save resume state to %s: %s", self._resume_path, exc)

    # ------------------------------------------------------------------ peers: connecting

    def add_peers(self, addresses: list[tuple[str, int]], source: str) -> int:
        """Remember addresses to connect to; return how many were new."""
        new = 0
        for addr in addresses:
            if addr in self._known or addr[0] in self._banned:
                continue
            if len(self._known) >= self.config.swarm.max_known_peers:
                break
            self._known[addr] = _Known(source=source)
            new += 1
        if new:
            self._emit(ev.PeersFound(new, source))
            self._connect_more()
        return new

    def _connect_more(self) -> None:
        if self.closed or self._loop is None:
            return
        now = self._loop.time()
        cfg = self.config.swarm
        for addr, known in self._known.items():
            if len(self.peers) + self._half_open >= cfg.max_peers or self._half_open >= cfg.max_half_open:
                break
            if known.connected or known.next_try > now or addr[0] in self._banned:
                continue
            if known.attempts > cfg.max_retries:
                continue
            known.connected = True
            known.attempts += 1
            self._half_open += 1
            self._spawn(self._connect(addr, known), f"connect-{addr[0]}:{addr[1]}")

    async def _connect(self, addr: tuple[str, int], known: _Known) -> None:
        try:
            link = await open_link(
                addr[0], addr[1], self.config.swarm.connect_timeout, local_host=self._bind_host
            )
        except (OSError, TimeoutError) as exc:
            self._half_open -= 1
            known.connected = False
            delay = min(self.config.swarm.retry_max, self.config.swarm.retry_base * 2 ** (known.attempts - 1))
            known.next_try = asyncio.get_running_loop().time() + delay
            log.debug("connect to %s:%d failed (%s); retry in %.0fs", addr[0], addr[1], exc, delay)
            return
        self._half_open -= 1
        if self.closed:
            link.close()
            return
        self.attach(link, outgoing=True, address=addr)

    def attach(self, link: PeerLink, *, outgoing: bool, address: tuple[str, int] | None = None) -> None:
        """Take over a connected link (outgoing, or incoming routed by its info hash)."""
        address = address or link.peername
        if self.closed or address[0] in self._banned or address in self.peers:
            link.close()
            return
        if len(self.peers) >= self.config.swarm.max_peers:
            link.close()
            return
        num_pieces = self.info.num_pieces if self.info is not None else None
        conn = wc.PeerConnection(
            self.info_hash.value,
            self.peer_id,
            initiator=outgoing,
            num_pieces=num_pieces,
            limits=self.config.wire,
            fast=True,
            extensions=True,
            dht=self._dht_port() is not None,
        )
        if self.info is not None:
            conn.set_geometry(self.info.geometry)
        now = self._now()
        peer = Peer(link, conn, address, outgoing, now)
        peer.on_pending = self._schedule_flush
        self.peers[address] = peer
        known = self._known.setdefault(address, _Known(source="incoming"))
        known.connected = True
        link.set_handlers(lambda data: self._on_data(peer, data), lambda exc: self._on_link_closed(peer, exc))
        if outgoing:
            link.write(conn.handshake_bytes())
            peer.last_send = now

    def _schedule_flush(self, peer: Peer) -> None:
        self._dirty.append(peer)
        if len(self._dirty) == 1 and self._loop is not None:
            self._loop.call_soon(self._flush_all)

    def _flush_all(self) -> None:
        dirty, self._dirty = self._dirty, []
        for peer in dirty:
            peer.flush()
            self._check_unsent(peer)

    def _check_unsent(self, peer: Peer) -> bool:
        """Drop a peer whose unread replies passed the outgoing cap; True when dropped."""
        cap = self.config.defence.max_outgoing_buffer
        unsent = peer.unsent
        if unsent > cap and not peer.closed:
            self._drop(peer, f"left {unsent} bytes of replies unread, past the outgoing cap of {cap}")
            return True
        return False

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    # ------------------------------------------------------------------ peers: dropping

    def _on_link_closed(self, peer: Peer, exc: Exception | None) -> None:
        self._drop(peer, "connection closed" if exc is None else f"connection lost: {exc}")

    def _drop(self, peer: Peer, reason: str, *, ban: bool = False) -> None:
        if peer.closed:
            return
        peer.closed = True
        peer.close_reason = reason
        peer.link.close()
        if self.peers.get(peer.address) is peer:
            del self.peers[peer.address]
        known = self._known.get(peer.address)
        if known is not None:
            known.connected = False
            if peer.outgoing and peer.handshake_done:
                known.attempts = 0  # it worked once: retry from the start of the back-off
            delay = min(
                self.config.swarm.retry_max, self.config.swarm.retry_base * 2 ** max(0, known.attempts)
            )
            known.next_try = self._now() + delay
        if not peer.outgoing:
            self._known.pop(peer.address, None)  # an ephemeral port: not worth redialling
        self._peer_ids.discard(peer.peer_id)
        if not peer.conn.am_choking:
            self._next_rechoke = 0.0  # an upload slot is free
        host = peer.address[0]
        if host not in self._host_totals and len(self._host_totals) >= self.config.swarm.max_known_peers:
            host = "other"  # a flood of addresses must not grow this without bound
        totals = self._host_totals.setdefault(host, [0, 0])
        totals[0] += peer.down.total
        totals[1] += peer.up.total
        if peer.upload_task is not None:
            peer.upload_task.cancel()
        peer.uploads.clear()
        if self.picker is not None and peer.in_picker:
            self.picker.remove_peer(peer)
            peer.in_picker = False
        if self._fetcher is not None:
            self._fetcher.forget_peer(peer.address)
        if ban:
            self._banned[peer.address[0]] = None
            if len(self._banned) > self.config.swarm.max_banned_ips:
                del self._banned[next(iter(self._banned))]
            log.warning("banned %s: %s", peer.label, reason)
            self._emit(ev.PeerBanned(peer.label, reason))
        else:
            log.info("dropped %s: %s", peer.label, reason)
        if peer.handshake_done:
            self._emit(ev.PeerDisconnected(peer.label, reason))
        if not self.closed and self._loop is not None:
            self._loop.call_soon(self._connect_more)

    # ------------------------------------------------------------------ receiving

    def _on_data(self, peer: Peer, data: memoryview) -> None:
        if peer.closed:
            return
        now = self._now()
        peer.last_recv = now
        conn = peer.conn
        try:
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if event is None:
                    break
                handler = self._handlers.get(type(event))
                if handler is not None:
                    handler(self, peer, event, now)
                if peer.closed or self._check_unsent(peer):
                    return
            self._request_more(peer, now)
        except RemoteProtocolError as exc:
            self._drop(peer, f"protocol error: {exc}", ban=exc.ban)
        except StorageError as exc:
            self._fail(exc)

    def _on_handshake(self, peer: Peer, event: wc.HandshakeReceived, now: float) -> None:
        if event.peer_id == self.peer_id:
            self._drop(peer, "connected to ourselves")
            self._known.pop(peer.address, None)
            return
        if event.peer_id in self._peer_ids:
            other = next(
                (p for p in self.peers.values() if p is not peer and p.peer_id == event.peer_id), None
            )
            # Two peers that dial each other at once see the same two connections: both keep the
            # one opened by the lower peer id, so they do not each drop a different one.
            keep_new = (
                other is not None
                and other.outgoing != peer.outgoing
                and peer.outgoing == (self.peer_id < event.peer_id)
            )
            loser = other if keep_new and other is not None else peer
            self._drop(loser, "already connected to this peer")
            known = self._known.get(loser.address)
            if known is not None:  # do not redial a peer we are connected to anyway
                known.next_try = now + self.config.swarm.retry_max
            if loser is peer:
                return
        peer.peer_id = event.peer_id
        self._peer_ids.add(event.peer_id)
        peer.handshake_done = True
        peer.client = wm.client_name(event.peer_id)
        out: list[bytes] = []
        if not peer.outgoing:
            out.append(peer.conn.handshake_bytes())
        conn = peer.conn
        if conn.extensions_enabled:
            out.append(
                conn.send(
                    ExtensionHandshake(
                        m={UT_METADATA: UT_METADATA_ID},
                        v=f"p2pshare {__version__}",
                        p=self._listen_port() or None,
                        reqq=self.config.wire.max_incoming_requests,
                        metadata_size=len(self.info.raw) if self.info is not None else None,
                        yourip=_compact_ip(peer.address[0]),
                    )
                )
            )
        dht_port = self._dht_port()
        if dht_port and conn.peer_supports_dht:
            out.append(conn.send(wm.Port(dht_port)))
        out.append(self._have_message_bytes(peer))
        peer.write(b"".join(out))
        peer.last_send = now
        self._emit(ev.PeerConnected(peer.label, peer.client))

    def _have_message_bytes(self, peer: Peer) -> bytes:
        """Our bitfield / have-all / have-none (nothing while we lack the metadata and fast is off)."""
        have = self.picker.have if self.picker is not None else None
        if self._super_seeding and have is not None:
            have = Bitfield(have.length)  # pieces are revealed one by one (_reveal)
        msg = peer.conn.initial_have_message(have)
        return peer.conn.send(msg) if msg is not None else b""

    def _reveal(self, peer: Peer, now: float) -> None:
        """Super-seeding: announce pieces to ``peer`` until its window of revealed pieces is full.

        Pieces are taken in one shuffled order shared by all peers, from a shared cursor, so
        different peers are told about different pieces first; each peer must then get the
        others' pieces from the leechers that have them.  A peer's window is refilled when it
        announces a revealed piece (whoever it got it from).
        """
        if not self._super_seeding or peer.closed or not peer.handshake_done:
            return
        has = peer.conn.peer_has
        told = peer.conn.we_have
        if has is None or told is None or self.info is None:
            return
        window = max(2, self.config.swarm.super_seed_window // self.info.piece_length)
        need = window - len(peer.revealed)
        if need <= 0:
            return
        order = self._reveal_order
        n = len(order)
        start = self._reveal_cursor
        msgs: list[wm.Message] = []
        for step in range(n):
            index = order[(start + step) % n]
            if index in has or index in told:
                continue
            msgs.append(wm.Have(index))
            peer.revealed.add(index)
            if len(msgs) >= need:
                self._reveal_cursor = (start + step + 1) % n
                break
        peer.send_many(msgs, now)

    def _on_extension_handshake(self, peer: Peer, event: wc.ExtensionHandshakeReceived, now: float) -> None:
        hs = event.handshake
        if hs.v:
            peer.client = hs.v[: self.config.wire.max_client_name]
        peer.reqq = hs.reqq
        peer.metadata_ext_id = hs.ext_id(UT_METADATA) or 0
        if self.info is None and peer.metadata_ext_id and hs.metadata_size:
            if self._fetcher is None:
                try:
                    self._fetcher = MetadataFetcher(
                        self.info_hash.value,
                        hs.metadata_size,
                        self.config.metainfo.max_metadata_size,
                        request_timeout=self.config.swarm.metadata_request_timeout,
                    )
                except RemoteProtocolError as exc:
                    self._drop(peer, f"metadata: {exc}")
                    return
            self._request_metadata(peer, now)

    def _peer_bitfield_changed(self, peer: Peer) -> None:
        """Register the peer's pieces with the picker (once the metadata is known)."""
        if self.picker is None or peer.conn.peer_has is None:
            return
        if not peer.in_picker:
            self.picker.add_peer(peer, peer.conn.peer_has)
            peer.in_picker = True
        self._update_interest(peer)
        if self.picker.complete and peer.conn.peer_has.complete:
            self._drop(peer, "both sides are seeds")

    def _on_bitfield(self, peer: Peer, event: object, now: float) -> None:
        self._peer_bitfield_changed(peer)
        self._reveal(peer, now)

    def _on_have(self, peer: Peer, event: wm.Have, now: float) -> None:
        if self.picker is None:
            return
        if peer.revealed:
            peer.revealed.discard(event.index)
            self._reveal(peer, now)
        if not peer.in_picker:
            self._peer_bitfield_changed(peer)
        else:
            self.picker.peer_has(peer, event.index)
            if not peer.conn.am_interested and event.index not in self.picker.have:
                self._update_interest(peer)
            if self.picker.complete and peer.conn.peer_has is not None and peer.conn.peer_has.complete:
                self._drop(peer, "both sides are seeds")

    def _update_interest(self, peer: Peer) -> None:
        if self.picker is None or peer.closed:
            return
        interested = self.picker.interesting_count(peer) > 0
        if interested != peer.conn.am_interested:
            peer.send(wm.Interested() if interested else wm.NotInterested(), self._now())

    def _on_requests_dropped(self, peer: Peer, event: wc.RequestsDropped, now: float) -> None:
        """A non-fast peer choked us: its answers to our requests will not come."""
        if self.picker is not None and peer.in_picker:
            for index, begin, length in event.blocks:
                self.picker.abort_request(peer, BlockRef(index, begin, length))

    def _on_unchoke(self, peer: Peer, event: wm.Unchoke, now: float) -> None:
        peer.last_block = now  # the snub clock starts now

    def _on_reject(self, peer: Peer, event: wm.RejectRequest, now: float) -> None:
        if self.picker is not None and peer.in_picker:
            self.picker.abort_request(peer, BlockRef(event.index, event.begin, event.length))

    def _on_interested(self, peer: Peer, event: object, now: float) -> None:
        # Fill a free upload slot at once instead of waiting for the next rechoke.
        if self._unchoked_count() < self.config.choker.regular_slots + 1:
            self._next_rechoke = 0.0
            self._rechoke(now)

    def _on_not_interested(self, peer: Peer, event: object, now: float) -> None:
        if not peer.conn.am_choking:
            self._next_rechoke = 0.0  # its slot is free: give it to someone else at the next tick

    def _on_port(self, peer: Peer, event: wm.Port, now: float) -> None:
        # One per connection: each one makes our DHT node ping that address, so a peer
        # repeating it could make us probe every port of its host.
        if peer.dht_port is not None or not event.port:
            return
        peer.dht_port = event.port
        if self._on_dht_node is not None:
            self._on_dht_node(peer.address[0], event.port)

    def _on_piece(self, peer: Peer, event: wm.Piece, now: float) -> None:
        n = len(event.data)
        self.downloaded += n
        peer.down.add(n)
        peer.last_block = now
        peer.snubbed = False
        picker = self.picker
        if picker is None or not peer.in_picker:
            self.wasted += n
            return
        block = BlockRef(event.index, event.begin, n)
        result = picker.block_received(peer, block)
        if result.duplicate:
            self.wasted += n
            return
        buf = self._buffers.get(event.index)
        if buf is None:
            assert self.info is not None
            # Every buffer is piece_length long (the short last piece uses a prefix), so they can
            # be reused; stale bytes are harmless: a piece completes only when every block arrived.
            spare = self._spare_buffers
            buf = self._buffers[event.index] = spare.pop() if spare else bytearray(self.info.piece_length)
        buf[event.begin : event.begin + n] = event.data
        for other in result.cancel:
            assert isinstance(other, Peer)
            if not other.closed:
                other.send(wm.Cancel(event.index, event.begin, n), now)
        if result.piece_complete:
            self._verifying.add(event.index)
            self._spawn(self._verify(event.index), f"verify-{event.index}")

    def _on_unwanted_piece(self, peer: Peer, event: wc.UnwantedPiece, now: float) -> None:
        self.downloaded += len(event.data)
        self.wasted += len(event.data)
        peer.down.add(len(event.data))

    def _on_request_denied(self, peer: Peer, event: wc.RequestDenied, now: float) -> None:
        log.debug("%s: request %s denied: %s", peer.label, event.block, event.reason)
        if event.reject:
            peer.send(wm.RejectRequest(event.index, event.begin, event.length), now)

    def _on_peer_closed(self, peer: Peer, event: wc.PeerClosed, now: float) -> None:
        self._drop(peer, "the peer closed the connection")

    def _on_request(self, peer: Peer, event: wm.Request, now: float) -> None:
        # The connection checked range, choke state, our advertised pieces and the queue cap.
        peer.uploads.append(event)
        if peer.upload_task is None:
            peer.upload_task = self._spawn(self._serve(peer), f"serve-{peer.label}")

    def _on_cancel(self, peer: Peer, event: wm.Cancel, now: float) -> None:
        req = wm.Request(event.index, event.begin, event.length)
        try:
            peer.uploads.remove(req)
        except ValueError:
            return  # already sent (or being sent): the piece is its answer
        if peer.conn.fast_enabled:
            # BEP 6: every request gets exactly one answer, even a cancelled one; we will not
            # send the piece now, so the answer is a reject.
            peer.send(wm.RejectRequest(event.index, event.begin, event.length), now)

    def _on_metadata_request(self, peer: Peer, event: MetadataRequest, now: float) -> None:
        """Serve our manifest (BEP 9), or reject while we do not have it."""
        if peer.metadata_ext_id:
            peer.send(metadata_response(self.info.raw if self.info is not None else None, event.piece), now)

    def _on_metadata_reject(self, peer: Peer, event: MetadataReject, now: float) -> None:
        if self._fetcher is not None:
            self._fetcher.on_reject(peer.address, event.piece)
            self._request_metadata_all(now)

    def _on_metadata_data(self, peer: Peer, event: MetadataData, now: float) -> None:
        fetcher = self._fetcher
        if fetcher is None or self.info is not None:
            return
        self._metadata_contributors.add(peer.address)
        outcome = fetcher.on_data(peer.address, event.piece, event.data, event.total_size)
        if isinstance(outcome, MetadataComplete):
            self._spawn(self._metadata_complete(outcome.metadata), "metadata")
            return
        if isinstance(outcome, MetadataHashMismatch):
            for addr in outcome.peers:
                bad_peer = self.peers.get(addr)  # type: ignore[call-overload]
                if bad_peer is not None:
                    self._drop(bad_peer, "sent metadata that does not match the info hash", ban=True)
        self._request_metadata_all(now)

    def _request_metadata(self, peer: Peer, now: float) -> None:
        if self._fetcher is None or self.info is not None or not peer.metadata_ext_id or peer.closed:
            return
        msgs: list[wm.Message | MetadataRequest] = []
        while True:
            piece = self._fetcher.next_request(peer.address, now)
            if piece is None:
                break
            msgs.append(MetadataRequest(piece))
        if msgs:
            peer.write(peer.conn.send_all(msgs))
            peer.last_send = now

    def _request_metadata_all(self, now: float) -> None:
        for p in list(self.peers.values()):
            if p.handshake_done:
                self._request_metadata(p, now)

    async def _metadata_complete(self, raw: bytes) -> None:
        if self.info is not None:
            return
        try:
            info = parse_info(raw, self.config.metainfo)
        except MetainfoError as exc:
            # The fetcher checked the SHA-1: this is the one manifest the hash names, and no
            # peer can ever send another.  Waiting would only wait for the timeout.
            self._fetcher = None
            self._fail(
                UnsafeManifestError(
                    f"the manifest of {self.info_hash.hex} is unsafe or invalid ({exc}); nothing was "
                    "written, and no other manifest can match this hash"
                )
            )
            return
        if info.info_hash != self.info_hash:  # the fetcher checked; this is the second wall
            self._fetcher = None
            return
        self.info = info
        self._fetcher = None
        self._emit(ev.MetadataReceived(info.name, info.total_length, info.num_pieces))
        for peer in list(self.peers.values()):
            peer.conn.set_geometry(info.geometry)
        await self._prepare(info)
        now = self._now()
        for peer in list(self.peers.values()):
            if peer.closed or not peer.handshake_done:
                continue
            if peer.conn.fast_enabled is False:
                data = self._have_message_bytes(peer)  # we sent nothing yet: the bitfield now
            else:
                data = b"".join(peer.conn.send(wm.Have(i)) for i in self.picker.have) if self.picker else b""
            peer.write(data)
            self._peer_bitfield_changed(peer)
            self._request_more(peer, now)

    # ------------------------------------------------------------------ requesting

    def _request_more(self, peer: Peer, now: float) -> None:
        picker = self.picker
        conn = peer.conn
        if picker is None or not peer.in_picker or not conn.am_interested or peer.closed:
            return
        choked = conn.peer_choking
        if choked and not conn.allowed_fast_in:
            return
        depth = 1 if peer.snubbed else queue_depth(peer.down.current(now), peer.reqq, self.config.picker)
        want = depth - len(conn.outstanding)
        # Top up in batches (a quarter of the queue at a time): one write of many requests
        # costs the same syscall as one of a few, and on fast links syscalls are the cost.
        if want <= 0 or (want < depth // 4 and conn.outstanding):
            return
        assert self.info is not None
        piece_length = self.info.piece_length
        in_flight = (picker.partial_pieces + len(self._verifying)) * piece_length
        # At least one piece may always be in flight, or pieces larger than the budget
        # (manifests may use up to MetainfoLimits.max_parse_piece_length) would never start.
        allow_new = (
            in_flight == 0 or in_flight + piece_length <= self.config.storage.max_pieces_in_flight_bytes
        )
        blocks = picker.pick_blocks(
            peer,
            want,
            allow_new_piece=allow_new,
            allowed=conn.allowed_fast_in if choked else None,
        )
        if blocks:
            peer.write(conn.send_requests([(b.piece, b.begin, b.length) for b in blocks]))
            peer.last_send = now

    # ------------------------------------------------------------------ verifying

    def _verify_and_write(self, index: int, buf: bytearray) -> bool:
        assert self.info is not None and self.storage is not None
        data = memoryview(buf)[: self.info.geometry.piece_size(index)]
        if hashlib.sha1(data).digest() != self.info.piece_hash(index):
            return False
        self.storage.write_piece(index, data)
        return True

    async def _verify(self, index: int) -> None:
        data = self._buffers.get(index)
        if data is None or self.picker is None:
            return
        loop = asyncio.get_running_loop()
        try:
            ok = await loop.run_in_executor(self._pool, self._verify_and_write, index, data)
        finally:
            buf = self._buffers.pop(index, None)
            self._verifying.discard(index)
            if buf is not None and self.info is not None:
                budget = self.config.storage.max_pieces_in_flight_bytes // self.info.piece_length
                if len(self._spare_buffers) < max(1, budget // 4):
                    self._spare_buffers.append(buf)
        if self.closed:
            return
        picker = self.picker
        now = self._now()
        if ok:
            picker.piece_verified(index)
            self._resume_dirty = True
            self._emit(ev.PieceVerified(index))
            for peer in list(self.peers.values()):
                if peer.handshake_done and not peer.closed:
                    has = peer.conn.peer_has
                    if has is None or index not in has:
                        # A have to a peer that holds the piece tells it nothing (a redundant
                        # have, which libtorrent can suppress too); from seeds it is pure overhead.
                        peer.send(wm.Have(index), now)
                    if peer.conn.am_interested and picker.interesting_count(peer) == 0:
                        peer.send(wm.NotInterested(), now)
                    else:
                        # The piece's buffer is free again: a peer held back by the in-flight
                        # budget may start a new piece now, not at the next tick.
                        self._request_more(peer, now)
            if picker.complete:
                await self._on_complete()
            return
        # Hash mismatch: fetch again, and hold the senders to account.
        self.pieces_failed += 1
        self.wasted += self.info.geometry.piece_size(index) if self.info else 0
        contributors = picker.piece_failed(index)
        labels = tuple(sorted(p.label for p in contributors if isinstance(p, Peer)))
        log.warning("piece %d failed its hash check (sent by %s)", index, ", ".join(labels) or "?")
        self._emit(ev.PieceFailed(index, labels))
        for p in contributors:
            if not isinstance(p, Peer):
                continue
            p.strikes += 1
            if len(contributors) == 1:
                self._drop(p, f"sent piece {index} that failed its hash check", ban=True)
            elif p.strikes >= self.config.swarm.max_strikes:
                self._drop(p, f"took part in {p.strikes} pieces that failed their hash check", ban=True)
        for peer in list(self.peers.values()):
            self._request_more(peer, now)

    async def _on_complete(self) -> None:
        assert self.storage is not None
        await asyncio.get_running_loop().run_in_executor(self._pool, self.storage.ensure_files)
        self._resume_dirty = True
        self._save_resume(force=True)
        if not self.completed.is_set():
            self.completed.set()
            self._set_phase("seeding")
            self._emit(ev.Completed(self.info.total_length if self.info else 0))
        for peer in list(self.peers.values()):
            has = peer.conn.peer_has
            if has is not None and has.complete:
                self._drop(peer, "both sides are seeds")

    # ------------------------------------------------------------------ uploading

    async def _read_piece(self, index: int) -> bytes | None:
        cached = self._read_cache.get(index)
        if cached is not None:
            self._read_cache.move_to_end(index)
            return cached
        pending = self._reads.get(index)
        if pending is not None:
            return await pending
        assert self.storage is not None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes | None] = loop.run_in_executor(self._pool, self.storage.read_piece, index)
        self._reads[index] = fut
        try:
            data = await fut
        finally:
            self._reads.pop(index, None)
        if data is not None:
            self._read_cache[index] = data
            limit = max(1, self.config.storage.read_cache_bytes // len(data))
            while len(self._read_cache) > limit:
                self._read_cache.popitem(last=False)
        return data

    async def _serve(self, peer: Peer) -> None:
        try:
            while peer.uploads and not peer.closed:
                req = peer.uploads[0]
                data = await self._read_piece(req.index)
                if peer.closed:
                    return
                if not peer.uploads or peer.uploads[0] != req:
                    continue  # cancelled while we read
                peer.uploads.popleft()
                if data is None:
                    self._fail(StorageError(f"piece {req.index} can no longer be read from disk"))
                    return
                # Cancelled, or discarded by a choke, while we were reading: nothing to send.
                parts = peer.conn.send_piece(
                    req.index, req.begin, memoryview(data)[req.begin : req.begin + req.length]
                )
                if not parts:
                    continue
                peer.flush()  # messages queued before this piece go first
                peer.link.writelines(parts)
                peer.last_send = self._now()
                peer.up.add(req.length)
                self.uploaded += req.length
                if not peer.link.writable:
                    await peer.link.wait_writable()
        except RemoteProtocolError as exc:
            self._drop(peer, f"protocol error: {exc}", ban=exc.ban)
        finally:
            peer.upload_task = None

    # ------------------------------------------------------------------ choking

    def _unchoked_count(self) -> int:
        return sum(1 for p in self.peers.values() if not p.conn.am_choking)

    def _rechoke(self, now: float) -> None:
        if now < self._next_rechoke:
            return
        stats = [
            PeerStats(
                key=p,
                interested=p.conn.peer_interested,
                download_rate=p.down.rate,
                upload_rate=p.up.rate,
                snubbed=p.snubbed,
                am_choking=p.conn.am_choking,
            )
            for p in self.peers.values()
            if p.handshake_done and not p.closed
        ]
        seeding = self.picker is not None and self.picker.complete
        decision = self._choker.rechoke(stats, now, seeding)
        for key in decision.unchoke:
            assert isinstance(key, Peer)
            if key.conn.am_choking and not key.closed:
                key.send(wm.Unchoke(), now)
        for key in decision.choke:
            assert isinstance(key, Peer)
            if not key.conn.am_choking and not key.closed:
                # The connection discards (BEP 3) or rejects (BEP 6) the queued requests.
                key.send(wm.Choke(), now)
                conn = key.conn
                key.uploads = type(key.uploads)(
                    r for r in key.uploads if conn.is_requested(r.index, r.begin, r.length)
                )
        self._next_rechoke = now + self.config.choker.rechoke_interval

    # ------------------------------------------------------------------ time

    async def _tick_loop(self) -> None:
        interval = self.config.swarm.status_interval
        while not self.closed:
            await asyncio.sleep(interval)
            try:
                self._tick(self._now())
            except Exception:
                log.exception("tick failed")

    def _tick(self, now: float) -> None:
        wire = self.config.wire
        pick = self.config.picker
        for peer in list(self.peers.values()):
            peer.down.sample(now)
            peer.up.sample(now)
            if not peer.handshake_done and now - peer.connected_at > wire.handshake_timeout:
                self._drop(peer, "no handshake in time")
                continue
            if now - peer.last_recv > wire.idle_timeout:
                self._drop(peer, f"silent for {wire.idle_timeout:.0f}s")
                continue
            if self._super_seeding:
                self._reveal(peer, now)  # peers that sent no bitfield (nothing to say) get theirs here
            if now - peer.last_send > wire.keepalive_interval:
                peer.send(wm.KeepAlive(), now)
            if (
                peer.conn.outstanding
                and not peer.conn.peer_choking
                and now - peer.last_block > pick.snub_timeout
                and not peer.snubbed
            ):
                peer.snubbed = True
                log.info("%s is snubbing us; its requests go to other peers", peer.label)
                if self.picker is not None and peer.in_picker:
                    # Cancel them: other peers get the blocks; a late one arrives as unwanted.
                    blocks = self.picker.requests_of(peer)
                    for block in blocks:
                        self.picker.abort_request(peer, block)
                    peer.send_many([wm.Cancel(b.piece, b.begin, b.length) for b in blocks], now)
            self._request_more(peer, now)
        if self._fetcher is not None:
            self._fetcher.handle_timer(now)
            self._request_metadata_all(now)
        self._rechoke(now)
        self._connect_more()
        if now - self._last_resume_save > 5.0:
            self._last_resume_save = now
            self._save_resume()

    # ------------------------------------------------------------------ status

    def transfer_by_host(self) -> dict[str, tuple[int, int]]:
        """Payload bytes ``(downloaded from, uploaded to)`` per peer IP, past and present connections."""
        out = {host: (d, u) for host, (d, u) in self._host_totals.items()}
        for p in self.peers.values():
            d, u = out.get(p.address[0], (0, 0))
            out[p.address[0]] = (d + p.down.total, u + p.up.total)
        return out

    def status(self) -> ev.TorrentStatus:
        info = self.info
        picker = self.picker
        peers = tuple(
            ev.PeerStatus(
                address=p.label,
                client=p.client,
                down_rate=p.down.rate,
                up_rate=p.up.rate,
                downloaded=p.down.total,
                uploaded=p.up.total,
                pieces=len(p.conn.peer_has) if p.conn.peer_has is not None else 0,
                choking_us=p.conn.peer_choking,
                choked_by_us=p.conn.am_choking,
                interested=p.conn.peer_interested,
                snubbed=p.snubbed,
                outgoing=p.outgoing,
            )
            for p in self.peers.values()
            if p.handshake_done
        )
        verified = 0
        files: tuple[tuple[str, int, int], ...] = ()
        if info is not None and picker is not None:
            g = info.geometry
            have = picker.have
            verified = len(have) * g.piece_length
            last = g.num_pieces - 1
            if last in have:
                verified -= g.piece_length - g.piece_size(last)
            if not info.single_file and len(info.files) <= 200:
                rows = []
                for i, f in enumerate(info.files):
                    done = 0
                    for p in g.pieces_for_file(i):
                        if p in have:
                            start = max(p * g.piece_length, f.offset)
                            end = min(p * g.piece_length + g.piece_size(p), f.offset + f.length)
                            done += end - start
                    rows.append(("/".join(f.path), done, f.length))
                files = tuple(rows)
        return ev.TorrentStatus(
            info_hash=self.info_hash.hex,
            name=info.name if info else None,
            phase=self.phase,
            total_size=info.total_length if info else 0,
            num_pieces=info.num_pieces if info else 0,
            have_pieces=len(picker.have) if picker else 0,
            verified_bytes=verified,
            downloaded=self.downloaded,
            uploaded=self.uploaded,
            down_rate=sum(p.down_rate for p in peers),
            up_rate=sum(p.up_rate for p in peers),
            peers=peers,
            known_peers=len(self._known),
            pieces_failed=self.pieces_failed,
            wasted=self.wasted,
            file_progress=files,
        )

    _handlers: ClassVar[dict[type, Callable[..., None]]] = {}


Torrent._handlers = {
    wc.HandshakeReceived: Torrent._on_handshake,
    wc.ExtensionHandshakeReceived: Torrent._on_extension_handshake,
    wm.BitfieldMsg: Torrent._on_bitfield,
    wm.HaveAll: Torrent._on_bitfield,
    wm.HaveNone: Torrent._on_bitfield,
    wm.Have: Torrent._on_have,
    wc.RequestsDropped: Torrent._on_requests_dropped,
    wc.RequestDenied: Torrent._on_request_denied,
    wc.UnwantedPiece: Torrent._on_unwanted_piece,
    wc.PeerClosed: Torrent._on_peer_closed,
    MetadataRequest: Torrent._on_metadata_request,
    MetadataData: Torrent._on_metadata_data,
    MetadataReject: Torrent._on_metadata_reject,
    wm.Unchoke: Torrent._on_unchoke,
    wm.Interested: Torrent._on_interested,
    wm.NotInterested: Torrent._on_not_interested,
    wm.Piece: Torrent._on_piece,
    wm.Request: Torrent._on_request,
    wm.Cancel: Torrent._on_cancel,
    wm.RejectRequest: Torrent._on_reject,
    wm.Port: Torrent._on_port,
}
