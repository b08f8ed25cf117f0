"""The transfer room: what each peer event means for requesting, receiving, verifying, uploading, choking.

:class:`Transfer` is the half of :class:`~p2pshare.engine.torrent.Torrent` that
answers peer events; the torrent dispatches each event of a peer's connection to
the handler in :data:`Transfer._handlers`.  It is a base class, not a separate
object, on purpose: the per-block path (``_on_piece`` then ``_request_more``) must
not gain a call or an indirection, and here it reads the torrent's own state.
The rules it keeps:

* blocks are copied into a per-piece buffer (and their senders noted for smart ban);
  a complete piece is hashed and written in one trip to a worker thread (per piece),
  and :class:`~p2pshare.engine.verification.Verification` says what the outcome means;
* the memory of partial pieces is bounded by ``StorageConfig.max_pieces_in_flight_bytes``
  (the picker is told not to start new pieces while the budget is full);
* uploads are served from the read cache with the link's flow control;
* requests are topped up in batches, a quarter of the queue at a time.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from p2pshare import __version__
from p2pshare.config import Config
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import BlockRef
from p2pshare.core.metainfo import Info
from p2pshare.core.picker import PiecePicker, queue_depth
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire import events as we
from p2pshare.core.wire import messages as wm
from p2pshare.core.wire.extension import UT_METADATA, UT_METADATA_ID, ExtensionHandshake
from p2pshare.core.wire.metadata import (
    MetadataComplete,
    MetadataData,
    MetadataReject,
    MetadataRequest,
)
from p2pshare.engine import events as ev
from p2pshare.engine.choking import UploadSlots
from p2pshare.engine.hash_exchange import HashExchange
from p2pshare.engine.metadata_claims import MetadataLiars
from p2pshare.engine.metadata_exchange import MetadataExchange
from p2pshare.engine.params import TorrentHost
from p2pshare.engine.peer import Peer
from p2pshare.engine.peer_book import PeerBook
from p2pshare.engine.piece_io import PieceIO
from p2pshare.engine.super_seed import SuperSeeder
from p2pshare.engine.verification import Verification
from p2pshare.errors import RemoteProtocolError, StorageError, Violation

__all__ = ["Transfer"]

log = logging.getLogger("p2pshare.torrent")


def _compact_ip(host: str) -> bytes | None:
    """The peer's address as BEP 10 ``yourip`` wants it (4 or 16 bytes)."""
    try:
        return ipaddress.ip_address(host).packed
    except ValueError:
        return None


