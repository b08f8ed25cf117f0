"""The asyncio uTP adapter: links over real UDP sockets on loopback, and the socket shared with the DHT."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from dataclasses import replace

import pytest

from p2pshare.config import DhtConfig, UtpConfig
from p2pshare.core import bencode
from p2pshare.core.dht import krpc
from p2pshare.core.dht.node import DhtNode
from p2pshare.io.dht_endpoint import DhtEndpoint
from p2pshare.io.utp_socket import UtpLink, UtpSocket

CFG = UtpConfig()


class Sink:
    """A Link consumer that keeps everything it was given."""

    def __init__(self, link: UtpLink) -> None:
        self.link = link
        self.data = bytearray()
        self.closed: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        link.set_handlers(self.on_data, self.on_close)

    def on_data(self, view: memoryview) -> None:
        self.data += view

    def on_close(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)

    async def wait_for(self, n: int, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.data) < n:
                await asyncio.sleep(0.005)


async def pair(config: UtpConfig = CFG) -> tuple[UtpSocket, UtpSocket, asyncio.Queue[UtpLink]]:
    accepted: asyncio.Queue[UtpLink] = asyncio.Queue()
    a = await UtpSocket.open("127.0.0.2", 0, config)
    b = await UtpSocket.open("127.0.0.3", 0, config, on_accept=accepted.put_nowait)
    return a, b, accepted


async def test_big_transfer_arrives_whole_and_in_order() -> None:
    """Twenty megabytes written on one side arrive byte for byte on the other, with flow control."""
    a, b, accepted = await pair()
    try:
        link = await a.connect(b.local_address, timeout=5)
        sink = Sink(await asyncio.wait_for(accepted.get(), 5))
        Sink(link)
        payload = os.urandom(20 * 1024 * 1024)
        view = memoryview(payload)
        max_buffered = 0
        for off in range(0, len(view), 256 * 1024):
            link.write(view[off : off + 256 * 1024])
            max_buffered = max(max_buffered, link.write_buffer_size)
            if not link.writable:
                await link.wait_writable()
        await sink.wait_for(len(payload), timeout=60)
        assert hashlib.sha1(sink.data).digest() == hashlib.sha1(payload).digest()
        assert max_buffered <= CFG.write_high_water + 256 * 1024
    finally:
        a.close()
        b.close()


async def test_both_directions_and_close_reaches_the_peer() -> None:
    """Bytes flow both ways, and closing one side closes the other with no error."""
    a, b, accepted = await pair()
    try:
        link = await a.connect(b.local_address, timeout=5)
        ours = Sink(link)
        link.write(b"hello from a")
        theirs = Sink(await asyncio.wait_for(accepted.get(), 5))
        await theirs.wait_for(12)
        theirs.link.write(b"hello from b")
        await ours.wait_for(12)
        assert bytes(theirs.data) == b"hello from a" and bytes(ours.data) == b"hello from b"
        link.close()
        assert link.closed
        assert await asyncio.wait_for(theirs.closed, 10) is None
        assert await asyncio.wait_for(ours.closed, 1) is None
    finally:
        a.close()
        b.close()


async def test_paused_reader_shrinks_window_and_stalls_writer() -> None:
    """While the receiver pauses reading, the sender's buffer fills up; resuming drains it."""
    cfg = replace(CFG, recv_buffer=256 * 1024, write_high_water=128 * 1024, write_low_water=32 * 1024)
    a, b, accepted = await pair(cfg)
    try:
        link = await a.connect(b.local_address, timeout=5)
        Sink(link)
        sink = Sink(await asyncio.wait_for(accepted.get(), 5))
        sink.link.pause_reading()
        link.write(os.urandom(2 * 1024 * 1024))
        await asyncio.sleep(0.5)
        assert len(sink.data) == 0
        assert not link.writable  # the peer's window is shut: the bytes stay with us
        assert link.write_buffer_size >= 2 * 1024 * 1024 - cfg.recv_buffer - 2 * cfg.large_packet_size
        sink.link.resume_reading()
        await sink.wait_for(2 * 1024 * 1024)
        async with asyncio.timeout(5):
            await link.wait_writable()
    finally:
        a.close()
        b.close()


async def test_connect_to_a_silent_port_is_refused_in_time() -> None:
    """A connect to a port where nobody answers fails with a timeout, not a hang."""
    cfg = replace(CFG, initial_rto=0.05, syn_retransmits=1)
    a = await UtpSocket.open("127.0.0.2", 0, cfg)
    silent = await UtpSocket.open("127.0.0.3", 0, cfg)  # no on_accept: SYNs go unanswered
    try:
        with pytest.raises((ConnectionRefusedError, TimeoutError)):
            await a.connect(silent.local_address, timeout=5)
        assert len(a.manager) == 0
    finally:
        a.close()
        silent.close()


