"""One torrent's swarm: the orchestration of its rooms.

Theory of operation
-------------------
The protocol knowledge lives in sans-I/O objects: a
:class:`~p2pshare.core.wire.connection.PeerConnection` per peer (framing, state,
rule checks), one :class:`~p2pshare.core.picker.PiecePicker` (which block next),
one :class:`~p2pshare.core.choker.Choker` (who may download from us).  The rooms
of the engine keep the rest:

* :class:`~p2pshare.engine.peer_book.PeerBook`: known addresses, back-off, bans,
  half-open dials, per-host totals;
* :class:`~p2pshare.engine.piece_io.PieceIO`: piece buffers, the verify-and-write
  pool, the upload read cache, the check of existing data;
* :class:`~p2pshare.engine.metadata_exchange.MetadataExchange`: BEP 9;
* :class:`~p2pshare.engine.super_seed.SuperSeeder`: initial seeding;
* :class:`~p2pshare.engine.choking.UploadSlots`: who may download from us;
* :mod:`~p2pshare.engine.transfer`: what each peer event means (requests, blocks,
  uploads), as the handlers of this class.

This class is the glue: bytes from a :class:`~p2pshare.io.link.Link` (of whatever
kind: the torrent never asks) go into the peer's connection; every event that
comes out is handled synchronously, then requests are topped up *once per batch
of bytes* (not per block), in one write.  One tick a second keeps time: rates,
keep-alives, idle and snub timeouts, reconnects, metadata re-requests,
re-choking, resume saves.

Any :class:`~p2pshare.errors.RemoteProtocolError` drops the peer with its
:class:`~p2pshare.errors.Violation` kind (and bans it when the error says so); it
never escapes this class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from p2pshare.config import BLOCK_SIZE
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.metainfo import Info, parse_info
from p2pshare.core.picker import PiecePicker
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire import messages as wm
from p2pshare.engine import events as ev
from p2pshare.engine.choking import UploadSlots
from p2pshare.engine.connecting import CROSSED, Connecting
from p2pshare.engine.events import Phase
from p2pshare.engine.file_choice import FileChoice, choose, read_ahead_window
from p2pshare.engine.hash_exchange import HashExchange, manifest_matches
from p2pshare.engine.holepunch import HolepunchRoom
from p2pshare.engine.metadata_exchange import MetadataExchange
from p2pshare.engine.overwrite import protect_existing
from p2pshare.engine.params import StorageFactory, TorrentHost, TorrentParams
from p2pshare.engine.peer import Peer
from p2pshare.engine.peer_book import PeerBook
from p2pshare.engine.pex import PexRoom
from p2pshare.engine.piece_io import PieceIO
from p2pshare.engine.rate_limit import RateLimits
from p2pshare.engine.resume import save_resume
from p2pshare.engine.smart_ban import SmartBan
from p2pshare.engine.status import torrent_status
from p2pshare.engine.super_seed import SuperSeeder
from p2pshare.engine.transfer import Transfer
from p2pshare.engine.v2_handlers import V2_HANDLERS, fill_pad_blocks
from p2pshare.errors import MetainfoError, RemoteProtocolError, StorageError, UnsafeManifestError, Violation

__all__ = ["Torrent"]

log = logging.getLogger("p2pshare.torrent")

#: Why our own dial is dropped when the peer's crossing dial is the one both sides keep.


class Torrent(Connecting, Transfer):
    """The swarm of one info hash: download (or fetch metadata first), verify, seed."""

    def __init__(
        self,
        params: TorrentParams,
        host: TorrentHost,
        *,
        storage: StorageFactory,
        on_event: Callable[[ev.EngineEvent], None] | None = None,
        rng: random.Random | None = None,
        rates: RateLimits | None = None,
    ) -> None:
        info = params.info
        if info is not None and not manifest_matches(info, params.info_hash):
            raise MetainfoError("the manifest does not match the info hash")
        self.params = params
        self.info_hash = params.info_hash
        self.info: Info | None = info
        self.host = host
        self.peer_id = host.peer_id
        self.config = config = host.config
        self._open_storage = storage
        self._on_event = on_event
        self._rng = rng or random.Random()
        self.phase = Phase.STARTING
        self.peers: dict[PeerAddress, Peer] = {}
        self.book = PeerBook(config.swarm)
        self.smart_ban: SmartBan[PeerAddress] = SmartBan(BLOCK_SIZE, config.defence.smart_ban_max_pieces)
        self.picker: PiecePicker[Peer] | None = None
        self.choice = FileChoice(None, None)  #: the files chosen (known with the manifest)
        self.pieces: PieceIO | None = None
        self.metadata = MetadataExchange(params.info_hash, config, params.info_hash_v2)
        self.hashes = HashExchange(config, params.piece_layers, by_v2=params.info_hash_v2 is not None)
        self.holepunch = HolepunchRoom(
            config.transport,
            self.peers,
            self._dial_utp,
            enabled=config.transport.holepunch and config.transport.mode != "tcp",
        )
        self.rates = rates or RateLimits(config.coop)  #: the session's global caps
        self.pex = PexRoom(
            config.coop,
            self.add_peers,
            enabled=not (info is not None and info.private),
            on_flags=self._pex_flags,
        )
        self._super: SuperSeeder | None = None
        self.slots = UploadSlots(config.choker, self._rng)
        self._top_up_divisor = config.engine.request_top_up_divisor
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
        self._last_resume_save = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fatal: BaseException | None = None
        self.fatal_event = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Check existing data (or trust a seed), then start the tick loop."""
        self._loop = asyncio.get_running_loop()
        self.holepunch.our_port = self.host.tcp_port()
        if self.info is not None:
            await self._prepare(self.info)
        else:
            self._set_phase(Phase.FETCHING_METADATA)
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
        if self.pieces is not None:
            await self.pieces.drain()
        await self._save_resume(force=True)
        if self.pieces is not None:
            self.pieces.storage.close()

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

    def _set_phase(self, phase: Phase) -> None:
        if phase != self.phase:
            self.phase = phase
            self._emit(ev.PhaseChanged(phase))

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    # ------------------------------------------------------------------ data & resume

    async def _prepare(self, info: Info) -> None:
        """Open storage for ``info`` and find which pieces we already have (a v2 manifest's
        missing piece layers first: the v2 handlers call this again once they are in)."""
        if self.pieces is not None or not self.hashes.start(info, self.peers.values(), self._now()):
            return
        geometry = info.geometry
        self.pex.enabled = not info.private  # BEP 27: private torrents exchange no peers
        verify = self.hashes.verify_piece if info.meta_version == 2 else None
        self.pieces = pio = PieceIO(info, self._open_storage(info), self.config, verify)
        if self.params.assume_complete:
            have = Bitfield(geometry.num_pieces, full=True)
        else:
            self._set_phase(Phase.CHECKING)
            known = self.params.known_pieces(info) if self.params.known_pieces is not None else None
            have = await asyncio.get_running_loop().run_in_executor(
                None, pio.check_existing, self.params.resume_path, known
            )
        self.choice = choose(info, self.params.select)
        if not self.params.assume_complete:  # raises before anything is written
            protect_existing(self.params, pio.storage, have, self.choice.selected)
        self.picker = PiecePicker(geometry, have, self.config.picker, self._rng, wanted=self.choice.wanted)
        if self.params.sequential:
            self.picker.set_sequential(read_ahead_window(self.config.stream, info.piece_length))
        swarm = self.config.swarm
        if have.complete and swarm.super_seed and geometry.num_pieces > 1:
            self._super = SuperSeeder(
                geometry.num_pieces, info.piece_length, swarm.super_seed_window, self._rng
            )
        self.metadata_ready.set()
        if self.picker.complete:
            await self._on_complete()
        else:
            self._set_phase(Phase.DOWNLOADING)
        self._tell_peers_what_we_have()

    async def _save_resume(self, force: bool = False) -> None:
        path = self.params.resume_path
        if path is None or self.picker is None or self.pieces is None:
            return
        if not (self._resume_dirty or force):
            return
        self._resume_dirty = False
        try:
            await save_resume(
                path, self.info_hash.value, self.picker.have, self.pieces.storage.file_sizes_and_mtimes()
            )
        except OSError as exc:
            self._resume_dirty = True
            log.warning("could not save resume state to %s: %s", path, exc)

    async def _on_complete(self) -> None:
        assert self.pieces is not None
        await self.pieces.ensure_files()
        self._resume_dirty = True
        await self._save_resume(force=True)
        if not self.completed.is_set():
            self.completed.set()
            self._set_phase(Phase.SEEDING)
            self._emit(ev.Completed(self.status().total_size))
        for peer in list(self.peers.values()):
            has = peer.conn.peer_has
            if has is not None and has.complete:
                self._drop(peer, "both sides are seeds")

    def _schedule_flush(self, peer: Peer) -> None:
        self._dirty.append(peer)
        if len(self._dirty) == 1 and self._loop is not None:
            self._loop.call_soon(self._flush_all)

    def _flush_all(self) -> None:
        dirty, self._dirty = self._dirty, []
        for peer in dirty:
            peer.flush()
            self._check_unsent(peer)

    # ------------------------------------------------------------------ peers: dropping

    def _on_link_closed(self, peer: Peer, exc: Exception | None) -> None:
        self._drop(peer, "connection closed" if exc is None else f"connection lost: {exc}")

    def _drop(self, peer: Peer, reason: str, *, kind: Violation | None = None, ban: bool = False) -> None:
        if peer.closed:
            return
        if not ban:
            peer.flush()  # a last have (our completion) still reaches it
        peer.closed = True
        peer.close_reason = reason
        peer.link.close()
        if self.peers.get(peer.address) is peer:
            del self.peers[peer.address]
        book = self.book
        book.detached(
            peer.address,
            outgoing=peer.outgoing,
            worked=peer.handshake_done,
            down=peer.down.total,
            up=peer.up.total,
            now=self._now(),
        )
        book.peer_ids.discard(peer.peer_id)
        if not peer.conn.am_choking:
            self.slots.free()  # an upload slot is free
        if peer.upload_task is not None:
            peer.upload_task.cancel()
        peer.uploads.clear()
        if self.picker is not None and peer.in_picker:
            self.picker.remove_peer(peer)
            peer.in_picker = False
        self.metadata.forget(peer.address)
        self.pex.forget(peer)
        self.hashes.forget(peer.address)
        self.holepunch.forget(peer)
        if peer.outgoing and not peer.handshake_done and not self.closed and reason != CROSSED:
            self.host.link_failed(peer.address, peer.link)  # the transport policy learns from it
        if ban:
            assert kind is not None, "a ban names the rule that was broken"
            book.ban(peer.address[0])
            log.warning("banned %s: %s", peer.label, reason)
            self._emit(ev.PeerBanned(peer.label, reason, kind))
        else:
            log.info("dropped %s: %s", peer.label, reason)
        if peer.handshake_done:
            self._emit(ev.PeerDisconnected(peer.label, reason, kind))
        if not self.closed and self._loop is not None:
            self._loop.call_soon(self._connect_more)

    def _violation(self, peer: Peer, exc: RemoteProtocolError, what: str = "protocol error") -> None:
        self._drop(peer, f"{what}: {exc}", kind=exc.kind, ban=exc.ban)

    # ------------------------------------------------------------------ receiving

    def _on_data(self, peer: Peer, data: memoryview) -> None:
        if peer.closed:
            return
        now = self._now()
        peer.last_recv = now
        if self.rates.down.limited and self._loop is not None:
            self.rates.received(peer.link, len(data), self._loop)  # per read batch, not per block
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
            self._violation(peer, exc)
        except StorageError as exc:
            self._fail(exc)

    # ------------------------------------------------------------------ metadata

    def _request_metadata_all(self, now: float) -> None:
        if self.info is None:
            self.metadata.request_all(self.peers.values(), now)

    async def _metadata_complete(self, raw: bytes) -> None:
        if self.info is not None:
            return
        try:
            info = parse_info(raw, self.config.metainfo)
        except MetainfoError as exc:
            # The hash names this manifest alone: no peer can send another, so stop now.
            self.metadata.stop()
            why = f"the manifest of {self.info_hash.hex} is unsafe or invalid ({exc}); nothing was written"
            self._fail(UnsafeManifestError(why + ", and no other manifest can match this hash"))
            return
        liars = self.metadata.liars(len(raw))
        self.metadata.stop()
        if not manifest_matches(info, self.info_hash):  # the fetcher checked; this is the second wall
            return
        self._drop_metadata_liars(liars)
        self.info = info
        self._emit(ev.MetadataReceived(info.name, info.total_length, info.num_pieces))
        for peer in list(self.peers.values()):
            peer.conn.set_geometry(info.geometry)
        await self._prepare(info)

    def _tell_peers_what_we_have(self) -> None:
        """The data is open: peers connected while it was not hear what we have now."""
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
            if self._super is not None:
                self._super.reveal(peer, now)  # peers that sent no bitfield get theirs here
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
        self.hashes.tick(self.peers.values(), now)
        if self.metadata.fetching:
            self.metadata.tick(now)
            self._request_metadata_all(now)
        self._rechoke(now)
        self.pex.tick(now, self.peers.values())
        self._connect_more()
        if now - self._last_resume_save > self.config.engine.resume_save_interval:
            self._last_resume_save = now
            if self._resume_dirty:
                self._spawn(self._save_resume(), "save-resume")

    # ------------------------------------------------------------------ status

    def transfer_by_host(self) -> dict[str, tuple[int, int]]:
        """Payload bytes ``(downloaded from, uploaded to)`` per peer IP, past and present connections."""
        return self.book.transfer_by_host(
            (p.address[0], p.down.total, p.up.total) for p in self.peers.values()
        )

    def status(self) -> ev.TorrentStatus:
        return torrent_status(self)


Torrent._handlers = {**Transfer._handlers, **V2_HANDLERS}
Torrent._fill_pads = fill_pad_blocks  # type: ignore[assignment]
