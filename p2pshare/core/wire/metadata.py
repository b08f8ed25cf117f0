"""BEP 9 ut_metadata: fetching the info dict from peers, and serving it.

Messages are a bencoded dict (``msg_type`` 0 request / 1 data / 2 reject, and
``piece``); a data message carries ``total_size`` and the piece's bytes follow the
dict inside the same extended message.

:class:`MetadataFetcher` is a sans-I/O scheduler over the 16 KiB metadata pieces:
the engine asks it which piece to request from a peer, feeds it what arrived, and
calls :meth:`MetadataFetcher.handle_timer` with the current time so that a piece
whose requester went quiet is handed to another peer.  Once every piece is in, the
SHA-1 of the concatenation must equal the info hash; on a mismatch everything is
thrown away and the peers that contributed are reported so the engine can drop them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from p2pshare.config import MetainfoLimits, SwarmConfig
from p2pshare.core import bencode
from p2pshare.errors import BencodeError, LocalProtocolError, RemoteProtocolError, Violation

__all__ = [
    "METADATA_PIECE_SIZE",
    "MetadataComplete",
    "MetadataData",
    "MetadataFetcher",
    "MetadataHashMismatch",
    "MetadataMessage",
    "MetadataReject",
    "MetadataRequest",
    "decode_metadata_message",
    "encode_metadata_message",
    "metadata_piece",
    "metadata_response",
]

#: BEP 9: metadata is exchanged in 16 KiB pieces; only the last may be shorter.
METADATA_PIECE_SIZE = 16 * 1024

#: The engine's name for a peer: any hashable (a connection object, an address, an id).
K = TypeVar("K", bound=Hashable)

_REQUEST, _DATA, _REJECT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class MetadataRequest:
    """The peer asks for metadata piece ``piece``."""

    piece: int


@dataclass(frozen=True, slots=True)
class MetadataData:
    """Metadata piece ``piece`` of a ``total_size``-byte info dict."""

    piece: int
    total_size: int
    data: bytes

    def __repr__(self) -> str:
        size = len(self.data)
        return f"MetadataData(piece={self.piece}, total_size={self.total_size}, data=<{size} bytes>)"


@dataclass(frozen=True, slots=True)
class MetadataReject:
    """The peer will not send metadata piece ``piece`` (usually: it does not have the metadata)."""

    piece: int


MetadataMessage = MetadataRequest | MetadataData | MetadataReject


def encode_metadata_message(msg: MetadataMessage) -> bytes:
    """The extended-message payload (dict, plus the data for a data message)."""
    if isinstance(msg, MetadataRequest):
        return bencode.encode({b"msg_type": _REQUEST, b"piece": msg.piece})
    if isinstance(msg, MetadataReject):
        return bencode.encode({b"msg_type": _REJECT, b"piece": msg.piece})
    if isinstance(msg, MetadataData):
        head = bencode.encode({b"msg_type": _DATA, b"piece": msg.piece, b"total_size": msg.total_size})
        return head + msg.data
    raise LocalProtocolError(f"not a metadata message: {msg!r}")


def decode_metadata_message(payload: bytes) -> MetadataMessage | None:
    """Parse a ut_metadata payload; ``None`` for an unknown ``msg_type`` (BEP 9: ignore it).

    Raises :class:`RemoteProtocolError` when the payload is malformed.
    """
    try:
        d, end = bencode.decode_prefix(payload)
    except BencodeError as exc:
        raise RemoteProtocolError(
            f"ut_metadata message is not valid bencode: {exc}", kind=Violation.MALFORMED
        ) from None
    if not isinstance(d, dict):
        raise RemoteProtocolError(
            "ut_metadata message must start with a bencoded dict", kind=Violation.MALFORMED
        )
    msg_type = d.get(b"msg_type")
    piece = d.get(b"piece")
    if type(msg_type) is not int:
        raise RemoteProtocolError("ut_metadata message without an integer msg_type", kind=Violation.MALFORMED)
    if msg_type not in (_REQUEST, _DATA, _REJECT):
        return None
    if type(piece) is not int or piece < 0:
        raise RemoteProtocolError(
            "ut_metadata message without a valid piece number", kind=Violation.MALFORMED
        )
    if msg_type == _DATA:
        total_size = d.get(b"total_size")
        if type(total_size) is not int or total_size <= 0:
            raise RemoteProtocolError(
                "ut_metadata data message without a valid total_size", kind=Violation.MALFORMED
            )
        data = bytes(payload[end:])
        if len(data) > METADATA_PIECE_SIZE:
            raise RemoteProtocolError(
                f"ut_metadata piece of {len(data)} bytes (max {METADATA_PIECE_SIZE})",
                kind=Violation.TOO_LARGE,
            )
        return MetadataData(piece, total_size, data)
    if end != len(payload):
        raise RemoteProtocolError(
            "trailing bytes after a ut_metadata request/reject", kind=Violation.MALFORMED
        )
    return MetadataRequest(piece) if msg_type == _REQUEST else MetadataReject(piece)


def metadata_piece(raw: bytes, index: int) -> bytes:
    """Piece ``index`` of the info dict ``raw``, for serving; IndexError if out of range."""
    count = math.ceil(len(raw) / METADATA_PIECE_SIZE)
    if not 0 <= index < count:
        raise IndexError(f"metadata piece {index} out of range 0..{count - 1}")
    return raw[index * METADATA_PIECE_SIZE : (index + 1) * METADATA_PIECE_SIZE]


def metadata_response(raw: bytes | None, piece: int) -> MetadataData | MetadataReject:
    """The answer to a request for ``piece``: its data if we have the metadata, else a reject."""
    if raw is None or not 0 <= piece * METADATA_PIECE_SIZE < len(raw):
        return MetadataReject(piece)
    return MetadataData(piece, len(raw), metadata_piece(raw, piece))


# ---------------------------------------------------------------------------
# Fetching


@dataclass(frozen=True, slots=True)
class MetadataComplete:
    """Every piece arrived and the SHA-1 matches the info hash."""

    metadata: bytes


@dataclass(frozen=True, slots=True)
class MetadataHashMismatch(Generic[K]):
    """Every piece arrived but the SHA-1 is wrong; all pieces were discarded.

    ``peers`` sent at least one piece of the bad copy: the engine should drop them.
    """

    peers: frozenset[K]


@dataclass(slots=True)
class _Slot(Generic[K]):
    data: bytes | None = None
    source: K | None = None
    requester: K | None = None
    requested_at: float = 0.0
    #: peers that rejected this piece: not asked for it again (until a hash failure resets all)
    refused: set[K] = field(default_factory=set)
    #: peers that timed out on this piece: asked again only when they have nothing better to do
    slow: set[K] = field(default_factory=set)


class MetadataFetcher(Generic[K]):
    """Schedules and assembles the 16 KiB pieces of one torrent's metadata.

    ``peer_key`` is any hashable the engine uses to name a connection.
    """

    def __init__(
        self,
        info_hash: bytes,
        metadata_size: int,
        max_size: int = MetainfoLimits().max_metadata_size,
        *,
        request_timeout: float = SwarmConfig().metadata_request_timeout,
        max_in_flight_per_peer: int = 4,
    ) -> None:
        if type(metadata_size) is not int or not 0 < metadata_size <= max_size:
            raise RemoteProtocolError(
                f"metadata_size {metadata_size!r} is outside 1..{max_size} bytes", kind=Violation.TOO_LARGE
            )
        self.info_hash = bytes(info_hash)
        self.metadata_size = metadata_size
        self.num_pieces = math.ceil(metadata_size / METADATA_PIECE_SIZE)
        self.request_timeout = request_timeout
        self.max_in_flight_per_peer = max_in_flight_per_peer
        self._slots: list[_Slot[K]] = [_Slot() for _ in range(self.num_pieces)]
        self._received = 0
        self._result: bytes | None = None
        #: how many times a complete copy failed its hash check
        self.hash_failures = 0

    # -- queries -----------------------------------------------------------

    def piece_length(self, piece: int) -> int:
        """Expected length of metadata piece ``piece``."""
        if piece == self.num_pieces - 1:
            return self.metadata_size - piece * METADATA_PIECE_SIZE
        return METADATA_PIECE_SIZE

    @property
    def complete(self) -> bool:
        return self._result is not None

    @property
    def pieces_received(self) -> int:
        return self._received

    def result(self) -> bytes | None:
        """The verified info dict, once complete."""
        return self._result

    def in_flight(self, peer_key: K) -> list[int]:
        """Pieces currently requested from ``peer_key``."""
        return [i for i, s in enumerate(self._slots) if s.requester == peer_key and s.data is None]

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` next has work (the earliest request deadline)."""
        deadlines = [
            s.requested_at + self.request_timeout
            for s in self._slots
            if s.requester is not None and s.data is None
        ]
        return min(deadlines) if deadlines else None

    # -- scheduling --------------------------------------------------------

    def next_request(self, peer_key: K, now: float) -> int | None:
        """A piece to request from ``peer_key`` now (recorded as requested), or ``None``."""
        if self._result is not None:
            return None
        if len(self.in_flight(peer_key)) >= self.max_in_flight_per_peer:
            return None
        fallback: int | None = None
        for index, slot in enumerate(self._slots):
            if slot.data is None and slot.requester is None and peer_key not in slot.refused:
                if peer_key in slot.slow:
                    if fallback is None:
                        fallback = index
                    continue
                return self._assign(index, peer_key, now)
        return None if fallback is None else self._assign(fallback, peer_key, now)

    def _assign(self, index: int, peer_key: K, now: float) -> int:
        slot = self._slots[index]
        slot.requester = peer_key
        slot.requested_at = now
        return index

    def on_reject(self, peer_key: K, piece: int) -> None:
        """``peer_key`` rejected ``piece``: free it for others and do not ask that peer again."""
        if not 0 <= piece < self.num_pieces:
            return
        slot = self._slots[piece]
        slot.refused.add(peer_key)
        if slot.requester == peer_key:
            slot.requester = None

    def forget_peer(self, peer_key: K) -> None:
        """The connection to ``peer_key`` closed: free its requests."""
        for slot in self._slots:
            if slot.requester == peer_key and slot.data is None:
                slot.requester = None
            slot.refused.discard(peer_key)
            slot.slow.discard(peer_key)

    def handle_timer(self, now: float) -> list[int]:
        """Free pieces whose requester has not answered in ``request_timeout``; return them.

        Another peer takes the piece first (the late one gets it again only when it
        has nothing else to do); the late peer's data is still accepted if it arrives.
        """
        expired: list[int] = []
        for index, slot in enumerate(self._slots):
            if (
                slot.data is None
                and slot.requester is not None
                and now >= slot.requested_at + self.request_timeout
            ):
                slot.slow.add(slot.requester)
                slot.requester = None
                expired.append(index)
        return expired

    def on_data(
        self, peer_key: K, piece: int, data: bytes, total_size: int | None = None
    ) -> MetadataComplete | MetadataHashMismatch[K] | None:
        """Store a piece from ``peer_key``.

        Raises :class:`RemoteProtocolError` if the piece number, ``total_size`` or the
        data length is wrong.  Returns :class:`MetadataComplete` or
        :class:`MetadataHashMismatch` when this piece was the last one, else ``None``.
        """
        if total_size is not None and total_size != self.metadata_size:
            raise RemoteProtocolError(
                f"ut_metadata total_size {total_size} differs from metadata_size {self.metadata_size}",
                kind=Violation.BAD_METADATA,
            )
        if not 0 <= piece < self.num_pieces:
            raise RemoteProtocolError(
                f"ut_metadata piece {piece} out of range 0..{self.num_pieces - 1}",
                kind=Violation.OUT_OF_RANGE,
            )
        expected = self.piece_length(piece)
        if len(data) != expected:
            raise RemoteProtocolError(
                f"ut_metadata piece {piece} has {len(data)} bytes; expected {expected}",
                ban=True,
                kind=Violation.BAD_METADATA,
            )
        slot = self._slots[piece]
        if self._result is not None or slot.data is not None:
            return None  # a duplicate (e.g. after a timeout re-issue): already have it
        slot.data = bytes(data)
        slot.source = peer_key
        slot.requester = None
        self._received += 1
        if self._received < self.num_pieces:
            return None
        metadata = b"".join(s.data for s in self._slots if s.data is not None)
        digest = hashlib.sha256 if len(self.info_hash) == 32 else hashlib.sha1  # BEP 52: v2 by SHA-256
        if digest(metadata).digest() == self.info_hash:
            self._result = metadata
            return MetadataComplete(metadata)
        peers = frozenset(s.source for s in self._slots if s.source is not None)
        self.hash_failures += 1
        self._slots = [_Slot() for _ in range(self.num_pieces)]
        self._received = 0
        return MetadataHashMismatch(peers)
