"""The state one peer link keeps, shared by the receiving and sending rules.

:class:`ConnectionBase` holds everything :class:`~p2pshare.core.wire.connection.PeerConnection`
knows (handshake bits, choke and interest flags, both request sets, the peer's
pieces) and answers the small queries; :mod:`.receiving` applies what the peer
sends and :mod:`.sending` checks what we send.  See :mod:`.connection` for the
rules themselves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from enum import Enum

from p2pshare.config import HashesLimits, WireLimits
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import Geometry
from p2pshare.core.wire.events import (
    Event,
)
from p2pshare.core.wire.extension import ExtensionHandshake
from p2pshare.core.wire.messages import (
    BitfieldMsg,
    HaveAll,
    HaveNone,
    Message,
    make_reserved,
)
from p2pshare.core.wire.parser import MessageParser
from p2pshare.errors import LocalProtocolError, RemoteProtocolError, Violation

__all__ = ["ConnectionBase", "ConnectionState"]

#: How the request sets store blocks: BlockRefs, looked up with plain tuples on the hot path.
Key = tuple[int, int, int]


class ConnectionState(Enum):
    HANDSHAKE = "handshake"  #: waiting for the peer's handshake
    FIRST = "first"  #: handshake done; the peer's bitfield / have-all / have-none may come
    ACTIVE = "active"
    CLOSED = "closed"  #: the peer closed the stream and every event was delivered
    ERROR = "error"  #: the peer broke the protocol


def peer_bitfield(data: bytes, n: int) -> Bitfield:
    """The peer's bitfield for ``n`` pieces; set spare bits are ignored, as libtorrent and Transmission do."""
    spare = len(data) * 8 - n
    if 0 < spare < 8 and data[-1] & ((1 << spare) - 1):
        data = data[:-1] + bytes([data[-1] & (0xFF << spare) & 0xFF])
    try:
        return Bitfield.from_bytes(data, n)
    except ValueError as exc:
        raise RemoteProtocolError(f"bad bitfield: {exc}", kind=Violation.MALFORMED) from None


def require(condition: bool, kind: Violation, message: str, *, ban: bool = False) -> None:
    """Raise RemoteProtocolError(message, kind, ban) unless ``condition`` holds."""
    if not condition:
        raise RemoteProtocolError(message, kind=kind, ban=ban)


class ConnectionBase:
    """The protocol state of one peer link (see :mod:`.connection` for the rules)."""

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
        v2: bool = False,
        hash_limits: HashesLimits | None = None,
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
        self.our_reserved = make_reserved(fast=fast, extensions=extensions, dht=dht, v2=v2)
        self.state = ConnectionState.HANDSHAKE

        self.num_pieces: int | None = None
        self.piece_size: Callable[[int], int] | None = piece_size
        self._parser = MessageParser(self.limits, hash_limits=hash_limits)
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
        self.incoming: set[Key] = set()
        #: the peer's requests we must still answer with RejectRequest (fast only)
        self.owed_rejects: set[Key] = set()
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
        self.outstanding: set[Key] = set()
        #: our requests that were cancelled / dropped: a piece for them is unwanted, not an error
        self._late: dict[Key, None] = {}
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
    def peer_supports_v2(self) -> bool:
        """BEP 52: the peer set the v2 bit (it serves hash requests for a hybrid's v2 half)."""
        return bool(self.peer_reserved[7] & 0x10)

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
            has = peer_bitfield(first.data, n)
        else:
            has = Bitfield(n, full=isinstance(first, HaveAll))
        nbytes = (n + 7) // 8
        bits, self._pending_haves = self._pending_haves, bytearray()
        if any(bits[nbytes:]):
            raise RemoteProtocolError(
                f"the peer sent 'have' for a piece past the last one ({n} pieces)",
                kind=Violation.OUT_OF_RANGE,
            )
        try:
            haves = Bitfield.from_bytes(bytes(bits[:nbytes]).ljust(nbytes, b"\0"), n)
        except ValueError:
            raise RemoteProtocolError(
                f"'have' for a piece past the last ({n} pieces)", kind=Violation.OUT_OF_RANGE
            ) from None
        for index in haves:
            has.add(index)
        self.peer_has = has
        self.allowed_fast_in = {i for i in self.allowed_fast_in if i < n}  # past the end: ignored

    def _remember_late(self, key: Key) -> None:
        self._late[key] = None
        while len(self._late) > self.limits.max_late_blocks:
            del self._late[next(iter(self._late))]
