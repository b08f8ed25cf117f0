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
from p2pshare.core.wire.state import ConnectionBase, ConnectionState, require
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
            case KeepAlive() | Port():
                emit(msg)
            case BitfieldMsg() | HaveAll() | HaveNone():
                if not isinstance(msg, BitfieldMsg):
                    self._require_fast(msg)
                require(
                    first,
                    Violation.OUT_OF_ORDER,
                    f"{type(msg).__name__} is only allowed as the first message after the handshake",
                )
                if self.num_pieces is None:
                    self._peer_first = msg
                elif isinstance(msg, BitfieldMsg):
                    try:
                        self.peer_has = Bitfield.from_bytes(msg.data, self.num_pieces)
                    except ValueError as exc:
                        raise RemoteProtocolError(f"bad bitfield: {exc}", kind=Violation.MALFORMED) from None
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
                elif key in self._late:
                    del self._late[key]
                    emit(UnwantedPiece(index, begin, data))
                else:
                    raise RemoteProtocolError(
                        f"the peer sent piece {index} begin {begin} length {len(data)}: never requested",
                        kind=Violation.UNREQUESTED,
                    )
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
                self._check_index(index, "suggest")
                if self.num_pieces is not None:
                    emit(msg)
            case RejectRequest(index=index, begin=begin, length=length):
                self._require_fast(msg)
                key = (index, begin, length)
                if key in self.outstanding:
                    self.outstanding.discard(key)
                    emit(msg)
                elif key in self._late:
                    del self._late[key]  # a reject for a request we cancelled: fine, nothing to report
                else:
                    raise RemoteProtocolError(
                        f"the peer rejected piece {index} begin {begin} length {length}: never requested",
                        kind=Violation.UNREQUESTED,
                    )
            case AllowedFast(index=index):
                self._require_fast(msg)
                self._check_index(index, "allowed-fast")
                if len(self.allowed_fast_in) < self.limits.max_allowed_fast or index in self.allowed_fast_in:
                    self.allowed_fast_in.add(index)
                    emit(msg)
            case Extended(ext_id=ext_id, payload=payload):
                require(
                    self.extensions_enabled,
                    Violation.NOT_NEGOTIATED,
                    "extended message from a peer without BEP 10 negotiated",
                )
                if ext_id == 0:
                    hs = ExtensionHandshake.decode(payload, self.limits)
                    old = self.peer_extensions
                    self.peer_extensions = hs if old is None else old.merged(hs)
                    emit(ExtensionHandshakeReceived(self.peer_extensions))
                elif self._our_ext_names.get(ext_id) == UT_METADATA:
                    meta = decode_metadata_message(payload)
                    if meta is not None:
                        emit(meta)
                else:
                    emit(msg)

    def _receive_request(self, msg: Request) -> None:
        index, begin, length = key = (msg.index, msg.begin, msg.length)
        require(
            0 < length <= self.limits.max_request_length,
            Violation.TOO_LARGE,
            f"request for {length} bytes; allowed 1..{self.limits.max_request_length}",
        )
        self._check_index(index, "request")
        if self.num_pieces is not None and self.piece_size is not None:
            size = self.piece_size(index)
            require(
                begin + length <= size,
                Violation.OUT_OF_RANGE,
                f"request {begin}+{length} past piece {index} ({size} bytes)",
            )
        if key in self.incoming or key in self.owed_rejects:
            return  # a duplicate: it will be answered once
        cap = self.limits.max_incoming_requests
        reason: str | None = None
        if self.num_pieces is None or self.we_have is None:
            reason = "we do not have the metadata yet"
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
