"""Shared helpers for the wire tests: a fake link joining two PeerConnections (h11 ConnectionPair)."""

from __future__ import annotations

from collections.abc import Iterable

from p2pshare.config import WireLimits
from p2pshare.core.geometry import Geometry
from p2pshare.core.wire import (
    Event,
    HandshakeReceived,
    Message,
    MessageParser,
    PeerClosed,
    PeerConnection,
)

INFO_HASH = bytes(range(20))
PEER_A = b"-PS0100-aaaaaaaaaaaa"
PEER_B = b"-LT2000-bbbbbbbbbbbb"


def split_every_way(data: bytes) -> Iterable[list[bytes]]:
    """Yield ``data`` whole, byte by byte, and cut in two at every point."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def parse_all(
    chunks: Iterable[bytes], limits: WireLimits | None = None, num_pieces: int | None = None
) -> list[Message]:
    parser = MessageParser(limits or WireLimits(), num_pieces)
    out: list[Message] = []
    for chunk in chunks:
        parser.feed(chunk)
        while (msg := parser.next_message()) is not None:
            out.append(msg)
    assert parser.buffered == 0
    return out


def drain(conn: PeerConnection) -> list[Event]:
    events: list[Event] = []
    while (event := conn.next_event()) is not None:
        events.append(event)
        if isinstance(event, PeerClosed):
            break
    return events


class Pair:
    """Two connections, ``a`` (initiator) and ``b`` (receiver), joined by an in-memory link."""

    def __init__(
        self,
        *,
        geometry: Geometry | None = None,
        num_pieces: int | None = 8,
        a_fast: bool = True,
        b_fast: bool = True,
        a_ext: bool = True,
        b_ext: bool = True,
        limits: WireLimits | None = None,
        handshake: bool = True,
    ) -> None:
        self.geometry = geometry
        n = geometry.num_pieces if geometry is not None else num_pieces
        self.a = PeerConnection(
            INFO_HASH, PEER_A, initiator=True, num_pieces=n, limits=limits, fast=a_fast, extensions=a_ext
        )
        self.b = PeerConnection(
            INFO_HASH, PEER_B, initiator=False, num_pieces=n, limits=limits, fast=b_fast, extensions=b_ext
        )
        if geometry is not None:
            self.a.set_geometry(geometry)
            self.b.set_geometry(geometry)
        if handshake:
            self.handshake()

    def handshake(self) -> None:
        events = self.to_b(self.a.handshake_bytes())
        assert isinstance(events[0], HandshakeReceived)
        events = self.to_a(self.b.handshake_bytes())
        assert isinstance(events[0], HandshakeReceived)

    def to_b(self, data: bytes) -> list[Event]:
        self.b.receive_data(data)
        return drain(self.b)

    def to_a(self, data: bytes) -> list[Event]:
        self.a.receive_data(data)
        return drain(self.a)

    def a_sends(self, *msgs: object) -> list[Event]:
        """``a`` sends each message; return what ``b`` makes of them."""
        return self.to_b(b"".join(self.a.send(m) for m in msgs))  # type: ignore[arg-type]

    def b_sends(self, *msgs: object) -> list[Event]:
        """``b`` sends each message; return what ``a`` makes of them."""
        return self.to_a(b"".join(self.b.send(m) for m in msgs))  # type: ignore[arg-type]