class Transfer(Verification):
    """Peer-event handlers of a torrent (see the module docstring); the torrent provides the state."""

    # State the torrent owns (declared here for the handlers).
    config: Config
    host: TorrentHost
    peer_id: bytes
    info: Info | None
    peers: dict[PeerAddress, Peer]
    book: PeerBook
    picker: PiecePicker[Peer] | None
    pieces: PieceIO | None
    hashes: HashExchange
    metadata: MetadataExchange
    closed: bool
    downloaded: int
    uploaded: int
    wasted: int
    pieces_failed: int
    _super: SuperSeeder | None
    slots: UploadSlots
    _top_up_divisor: int
    _resume_dirty: bool

    # What the torrent does for the handlers.
    def _drop(self, peer: Peer, reason: str, *, kind: Violation | None = None, ban: bool = False) -> None:
        raise NotImplementedError

    def _violation(self, peer: Peer, exc: RemoteProtocolError, what: str = "protocol error") -> None:
        raise NotImplementedError

    def _spawn(self, coro: Coroutine[Any, Any, object], name: str) -> Any:
        raise NotImplementedError

    def _emit(self, event: ev.EngineEvent) -> None:
        raise NotImplementedError

    def _fail(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError

    async def _on_complete(self) -> None:
        raise NotImplementedError

    async def _metadata_complete(self, raw: bytes) -> None:
        raise NotImplementedError

    def _request_metadata_all(self, now: float) -> None:
        raise NotImplementedError

    def _fill_pads(self, peer: Peer, blocks: list[BlockRef], now: float) -> list[BlockRef]:
        raise NotImplementedError

    # ------------------------------------------------------------------ handshakes

    def _on_handshake(self, peer: Peer, event: we.HandshakeReceived, now: float) -> None:
        book = self.book
        if event.peer_id == self.peer_id:
            self._drop(peer, "connected to ourselves", kind=Violation.SELF_CONNECTION)
            book.forget(peer.address)
            return
        if event.peer_id in book.peer_ids:
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
            book.defer(loser.address, now + self.config.swarm.retry_max)  # connected anyway
            if loser is peer:
                return
        peer.peer_id = event.peer_id
        book.peer_ids.add(event.peer_id)
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
                        p=self.host.tcp_port() or None,
                        reqq=self.config.wire.max_incoming_requests,
                        metadata_size=len(self.info.raw) if self.info is not None else None,
                        yourip=_compact_ip(peer.address[0]),
                    )
                )
            )
        dht_port = self.host.dht_port()
        if dht_port and conn.peer_supports_dht:
            out.append(conn.send(wm.Port(dht_port)))
        out.append(self._have_message_bytes(peer))
        peer.write(b"".join(out))
        peer.last_send = now
        self._emit(ev.PeerConnected(peer.label, peer.client))

    def _have_message_bytes(self, peer: Peer) -> bytes:
        """Our bitfield / have-all / have-none (nothing while we lack the metadata and fast is off)."""
        have = self.picker.have if self.picker is not None else None
        if self._super is not None and have is not None:
            have = Bitfield(have.length)  # pieces are revealed one by one (SuperSeeder)
        msg = peer.conn.initial_have_message(have)
        return peer.conn.send(msg) if msg is not None else b""

    def _on_extension_handshake(self, peer: Peer, event: we.ExtensionHandshakeReceived, now: float) -> None:
        hs = event.handshake
        if hs.v:
            peer.client = hs.v[: self.config.wire.max_client_name]
        peer.reqq = hs.reqq
        peer.metadata_ext_id = hs.ext_id(UT_METADATA) or 0
        if self.info is None and peer.metadata_ext_id and hs.metadata_size:
            try:
                self.metadata.peer_offers(peer, hs)
            except RemoteProtocolError as exc:
                self._drop(peer, f"metadata: {exc}", kind=exc.kind)
                return
            self.metadata.request(peer, now)

    # ------------------------------------------------------------------ what the peer has

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
        if self._super is not None:
            self._super.reveal(peer, now)

    def _on_have(self, peer: Peer, event: wm.Have, now: float) -> None:
        if self.picker is None:
            return
        if peer.revealed:
            peer.revealed.discard(event.index)
            if self._super is not None:
                self._super.reveal(peer, now)
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

    # ------------------------------------------------------------------ requesting

    def _on_requests_dropped(self, peer: Peer, event: we.RequestsDropped, now: float) -> None:
        """A non-fast peer choked us: its answers to our requests will not come."""
        if self.picker is not None and peer.in_picker:
            for block in event.blocks:
                self.picker.abort_request(peer, block)

    def _on_unchoke(self, peer: Peer, event: wm.Unchoke, now: float) -> None:
        peer.last_block = now  # the snub clock starts now

    def _on_reject(self, peer: Peer, event: wm.RejectRequest, now: float) -> None:
        if self.picker is not None and peer.in_picker:
            self.picker.abort_request(peer, BlockRef(event.index, event.begin, event.length))

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
        # Top up in batches (a quarter of the queue at a time by default): one write of many requests
        # costs the same syscall as one of a few, and on fast links syscalls are the cost.
        if want <= 0 or (want < depth // self._top_up_divisor and conn.outstanding):
            return
        assert self.pieces is not None
        blocks = picker.pick_blocks(
            peer,
            want,
            allow_new_piece=self.pieces.may_start_piece(picker.partial_pieces),
            allowed=conn.allowed_fast_in if choked else None,
        )
        if blocks and self.hashes.pad_blocks:  # v2/hybrid: pad zeros are filled, not fetched
            blocks = self._fill_pads(peer, blocks, now)
        if blocks:
            peer.write(conn.send_requests(blocks))
            peer.last_send = now

    # ------------------------------------------------------------------ receiving blocks

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
        result = picker.block_received(peer, BlockRef(event.index, event.begin, n))
        if result.duplicate:
            self.wasted += n
            return
        pio = self.pieces
        assert pio is not None
        buf = pio.buffers.get(event.index)
        if buf is None:
            buf = pio.new_buffer(event.index)
        buf[event.begin : event.begin + n] = event.data
        self.smart_ban.block_received(event.index, event.begin, peer.address)
        for other in result.cancel:
            if not other.closed:
                other.send(wm.Cancel(event.index, event.begin, n), now)
        if result.piece_complete:
            pio.verifying.add(event.index)
            self._spawn(self._verify(event.index), f"verify-{event.index}")

    def _on_unwanted_piece(self, peer: Peer, event: we.UnwantedPiece, now: float) -> None:
        self.downloaded += len(event.data)
        self.wasted += len(event.data)
        peer.down.add(len(event.data))

    # ------------------------------------------------------------------ uploading

    def _check_unsent(self, peer: Peer) -> bool:
        """Drop a peer whose unread replies passed the outgoing cap; True when dropped.

        Uploads wait for the link's high-water mark, so only small replies (rejects, haves)
        can pile up: a peer that asks and never reads stops being answered here.
        """
        cap = self.config.defence.max_outgoing_buffer
        unsent = peer.unsent
        if unsent > cap and not peer.closed:
            self._drop(
                peer,
                f"left {unsent} bytes of replies unread, past the outgoing cap of {cap}",
                kind=Violation.UNREAD,
            )
            return True
        return False

    def _on_request_denied(self, peer: Peer, event: we.RequestDenied, now: float) -> None:
        log.debug("%s: request %s denied: %s", peer.label, event.block, event.reason)
        if event.reject:
            peer.send(wm.RejectRequest(event.index, event.begin, event.length), now)

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

    async def _serve(self, peer: Peer) -> None:
        pio = self.pieces
        assert pio is not None
        link = peer.link
        try:
            while peer.uploads and not peer.closed:
                req = peer.uploads[0]
                data = await pio.read_piece(req.index)
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
                link.writelines(parts)
                peer.last_send = self._now()
                peer.up.add(req.length)
                self.uploaded += req.length
                if not link.writable:
                    await link.wait_writable()
        except RemoteProtocolError as exc:
            self._violation(peer, exc)
        finally:
            peer.upload_task = None

    # ------------------------------------------------------------------ choking

    def _on_interested(self, peer: Peer, event: object, now: float) -> None:
        # Fill a free upload slot at once instead of waiting for the next rechoke.
        if self.slots.has_room(self.peers.values()):
            self.slots.free()
            self._rechoke(now)

    def _on_not_interested(self, peer: Peer, event: object, now: float) -> None:
        if not peer.conn.am_choking:
            self.slots.free()  # its slot is free: give it to someone else at the next tick

    def _rechoke(self, now: float) -> None:
        self.slots.rechoke(self.peers.values(), self.picker is not None and self.picker.complete, now)

    # ------------------------------------------------------------------ small messages

    def _on_port(self, peer: Peer, event: wm.Port, now: float) -> None:
        # One per connection: each one makes our DHT node ping that address, so a peer
        # repeating it could make us probe every port of its host.
        if peer.dht_port is not None or not event.port:
            return
        peer.dht_port = event.port
        self.host.add_dht_node(PeerAddress.unchecked(peer.address[0], event.port))

    def _on_peer_closed(self, peer: Peer, event: we.PeerClosed, now: float) -> None:
        self._drop(peer, "the peer closed the connection")

    # ------------------------------------------------------------------ metadata (BEP 9)

    def _on_metadata_request(self, peer: Peer, event: MetadataRequest, now: float) -> None:
        """Serve our manifest (BEP 9), or reject while we do not have it."""
        self.metadata.serve(peer, event, self.info.raw if self.info is not None else None, now)

    def _on_metadata_reject(self, peer: Peer, event: MetadataReject, now: float) -> None:
        if self.metadata.fetching:
            self.metadata.on_reject(peer, event.piece)
            self._request_metadata_all(now)

    def _on_metadata_data(self, peer: Peer, event: MetadataData, now: float) -> None:
        if not self.metadata.fetching or self.info is not None:
            return
        outcome = self.metadata.on_data(peer, event)
        if isinstance(outcome, MetadataComplete):
            self._spawn(self._metadata_complete(outcome.metadata), "metadata")
            return
        if isinstance(outcome, MetadataLiars):
            # Only a copy that one peer sent alone names its sender; a mixed copy is fetched
            # again from one claimant at a time, and nobody is blamed for it yet.
            for addr in outcome.peers:
                bad_peer = self.peers.get(addr)
                if bad_peer is not None:
                    reason = f"sent {outcome.size} bytes of metadata that do not match the info hash"
                    self._drop(bad_peer, reason, kind=Violation.BAD_METADATA, ban=True)
        self._request_metadata_all(now)

    def _drop_metadata_liars(self, liars: list[PeerAddress]) -> None:
        """Once the manifest is known: ban the peers that claimed another metadata_size."""
        for addr in liars:
            liar = self.peers.get(addr)
            if liar is not None:
                reason = "claimed a metadata_size other than the manifest's"
                self._drop(liar, reason, kind=Violation.BAD_METADATA, ban=True)

    _handlers: ClassVar[dict[type, Callable[..., None]]] = {}


Transfer._handlers = {
    we.HandshakeReceived: Transfer._on_handshake,
    we.ExtensionHandshakeReceived: Transfer._on_extension_handshake,
    wm.BitfieldMsg: Transfer._on_bitfield,
    wm.HaveAll: Transfer._on_bitfield,
    wm.HaveNone: Transfer._on_bitfield,
    wm.Have: Transfer._on_have,
    we.RequestsDropped: Transfer._on_requests_dropped,
    we.RequestDenied: Transfer._on_request_denied,
    we.UnwantedPiece: Transfer._on_unwanted_piece,
    we.PeerClosed: Transfer._on_peer_closed,
    MetadataRequest: Transfer._on_metadata_request,
    MetadataData: Transfer._on_metadata_data,
    MetadataReject: Transfer._on_metadata_reject,
    wm.Unchoke: Transfer._on_unchoke,
    wm.Interested: Transfer._on_interested,
    wm.NotInterested: Transfer._on_not_interested,
    wm.Piece: Transfer._on_piece,
    wm.Request: Transfer._on_request,
    wm.Cancel: Transfer._on_cancel,
    wm.RejectRequest: Transfer._on_reject,
    wm.Port: Transfer._on_port,
}
