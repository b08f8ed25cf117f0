"""One peer link as a sans-I/O state machine (h11 style).

Theory of operation
===================

:class:`PeerConnection` never touches a socket or a clock.  The engine

1. sends :meth:`PeerConnection.handshake_bytes` (the initiator at once, the
   receiver after :class:`HandshakeReceived`; a receiver built with
   ``info_hash=None`` adopts the hash the peer asks for, and the engine checks it
   against the torrents it serves);
2. passes every chunk read from the socket to :meth:`~PeerConnection.receive_data`
   (``b""`` means end of stream) and then drains :meth:`~PeerConnection.next_event`
   until it returns ``None`` (more bytes needed);
3. turns every message it wants to send into bytes with :meth:`~PeerConnection.send`
   (or :meth:`~PeerConnection.send_piece` for the zero-copy data path) and writes them.

Every protocol rule is checked in one place, :meth:`PeerConnection._receive` for
what the peer sent and :meth:`PeerConnection._send` for what we send; nothing else
changes the state.  A rule the peer breaks raises :class:`RemoteProtocolError`
from ``next_event`` (and again on every later call): drop the peer, and ban it if
``exc.ban``.  A rule *we* would break raises :class:`LocalProtocolError` from
``send``: a bug in the caller.

Link phases (``state``)::

    HANDSHAKE --68 bytes, hash ok--> FIRST --any message but keep-alive,
                                            extended or port--> ACTIVE
    any --b"" received--> CLOSED (after the buffered events)   any --peer broke a rule--> ERROR

In FIRST the peer may send its bitfield, or (BEP 6) have-all / have-none, after
any extended, port or keep-alive messages.  A later one is not an error (aria2
re-sends its bitfield in place of a run of haves): the pieces it adds come out as
:class:`Have` events, and have-none adds nothing.  Each side's choke/interest flags, our requests
to the peer (``outstanding``), the peer's requests to us (``incoming``), the
requests we still owe a reject for (``owed_rejects``), and both allowed-fast sets
are kept here, with these rules:

* A piece must answer one of our requests (same index, begin and length).  A piece
  for a request we cancelled, or one a non-fast peer's choke dropped, is no error
  (BEP 3 allows it): it comes out as :class:`UnwantedPiece`.
* When a non-fast peer chokes us, all our requests are void (BEP 3):
  :class:`RequestsDropped` follows the :class:`Choke`.  A fast peer must reject
  each one instead (BEP 6), so nothing is dropped implicitly.
* The peer's request is queued (emitted as :class:`Request`) only if it is in
  range, not longer than ``limits.max_request_length``, for a piece we
  advertised, and we are not choking the peer (unless the piece is in the
  allowed-fast set we granted) and the queue holds fewer than
  ``limits.max_incoming_requests``.  Otherwise it comes out as
  :class:`RequestDenied`; with the fast extension ``reject=True`` and the engine
  must ``send(RejectRequest(...))``.  More than twice the cap outstanding is a
  flood (ban).
* When we choke a non-fast peer its queued requests are discarded (BEP 3); when we
  choke a fast peer, ``send(Choke())`` appends a reject for each queued request
  outside the allowed-fast set we granted (BEP 6).
* ``send(Piece)`` / ``send(RejectRequest)`` for a request the peer no longer
  wants (cancelled by a non-fast peer, or already answered) return ``b""``: write
  what you get and the link stays correct.
* Fast-extension messages need both fast bits; extended messages need both
  extension bits; a reject must match a request we sent.

The peer's piece count may be unknown at first (magnet links): bitfield, have and
allowed-fast are then kept aside and checked by :meth:`set_num_pieces`; an error
found there surfaces from the next ``next_event`` call.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum

from p2pshare.config import WireLimits
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import Geometry
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
    MessageId,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    Suggest,
    Unchoke,
    _ReservedBits,
    encode,
    encode_piece_header,
    make_reserved,
)
from p2pshare.core.wire.metadata import (
    MetadataData,
    MetadataMessage,
    MetadataReject,
    MetadataRequest,
    decode_metadata_message,
    encode_metadata_message,
)
from p2pshare.core.wire.parser import MessageParser
from p2pshare.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Block",
    "ConnectionState",
    "Event",
    "ExtensionHandshakeReceived",
    "HandshakeReceived",
    "PeerClosed",
    "PeerConnection",
    "RequestDenied",
    "RequestsDropped",
    "UnwantedPiece",
]

#: A request's identity: (piece index, begin, length).
Block = tuple[int, int, int]


class ConnectionState(Enum):
    HANDSHAKE = "handshake"  #: waiting for the peer's handshake
    FIRST = "first"  #: handshake done; the peer's bitfield / have-all / have-none may come
    ACTIVE = "active"
    CLOSED = "closed"  #: the peer closed the stream and every event was delivered
    ERROR = "error"  #: the peer broke the protocol


#: length prefix, message id, index, begin, length: a whole request message.
_REQUEST = struct.Struct(">IBIII")

# ---------------------------------------------------------------------------
# Events (besides the wire messages themselves)


@dataclass(frozen=True, slots=True)
class HandshakeReceived(_ReservedBits):
    """The peer's handshake arrived and matches our torrent."""

    info_hash: bytes
    peer_id: bytes
    reserved: bytes


