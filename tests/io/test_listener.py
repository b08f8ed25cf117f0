"""The listener's sniffing of the first bytes: plain handshake routed, anything else to ``on_other``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from p2pshare.io.link import Link
from p2pshare.io.listener import Listener
from p2pshare.io.peer_link import PeerLink

PLAIN = b"\x13BitTorrent protocol" + bytes(8) + b"\x11" * 20 + b"\x22" * 20
MSE_LIKE = b"\x13BitTorrent protocoX" + b"\x99" * 120  # differs at byte 19 only


class Seen:
    def __init__(self) -> None:
        self.routed: list[tuple[bytes, bytearray]] = []  #: (info hash, bytes the link delivered)
        self.other: list[bytearray] = []  #: bytes each on_other link delivered
        self.links: list[Link] = []

    def route(self, info_hash: bytes, link: Link) -> bool:
        got = bytearray()
        link.set_handlers(got.extend, lambda e: None)
        self.routed.append((info_hash, got))
        self.links.append(link)
        return True

    def on_other(self, link: PeerLink) -> None:
        got = bytearray()
        link.set_handlers(got.extend, lambda e: None)
        self.other.append(got)
        self.links.append(link)


@pytest.fixture
async def seen() -> AsyncIterator[Seen]:
    yield Seen()


async def _send_in_two(
    listener: Listener, data: bytes, split: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(data[:split])
    await writer.drain()
    await asyncio.sleep(0.01)
    writer.write(data[split:])
    await writer.drain()
    return reader, writer


async def _wait(predicate: object, what: str) -> None:
    assert callable(predicate)
    async with asyncio.timeout(5):
        while not predicate():
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("split", [1, 5, 19, 20, 21, 47, 48, 67])
async def test_plain_handshake_is_routed_whole_at_every_split(seen: Seen, split: int) -> None:
    """A plain handshake sent in two parts is routed by its info hash with every byte put back."""
    listener = Listener(seen.route, on_other=seen.on_other)
    await listener.start("127.0.0.1", 0)
    data = PLAIN + b"\x00\x00\x00\x00"
    _, writer = await _send_in_two(listener, data, split)
    await _wait(lambda: seen.routed and len(seen.routed[0][1]) == len(data), "the route and every byte")
    assert seen.routed[0] == (b"\x11" * 20, data)  # the info hash, bytes 28..48
    assert not seen.other
    writer.close()
    await listener.close()


@pytest.mark.parametrize("split", [1, 10, 19, 20, 50])
async def test_other_first_bytes_go_to_on_other_with_bytes_put_back(seen: Seen, split: int) -> None:
    """Bytes that leave the BitTorrent header (even at byte 19) go to on_other, none lost."""
    listener = Listener(seen.route, on_other=seen.on_other)
    await listener.start("127.0.0.1", 0)
    _, writer = await _send_in_two(listener, MSE_LIKE, split)
    await _wait(lambda: seen.other and len(seen.other[0]) == len(MSE_LIKE), "on_other and every byte")
    assert seen.other[0] == MSE_LIKE
    assert isinstance(seen.links[0], PeerLink)
    assert not seen.routed
    writer.close()
    await listener.close()


async def test_without_on_other_non_bittorrent_is_closed(seen: Seen) -> None:
    """With no on_other, a connection that does not open with the BitTorrent header is closed."""
    listener = Listener(seen.route)
    await listener.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(b"\x00" * 96)
    async with asyncio.timeout(5):
        assert await reader.read(100) == b""
    writer.close()
    await listener.close()


async def test_plain_false_closes_a_plain_peer_but_not_a_lookalike(seen: Seen) -> None:
    """Under require (plain=False) a full plain header is closed; a lookalike still goes to on_other."""
    listener = Listener(seen.route, on_other=seen.on_other, plain=False)
    await listener.start("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    writer.write(PLAIN)
    async with asyncio.timeout(5):
        assert await reader.read(100) == b""
    writer.close()
    _, writer2 = await _send_in_two(listener, MSE_LIKE, 19)
    await _wait(lambda: seen.other, "on_other")
    assert not seen.routed
    writer2.close()
    await listener.close()