async def test_abort_resets_the_peer() -> None:
    """Aborting a link tells the peer with ST_RESET, which sees ConnectionResetError."""
    a, b, accepted = await pair()
    try:
        link = await a.connect(b.local_address, timeout=5)
        Sink(link)
        link.write(b"x")
        theirs = Sink(await asyncio.wait_for(accepted.get(), 5))
        await theirs.wait_for(1)
        link.abort()
        assert isinstance(await asyncio.wait_for(theirs.closed, 5), ConnectionResetError)
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("mode", ["open_with_dht", "over_dht"])
async def test_shares_the_dht_socket(mode: str) -> None:
    """One UDP socket serves a live DHT node and uTP: KRPC goes to the node, uTP to the manager."""
    dcfg = DhtConfig(bootstrap=())
    accepted: asyncio.Queue[UtpLink] = asyncio.Queue()

    def node(now: float) -> DhtNode:
        return DhtNode(dcfg, now=now, rng=random.Random(1))

    if mode == "over_dht":
        dht = await DhtEndpoint.open(node, host="127.0.0.3", port=0, config=dcfg)
        shared = UtpSocket.over_dht(dht, CFG, on_accept=accepted.put_nowait)
    else:
        shared, dht = await UtpSocket.open_with_dht(
            node, host="127.0.0.3", port=0, dht_config=dcfg, config=CFG, on_accept=accepted.put_nowait
        )
    client = await UtpSocket.open("127.0.0.2", 0, CFG)
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[bytes] = asyncio.Queue()

    class Krpc(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            got.put_nowait(data)

    tr, _ = await loop.create_datagram_endpoint(Krpc, local_addr=("127.0.0.4", 0))
    try:
        assert shared.local_address == dht.local_address
        link = await client.connect(dht.local_address, timeout=5)
        Sink(link)
        payload = os.urandom(3 * 1024 * 1024)
        link.write(payload)
        sink = Sink(await asyncio.wait_for(accepted.get(), 5))
        tr.sendto(krpc.encode_query(b"p1", b"ping", {b"id": b"\x11" * 20}), dht.local_address)
        await sink.wait_for(len(payload))
        assert bytes(sink.data) == payload
        async with asyncio.timeout(5):
            while True:
                reply = bencode.decode(await got.get())
                if reply[b"y"] == b"r":
                    break
        assert reply[b"t"] == b"p1"
        assert shared.manager.stats["malformed"] == 0
        assert shared.manager.stats["datagrams_in"] > 0
    finally:
        tr.close()
        client.close()
        dht.close()
        shared.close()


async def test_dht_endpoint_hands_only_non_krpc_datagrams_to_the_hook() -> None:
    """Datagrams starting with b'd' stay with the DHT node; anything else goes to the hook, unparsed."""
    dcfg = DhtConfig(bootstrap=())
    dht = await DhtEndpoint.open(
        lambda now: DhtNode(dcfg, now=now, rng=random.Random(1)), host="127.0.0.3", port=0, config=dcfg
    )
    foreign: list[tuple[bytes, tuple[str, int]]] = []
    dht.on_foreign_datagram = lambda data, addr: foreign.append((data, addr))
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[bytes] = asyncio.Queue()

    class Krpc(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            got.put_nowait(data)

    tr, _ = await loop.create_datagram_endpoint(Krpc, local_addr=("127.0.0.4", 0))
    try:
        tr.sendto(b"\x41\x00" + bytes(18), dht.local_address)
        tr.sendto(krpc.encode_query(b"p2", b"ping", {b"id": b"\x22" * 20}), dht.local_address)
        async with asyncio.timeout(5):
            while True:
                reply = bencode.decode(await got.get())
                if reply[b"y"] == b"r":
                    break
        assert reply[b"t"] == b"p2"
        assert [d for d, _ in foreign] == [b"\x41\x00" + bytes(18)]
        assert foreign[0][1][0] == "127.0.0.4"
        dht.sendto(b"\x21uTP out", foreign[0][1])
        async with asyncio.timeout(5):
            assert await got.get() == b"\x21uTP out"
    finally:
        tr.close()
        dht.close()


async def test_bytes_before_set_handlers_are_delivered_inside_it() -> None:
    """Data that arrived before the consumer attached is handed over, in order, within set_handlers."""
    a, b, accepted = await pair()
    try:
        link = await a.connect(b.local_address, timeout=5)
        Sink(link)
        link.write(b"early bytes")
        theirs = await asyncio.wait_for(accepted.get(), 5)
        await asyncio.sleep(0.3)  # the bytes are here, held for the consumer
        sink = Sink(theirs)
        assert bytes(sink.data) == b"early bytes"
    finally:
        a.close()
        b.close()


async def test_works_over_ipv6_loopback() -> None:
    """Two sockets on ::1 connect and move a megabyte in large packets."""
    accepted: asyncio.Queue[UtpLink] = asyncio.Queue()
    a = await UtpSocket.open("::1", 0, CFG)
    b = await UtpSocket.open("::1", 0, CFG, on_accept=accepted.put_nowait)
    try:
        link = await a.connect(b.local_address, timeout=5)
        Sink(link)
        payload = os.urandom(1024 * 1024)
        link.write(payload)
        sink = Sink(await asyncio.wait_for(accepted.get(), 5))
        await sink.wait_for(len(payload))
        assert bytes(sink.data) == payload
        assert a.manager.connection(link._handle).mss > 60_000
    finally:
        a.close()
        b.close()