@dataclass(frozen=True, slots=True)
class ExtensionHandshakeReceived:
    """A BEP 10 handshake arrived; ``handshake`` is the peer's state merged over earlier ones."""

    handshake: ExtensionHandshake


@dataclass(frozen=True, slots=True)
class UnwantedPiece:
    """A piece for a request we cancelled (or a choke dropped): legal, but no longer asked for."""

    index: int
    begin: int
    data: bytes

    def __repr__(self) -> str:
        return f"UnwantedPiece(index={self.index}, begin={self.begin}, data=<{len(self.data)} bytes>)"


@dataclass(frozen=True, slots=True)
class RequestDenied:
    """The peer's request will not be served; if ``reject``, send ``RejectRequest`` for it (BEP 6)."""

    index: int
    begin: int
    length: int
    reason: str
    reject: bool

    @property
    def block(self) -> Block:
        return (self.index, self.begin, self.length)


@dataclass(frozen=True, slots=True)
class RequestsDropped:
    """A non-fast peer choked us: these requests of ours will not be answered (return them to the picker)."""

    blocks: tuple[Block, ...]


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The peer closed its side of the stream (returned on every call once reached)."""


Event = (
    Message
    | HandshakeReceived
    | ExtensionHandshakeReceived
    | MetadataRequest
    | MetadataData
    | MetadataReject
    | UnwantedPiece
    | RequestDenied
    | RequestsDropped
    | PeerClosed
)

#: Messages that may precede the bitfield without ending the FIRST phase.
_BEFORE_BITFIELD = (KeepAlive, Extended, Port)
_PEER_CLOSED = PeerClosed()


def _peer_bitfield(data: bytes, n: int) -> Bitfield:
    """The peer's bitfield for ``n`` pieces; set spare bits are ignored, as libtorrent and Transmission do."""
    spare = len(data) * 8 - n
    if 0 < spare < 8 and data[-1] & ((1 << spare) - 1):
        data = data[:-1] + bytes([data[-1] & (0xFF << spare) & 0xFF])
    try:
        return Bitfield.from_bytes(data, n)
    except ValueError as exc:
        raise RemoteProtocolError(f"bad bitfield: {exc}") from None


def _require(condition: bool, message: str, *, ban: bool = False) -> None:
    if not condition:
        raise RemoteProtocolError(message, ban=ban)


