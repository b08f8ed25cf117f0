"""What a :class:`~p2pshare.core.wire.connection.PeerConnection` reports besides the messages themselves.

``next_event()`` returns either a wire message (:mod:`.messages`: ``Have``,
``Piece``, ``Request`` ...), a ut_metadata message (:mod:`.metadata`), or one of
the events below.  All are frozen, slotted dataclasses named for what happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pshare.core.geometry import BlockRef
from p2pshare.core.wire.extension import ExtensionHandshake
from p2pshare.core.wire.messages import Message, _ReservedBits
from p2pshare.core.wire.metadata import MetadataData, MetadataReject, MetadataRequest

__all__ = [
    "Event",
    "ExtensionHandshakeReceived",
    "HandshakeReceived",
    "PeerClosed",
    "RequestDenied",
    "RequestsDropped",
    "UnwantedPiece",
]


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
    def block(self) -> BlockRef:
        return BlockRef(self.index, self.begin, self.length)


@dataclass(frozen=True, slots=True)
class RequestsDropped:
    """A non-fast peer choked us: these requests of ours will not be answered (return them to the picker)."""

    blocks: tuple[BlockRef, ...]


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
