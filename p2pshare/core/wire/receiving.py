"""Receiving: every rule checked on what the peer sends (see :mod:`.connection`)."""

from __future__ import annotations

from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import BlockRef
from p2pshare.core.wire.events import (
    Event,
    ExtensionHandshakeReceived,
    HandshakeReceived,
    PeerClosed,
    RequestDenied,
    RequestsDropped,
    UnwantedPiece,
)
from p2pshare.core.wire.extension import UT_METADATA, ExtensionHandshake
from p2pshare.core.wire.messages import (
    AllowedFast,
    BitfieldMsg,
    Cancel,
    Choke,
    Extended,
    Handshake,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    Suggest,
    Unchoke,
)
from p2pshare.core.wire.metadata import (
    decode_metadata_message,
)
from p2pshare.core.wire.state import ConnectionBase, ConnectionState, peer_bitfield, require
from p2pshare.errors import LocalProtocolError, RemoteProtocolError, Violation

__all__ = ["Receiving"]

#: Messages that may precede the bitfield without ending the FIRST phase.
_BEFORE_BITFIELD = (KeepAlive, Extended, Port)
_PEER_CLOSED = PeerClosed()


class Receiving(ConnectionBase):
    """The receiving half of :class:`~p2pshare.core.wire.connection.PeerConnection`."""

    # ------------------------------------------------------------------
    # receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes read from the socket; ``b""`` when the peer closed the stream."""
        if self._eof:
            raise LocalProtocolError("receive_data() after the end of the stream")
        if not data:
            self._eof = True
            return
        self._parser.feed(data)

    def next_event(self) -> Event | None:
        """The next event, or ``None`` until more data arrives (or :class:`PeerClosed` at the end)."""
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except RemoteProtocolError as exc:
            self._error = exc
            self.state = ConnectionState.ERROR
            raise

    def _next_event(self) -> Event | None:
        while True:
            if self._events:
                return self._events.popleft()
            if self._pending_error is not None:
                raise self._pending_error
            if self.state is ConnectionState.HANDSHAKE:
                hs = self._parser.next_handshake()
                if hs is None:
                    break
                return self._receive_handshake(hs)
            msg = self._parser.next_message()
            if msg is None:
                break
            self._receive(msg)
        if self._eof:
            self.state = ConnectionState.CLOSED
            return _PEER_CLOSED
        return None

    def _receive_handshake(self, hs: Handshake) -> HandshakeReceived:
        if self.info_hash is None:
            self.info_hash = hs.info_hash
        require(
            hs.info_hash == self.info_hash,
            Violation.WRONG_TORRENT,
            f"the peer's handshake is for torrent {hs.info_hash.hex()}, not {self.info_hash.hex()}",
        )
        require(
            hs.peer_id != self.our_peer_id,
            Violation.SELF_CONNECTION,
            "connected to ourselves (the peer id is ours)",
        )
        self.peer_id = hs.peer_id
        self.peer_reserved = hs.reserved
        self.state = ConnectionState.FIRST
        if self.num_pieces is not None:
            self.peer_has = Bitfield(self.num_pieces)
        return HandshakeReceived(hs.info_hash, hs.peer_id, hs.reserved)

    def _check_index(self, index: int, what: str) -> None:
        if self.num_pieces is not None:
            require(
                index < self.num_pieces,
                Violation.OUT_OF_RANGE,
                f"{what} for piece {index} past the last ({self.num_pieces})",
            )

    def _require_fast(self, msg: Message) -> None:
        require(
            self.fast_enabled,
            Violation.NOT_NEGOTIATED,
            f"{type(msg).__name__} from a peer without the fast extension negotiated (BEP 6)",
        )

    def _receive(self, msg: Message) -> None:
        """Apply one message from the peer to the state and queue its events."""
        emit = self._events.append
        if type(msg) is Piece and self.state is ConnectionState.ACTIVE:
            # The hot path (one per 16 KiB block): the same rule as the Piece case below.
            key = (msg.index, msg.begin, len(msg.data))
            if key in self.outstanding:
                self.outstanding.discard(key)
                emit(msg)
                return
        first = self.state is ConnectionState.FIRST
        if first and not isinstance(msg, _BEFORE_BITFIELD):
            self.state = ConnectionState.ACTIVE

        match msg:
            case KeepAlive() | Port() | HashRequest() | Hashes() | HashReject():
                emit(msg)  # BEP 52 hash messages: the engine's v2 room checks them against the trees
            case BitfieldMsg() | HaveAll() | HaveNone():
                if not isinstance(msg, BitfieldMsg):
                    self._require_fast(msg)
                if not first:
                    self._receive_later_have_set(msg)
                    return
                if self.num_pieces is None:
                    self._peer_first = msg
                elif isinstance(msg, BitfieldMsg):
                    self.peer_has = peer_bitfield(msg.data, self.num_pieces)
                else:
                    self.peer_has = Bitfield(self.num_pieces, full=isinstance(msg, HaveAll))
                emit(msg)
            case Have(index=index):
                self._check_index(index, "have")
                if self.peer_has is not None:
                    self.peer_has.add(index)
                else:
                    limit = 8 * self.limits.max_unknown_bitfield
                    require(
                        index < limit,
                        Violation.TOO_LARGE,
                        f"have for piece {index}, more than any torrent we accept",
                    )
                    byte = index >> 3
                    if byte >= len(self._pending_haves):
                        self._pending_haves.extend(bytes(byte + 1 - len(self._pending_haves)))
                    self._pending_haves[byte] |= 0x80 >> (index & 7)
                emit(msg)
            case Choke():
                self.peer_choking = True
                emit(msg)
                if not self.fast_enabled and self.outstanding:
                    dropped = tuple(BlockRef(*key) for key in sorted(self.outstanding))
                    self.outstanding.clear()
                    for key in dropped:
                        self._remember_late(key)
                    emit(RequestsDropped(dropped))
            case Unchoke():
                self.peer_choking = False
                emit(msg)
            case Interested():
                self.peer_interested = True
                emit(msg)
            case NotInterested():
                self.peer_interested = False
                emit(msg)
            case Request():
                self._receive_request(msg)
            case Piece(index=index, begin=begin, data=data):
                key = (index, begin, len(data))
                if key in self.outstanding:
                    self.outstanding.discard(key)
                    emit(msg)
                else:  # cancelled, dropped by a choke, or never asked for: unwanted, as libtorrent
                    self._check_unrequested_piece(index, begin, len(data))
                    self._late.pop(key, None)
                    emit(UnwantedPiece(index, begin, data))
            case Cancel(index=index, begin=begin, length=length):
                key = (index, begin, length)
                if key in self.incoming:
                    self.incoming.discard(key)
                    if self.fast_enabled:  # BEP 6: a cancelled request still gets a piece or a reject
                        self.owed_rejects.add(key)
                    emit(msg)
                # else: already answered (or never queued) -- nothing to do
            case Suggest(index=index):
                self._require_fast(msg)
                if self.num_pieces is not None and index < self.num_pieces:  # else ignored, as libtorrent
                    emit(msg)
            case RejectRequest(index=index, begin=begin, length=length):
                self._require_fast(msg)
                key = (index, begin, length)
                if key in self.outstanding:
                    self.outstanding.discard(key)
                    emit(msg)
                else:  # for a request we cancelled, or never sent: nothing to do (libtorrent ignores it)
                    self._late.pop(key, None)
            case AllowedFast(index=index):
                self._require_fast(msg)
                if self.num_pieces is not None and index >= self.num_pieces:
                    return  # past the last piece: ignored, as libtorrent and Transmission do
                if len(self.allowed_fast_in) < self.limits.max_allowed_fast or index in self.allowed_fast_in:
                    self.allowed_fast_in.add(index)
                    emit(msg)
            case Extended(ext_id=ext_id, payload=payload):
                if not self.extensions_enabled:
                    return  # BEP 10 not negotiated: ignored (libtorrent and Transmission do not drop)
                if ext_id == 0:
                    try:
                        hs = ExtensionHandshake.decode(payload, self.limits)
                    except RemoteProtocolError:
                        return  # malformed or over a limit: nothing kept, ignored (libtorrent, Transmission)
                    old = self.peer_extensions
                    self.peer_extensions = hs if old is None else old.merged(hs)
                    emit(ExtensionHandshakeReceived(self.peer_extensions))
                elif self._our_ext_names.get(ext_id) == UT_METADATA:
                    meta = decode_metadata_message(payload)
                    if meta is not None:
                        emit(meta)
                else:
                    emit(msg)

    def _receive_later_have_set(self, msg: BitfieldMsg | HaveAll | HaveNone) -> None:
        """A bitfield / have-all / have-none after the first message: more haves, not an error.

        aria2 sends its bitfield again mid-connection in place of a run of haves
        (libtorrent, Transmission and webtorrent accept a later one).  Pieces it adds
        come out as :class:`Have` events, so the engine counts them once; pieces it
        leaves out are kept (a peer does not lose pieces), and have-none adds nothing.
        """
        if isinstance(msg, HaveNone):
            return
        if self.num_pieces is None:  # no piece count yet: merge into what waits for it
            first = self._peer_first
            if first is None or isinstance(first, HaveNone) or isinstance(msg, HaveAll):
                self._peer_first = msg
            elif isinstance(first, BitfieldMsg):  # two bitfields: their union (the parser bounds both)
                a, b = sorted((first.data, msg.data), key=len)
                union = int.from_bytes(a.ljust(len(b), b"\0"), "big") | int.from_bytes(b, "big")
                self._peer_first = BitfieldMsg(union.to_bytes(len(b), "big"))
            return
        assert self.peer_has is not None
        new = Bitfield(self.num_pieces, full=True) if isinstance(msg, HaveAll) else None
        if new is None:
            assert isinstance(msg, BitfieldMsg)
            new = peer_bitfield(msg.data, self.num_pieces)
        for index in new:
            if index not in self.peer_has:
                self.peer_has.add(index)
                self._events.append(Have(index))

    def _check_unrequested_piece(self, index: int, begin: int, length: int) -> None:
        """A piece nobody asked for is wasted, not fatal; one that cannot be a block is (as libtorrent)."""
        n = self.num_pieces
        require(n is None or index < n, Violation.OUT_OF_RANGE, f"piece {index} past the last ({n})")
        if n is not None and self.piece_size is not None:
            size = self.piece_size(index)
            require(
                begin + length <= size,
                Violation.OUT_OF_RANGE,
                f"piece {index} begin {begin} length {length} past its end",
            )
        wrong = [k for k in self.outstanding if k[0] == index and k[1] == begin]
        require(
            not wrong,
            Violation.MALFORMED,
            f"piece {index} begin {begin} of {length} bytes; we asked for {wrong[:1]}",
        )

    def _receive_request(self, msg: Request) -> None:
        index, begin, length = key = (msg.index, msg.begin, msg.length)
        if key in self.incoming or key in self.owed_rejects:
            return  # a duplicate: it will be answered once
        # An invalid request is refused, not fatal: libtorrent and Transmission reject it too.
        cap = self.limits.max_incoming_requests
        n = self.num_pieces
        reason: str | None = None
        if not 0 < length <= self.limits.max_request_length:
            reason = f"request for {length} bytes; allowed 1..{self.limits.max_request_length}"
        elif n is None or self.we_have is None:
            reason = "we do not have the metadata yet"
        elif index >= n:
            reason = f"request for piece {index} past the last ({n})"
        elif self.piece_size is not None and begin + length > self.piece_size(index):
            reason = f"request {begin}+{length} past the end of piece {index}"
        elif index not in self.we_have:
            reason = "we never said we have that piece"
        elif self.am_choking and not (self.fast_enabled and index in self.allowed_fast_out):
            reason = "the peer is choked"
        elif len(self.incoming) >= cap:
            reason = "too many queued requests"
        if reason is None:
            self.incoming.add(key)
            self._events.append(msg)
            return
        if self.fast_enabled:
            require(
                len(self.incoming) + len(self.owed_rejects) < 2 * cap,
                Violation.FLOOD,
                f"the peer flooded us with more than {2 * cap} unanswered requests",
                ban=True,
            )
            self.owed_rejects.add(key)
        self._events.append(RequestDenied(index, begin, length, reason, self.fast_enabled))