class PeerConnection:
    """The protocol state of one peer link; see the module docstring."""

    def __init__(
        self,
        info_hash: bytes | None,
        our_peer_id: bytes,
        *,
        initiator: bool,
        num_pieces: int | None = None,
        limits: WireLimits | None = None,
        fast: bool = True,
        extensions: bool = True,
        dht: bool = False,
        piece_size: Callable[[int], int] | None = None,
    ) -> None:
        if info_hash is None and initiator:
            raise ValueError("the initiator must know the info hash")
        if info_hash is not None and len(info_hash) != 20:
            raise ValueError("info hash must be 20 bytes")
        if len(our_peer_id) != 20:
            raise ValueError("peer id must be 20 bytes")
        self.limits = limits if limits is not None else WireLimits()
        self.info_hash = info_hash
        self.our_peer_id = our_peer_id
        self.initiator = initiator
        self.our_reserved = make_reserved(fast=fast, extensions=extensions, dht=dht)
        self.state = ConnectionState.HANDSHAKE

        self.num_pieces: int | None = None
        self.piece_size: Callable[[int], int] | None = piece_size
        self._parser = MessageParser(self.limits)
        self._events: deque[Event] = deque()
        self._eof = False
        self._error: RemoteProtocolError | None = None
        self._pending_error: RemoteProtocolError | None = None
        self._handshake_sent = False

        # the peer
        self.peer_id: bytes | None = None
        self.peer_reserved: bytes = bytes(8)
        self.peer_choking = True
        self.peer_interested = False
        self.peer_has: Bitfield | None = None
        self.peer_extensions: ExtensionHandshake | None = None
        #: pieces the peer lets us request while choked (BEP 6)
        self.allowed_fast_in: set[int] = set()
        #: the peer's requests we have queued and not yet answered
        self.incoming: set[Block] = set()
        #: the peer's requests we must still answer with RejectRequest (fast only)
        self.owed_rejects: set[Block] = set()
        self._peer_first: BitfieldMsg | HaveAll | HaveNone | None = None  # kept while num_pieces is unknown
        self._pending_haves = bytearray()  # bitset of haves while num_pieces is unknown

        # us
        self.am_choking = True
        self.am_interested = False
        #: what we told the peer we have (None until num_pieces is known)
        self.we_have: Bitfield | None = None
        self._we_have_all = False
        self._our_first_pending = True
        #: pieces we let the peer request while choked (BEP 6)
        self.allowed_fast_out: set[int] = set()
        #: our requests the peer has not answered
        self.outstanding: set[Block] = set()
        #: our requests that were cancelled / dropped: a piece for them is unwanted, not an error
        self._late: dict[Block, None] = {}
        #: extended ids we told the peer to use -> extension name
        self._our_ext_names: dict[int, str] = {}

        if num_pieces is not None:
            self.set_num_pieces(num_pieces, piece_size)

    # ------------------------------------------------------------------
    # negotiated features and small queries

    @property
    def peer_supports_fast(self) -> bool:
        return bool(self.peer_reserved[7] & 0x04)

    @property
    def peer_supports_extensions(self) -> bool:
        return bool(self.peer_reserved[5] & 0x10)

    @property
    def peer_supports_dht(self) -> bool:
        return bool(self.peer_reserved[7] & 0x01)

    @property
    def fast_enabled(self) -> bool:
        """BEP 6 is in force: both handshakes set the fast bit."""
        return bool(self.our_reserved[7] & 0x04) and self.peer_supports_fast

    @property
    def extensions_enabled(self) -> bool:
        """BEP 10 is in force: both handshakes set the extension bit."""
        return bool(self.our_reserved[5] & 0x10) and self.peer_supports_extensions

    @property
    def handshake_complete(self) -> bool:
        return self.peer_id is not None and self._handshake_sent

    def peer_ext_id(self, name: str) -> int | None:
        """The id the peer wants for extension ``name`` (e.g. ``"ut_metadata"``), or ``None``."""
        if self.peer_extensions is None or not self.extensions_enabled:
            return None
        return self.peer_extensions.ext_id(name)

    @property
    def peer_metadata_size(self) -> int | None:
        return None if self.peer_extensions is None else self.peer_extensions.metadata_size

    @property
    def peer_reqq(self) -> int | None:
        """How many requests the peer says it queues (BEP 10 ``reqq``)."""
        return None if self.peer_extensions is None else self.peer_extensions.reqq

    def is_requested(self, index: int, begin: int, length: int) -> bool:
        """True while the peer still expects an answer (piece or reject) to this request."""
        key = (index, begin, length)
        return key in self.incoming or key in self.owed_rejects

    def initial_have_message(self, have: Bitfield | None) -> Message | None:
        """What to send right after the handshakes to say what we have.

        With the fast extension: have-all / have-none / bitfield; without it the
        bitfield, or nothing when we have nothing (BEP 3 allows that).
        ``have=None`` means we do not have the metadata yet.
        """
        empty = have is None or len(have) == 0
        if self.fast_enabled:
            if empty:
                return HaveNone()
            assert have is not None
            return HaveAll() if have.complete else BitfieldMsg(have.to_bytes())
        if empty:
            return None
        assert have is not None
        return BitfieldMsg(have.to_bytes())

    # ------------------------------------------------------------------
    # configuration

    def set_geometry(self, geometry: Geometry) -> None:
        """Piece count and sizes from the torrent's geometry (requests are then bounds-checked)."""
        self.set_num_pieces(geometry.num_pieces, geometry.piece_size)

    def set_num_pieces(self, num_pieces: int, piece_size: Callable[[int], int] | None = None) -> None:
        """The torrent's piece count, once known (at once, or when a magnet's metadata arrives).

        What the peer sent meanwhile is checked now; a violation is raised by the
        next :meth:`next_event` call.
        """
        if num_pieces < 0:
            raise ValueError("num_pieces must be >= 0")
        if piece_size is not None:
            self.piece_size = piece_size
        if self.num_pieces is not None:
            if num_pieces != self.num_pieces:
                raise LocalProtocolError(f"piece count already set to {self.num_pieces}, not {num_pieces}")
            return
        self.num_pieces = num_pieces
        self._parser.set_num_pieces(num_pieces)
        self.we_have = Bitfield(num_pieces, full=self._we_have_all)
        try:
            self._apply_pending_peer_state(num_pieces)
        except RemoteProtocolError as exc:
            self._pending_error = exc

    def _apply_pending_peer_state(self, n: int) -> None:
        first, self._peer_first = self._peer_first, None
        if isinstance(first, BitfieldMsg):
            has = _peer_bitfield(first.data, n)
        else:
            has = Bitfield(n, full=isinstance(first, HaveAll))
        nbytes = (n + 7) // 8
        bits, self._pending_haves = self._pending_haves, bytearray()
        if any(bits[nbytes:]):
            raise RemoteProtocolError(f"the peer sent 'have' for a piece past the last one ({n} pieces)")
        try:
            haves = Bitfield.from_bytes(bytes(bits[:nbytes]).ljust(nbytes, b"\0"), n)
        except ValueError:
            raise RemoteProtocolError(f"'have' for a piece past the last ({n} pieces)") from None
        for index in haves:
            has.add(index)
        self.peer_has = has
        self.allowed_fast_in = {i for i in self.allowed_fast_in if i < n}  # past the end: ignored

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
        _require(
            hs.info_hash == self.info_hash,
            f"the peer's handshake is for torrent {hs.info_hash.hex()}, not {self.info_hash.hex()}",
        )
        _require(hs.peer_id != self.our_peer_id, "connected to ourselves (the peer id is ours)")
        self.peer_id = hs.peer_id
        self.peer_reserved = hs.reserved
        self.state = ConnectionState.FIRST
        if self.num_pieces is not None:
            self.peer_has = Bitfield(self.num_pieces)
        return HandshakeReceived(hs.info_hash, hs.peer_id, hs.reserved)

    def _check_index(self, index: int, what: str) -> None:
        if self.num_pieces is not None:
            _require(index < self.num_pieces, f"{what} for piece {index} past the last ({self.num_pieces})")

    def _require_fast(self, msg: Message) -> None:
        _require(
            self.fast_enabled,
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
                if not first:
                    self._receive_later_have_set(msg)
                    return
                if self.num_pieces is None:
                    self._peer_first = msg
                elif isinstance(msg, BitfieldMsg):
                    self.peer_has = _peer_bitfield(msg.data, self.num_pieces)
                else:
                    self.peer_has = Bitfield(self.num_pieces, full=isinstance(msg, HaveAll))
                emit(msg)
            case Have(index=index):
                self._check_index(index, "have")
                if self.peer_has is not None:
                    self.peer_has.add(index)
                else:
                    limit = 8 * self.limits.max_unknown_bitfield
                    _require(index < limit, f"have for piece {index}, more than any torrent we accept")
                    byte = index >> 3
                    if byte >= len(self._pending_haves):
                        self._pending_haves.extend(bytes(byte + 1 - len(self._pending_haves)))
                    self._pending_haves[byte] |= 0x80 >> (index & 7)
                emit(msg)
            case Choke():
                self.peer_choking = True
                emit(msg)
                if not self.fast_enabled and self.outstanding:
                    dropped = tuple(sorted(self.outstanding))
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
        if isinstance(msg, HaveAll):
            new = Bitfield(self.num_pieces, full=True)
        else:
            new = _peer_bitfield(msg.data, self.num_pieces)
        for index in new:
            if index not in self.peer_has:
                self.peer_has.add(index)
                self._events.append(Have(index))

    def _check_unrequested_piece(self, index: int, begin: int, length: int) -> None:
        """A piece nobody asked for is wasted, not fatal; one that cannot be a block is (as libtorrent)."""
        n = self.num_pieces
        _require(n is None or index < n, f"piece {index} past the last ({n})")
        if n is not None and self.piece_size is not None:
            size = self.piece_size(index)
            _require(begin + length <= size, f"piece {index} begin {begin} length {length} past its end")
        wrong = [k for k in self.outstanding if k[0] == index and k[1] == begin]
        _require(not wrong, f"piece {index} begin {begin} of {length} bytes; we asked for {wrong[:1]}")

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
            _require(
                len(self.incoming) + len(self.owed_rejects) < 2 * cap,
                f"the peer flooded us with more than {2 * cap} unanswered requests",
                ban=True,
            )
            self.owed_rejects.add(key)
        self._events.append(RequestDenied(index, begin, length, reason, self.fast_enabled))

    def _remember_late(self, key: Block) -> None:
        self._late[key] = None
        while len(self._late) > self.limits.max_late_blocks:
            del self._late[next(iter(self._late))]

    # ------------------------------------------------------------------
    # sending

    def handshake_bytes(self) -> bytes:
        """Our 68-byte handshake (call once)."""
        if self._handshake_sent:
            raise LocalProtocolError("our handshake was already sent")
        if self.info_hash is None:
            raise LocalProtocolError("a receiver sends its handshake after the peer's (info hash unknown)")
        self._handshake_sent = True
        return Handshake(self.info_hash, self.our_peer_id, self.our_reserved).encode()

    def send(self, msg: Message | ExtensionHandshake | MetadataMessage) -> bytes:
        """Bytes for one message, after applying it to our side of the state.

        Raises :class:`LocalProtocolError` if the message breaks a rule.  Returns
        ``b""`` for a piece or reject the peer no longer expects (see the module doc).
        """
        return b"".join(self._send(msg))

    def send_piece(self, index: int, begin: int, data: bytes | memoryview) -> list[bytes | memoryview]:
        """A piece as ``[header, data]`` for ``writelines`` (data not copied); ``[]`` if no longer wanted."""
        if not self._answer_request((index, begin, len(data))):
            return []
        return [encode_piece_header(index, begin, len(data)), data]

    def _check_can_send(self) -> None:
        if not self._handshake_sent:
            raise LocalProtocolError("send our handshake before any message")
        if self.peer_id is None:
            raise LocalProtocolError("wait for the peer's handshake before sending messages")

    def _check_our_index(self, index: int, what: str) -> None:
        if self.num_pieces is None:
            raise LocalProtocolError(f"cannot send {what} before the piece count is known")
        if not 0 <= index < self.num_pieces:
            raise LocalProtocolError(f"{what} for piece {index} out of range ({self.num_pieces} pieces)")

    def _require_our_fast(self, msg: object) -> None:
        if not self.fast_enabled:
            raise LocalProtocolError(f"cannot send {type(msg).__name__}: fast extension not negotiated")

    def _answer_request(self, key: Block) -> bool:
        """Mark the peer's request answered; False if it no longer expects an answer."""
        self._check_can_send()
        if key in self.incoming:
            self.incoming.discard(key)
            return True
        if key in self.owed_rejects:
            self.owed_rejects.discard(key)
            return True
        return False

    def _send(self, msg: Message | ExtensionHandshake | MetadataMessage) -> list[bytes]:
        """Apply one message of ours to the state; return the bytes to write."""
        self._check_can_send()
        if isinstance(msg, ExtensionHandshake | MetadataRequest | MetadataData | MetadataReject):
            if not self.extensions_enabled:
                raise LocalProtocolError("cannot send BEP 10 messages: extensions are not negotiated")
            if isinstance(msg, ExtensionHandshake):
                for name, ext_id in msg.m.items():
                    for old in [k for k, v in self._our_ext_names.items() if v == name]:
                        del self._our_ext_names[old]
                    if ext_id:
                        self._our_ext_names[ext_id] = name
                return [encode(Extended(0, msg.encode()))]
            peer_id = self.peer_ext_id(UT_METADATA)
            if peer_id is None:
                raise LocalProtocolError("the peer does not support ut_metadata")
            return [encode(Extended(peer_id, encode_metadata_message(msg)))]

        if self._our_first_pending and not isinstance(msg, _BEFORE_BITFIELD):
            self._our_first_pending = False
            first = True
        else:
            first = False

        match msg:
            case BitfieldMsg() | HaveAll() | HaveNone():
                if not isinstance(msg, BitfieldMsg):
                    self._require_our_fast(msg)
                if not first:
                    raise LocalProtocolError(f"{type(msg).__name__} may only be our first message")
                if isinstance(msg, BitfieldMsg):
                    if self.num_pieces is None:
                        raise LocalProtocolError("cannot send a bitfield before the piece count is known")
                    try:
                        self.we_have = Bitfield.from_bytes(msg.data, self.num_pieces)
                    except ValueError as exc:
                        raise LocalProtocolError(f"bad bitfield: {exc}") from None
                elif isinstance(msg, HaveAll):
                    self._we_have_all = True
                    if self.num_pieces is not None:
                        self.we_have = Bitfield(self.num_pieces, full=True)
            case Have(index=index):
                self._check_our_index(index, "have")
                assert self.we_have is not None
                self.we_have.add(index)
            case Choke():
                self.am_choking = True
                if self.fast_enabled:
                    rejects = [k for k in self.incoming if k[0] not in self.allowed_fast_out]
                    for key in rejects:
                        self.incoming.discard(key)
                    return [encode(msg), *(encode(RejectRequest(*k)) for k in sorted(rejects))]
                self.incoming.clear()  # BEP 3: a choke discards the peer's requests
            case Unchoke():
                self.am_choking = False
            case Interested():
                self.am_interested = True
            case NotInterested():
                self.am_interested = False
            case Request(index=index, begin=begin, length=length):
                self._apply_request(index, begin, length)
            case Cancel(index=index, begin=begin, length=length):
                key = (index, begin, length)
                if key in self.outstanding:
                    self.outstanding.discard(key)
                    self._remember_late(key)
            case Piece(index=index, begin=begin, data=data):
                if not self._answer_request((index, begin, len(data))):
                    return []
            case RejectRequest(index=index, begin=begin, length=length):
                self._require_our_fast(msg)
                if not self._answer_request((index, begin, length)):
                    return []
            case Suggest(index=index):
                self._require_our_fast(msg)
                self._check_our_index(index, "suggest")
            case AllowedFast(index=index):
                self._require_our_fast(msg)
                self._check_our_index(index, "allowed-fast")
                self.allowed_fast_out.add(index)
            case Extended():
                if not self.extensions_enabled:
                    raise LocalProtocolError("cannot send BEP 10 messages: extensions are not negotiated")
            case KeepAlive() | Port():
                pass
        return [encode(msg)]

    def _apply_request(self, index: int, begin: int, length: int) -> None:
        """Our request for a block: the rules, then it counts as outstanding."""
        key = (index, begin, length)
        self._check_our_index(index, "request")
        if not 0 < length <= self.limits.max_request_length:
            raise LocalProtocolError(f"request for {length} bytes")
        if self.piece_size is not None and begin + length > self.piece_size(index):
            raise LocalProtocolError(f"request {begin}+{length} runs past the end of piece {index}")
        if self.peer_choking and not (self.fast_enabled and index in self.allowed_fast_in):
            raise LocalProtocolError("cannot request while choked (piece not allowed-fast)")
        if key in self.outstanding:
            raise LocalProtocolError(f"block {key} is already requested from this peer")
        self.outstanding.add(key)
        self._late.pop(key, None)

    def send_requests(self, blocks: Iterable[tuple[int, int, int]]) -> bytes:
        """Bytes for many requests at once: the download hot path, same rules as ``send(Request)``."""
        self._check_can_send()
        self._our_first_pending = False
        out = bytearray()
        pack = _REQUEST.pack
        for index, begin, length in blocks:
            self._apply_request(index, begin, length)
            out += pack(13, MessageId.REQUEST, index, begin, length)
        return bytes(out)

    def send_all(self, msgs: Iterable[Message | ExtensionHandshake | MetadataMessage]) -> bytes:
        """:meth:`send` for several messages, joined."""
        return b"".join(self.send(m) for m in msgs)
