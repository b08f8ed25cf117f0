"""The asyncio UDP adapter and the DHT state file."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from p2pshare.config import DhtConfig
from p2pshare.core import bencode
from p2pshare.core.dht import krpc
from p2pshare.core.dht.node import DhtNode
from p2pshare.errors import PortInUseError
from p2pshare.io.dht_endpoint import DhtEndpoint, RateLimiter
from p2pshare.io.dht_state import STATE_FILE, DhtState, default_state_dir, load_state, save_state

CFG = DhtConfig(bootstrap=())


async def open_endpoint(config: DhtConfig = CFG, host: str = "127.0.0.1") -> DhtEndpoint:
    return await DhtEndpoint.open(
        lambda now: DhtNode(config, now=now, rng=random.Random(1)), host=host, port=0, config=config
    )


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.got.put_nowait(data)


async def client(host: str = "127.0.0.1") -> tuple[asyncio.DatagramTransport, Client]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(Client, local_addr=(host, 0))
    return transport, proto  # type: ignore[return-value]


def ping(tid: bytes) -> bytes:
    return krpc.encode_query(tid, b"ping", {b"id": b"\x11" * 20})


async def test_answers_ping_over_udp() -> None:
    """A KRPC ping sent to the endpoint's UDP port is answered."""
    ep = await open_endpoint()
    tr, cl = await client()
    try:
        tr.sendto(ping(b"p1"), ep.local_address)
        async with asyncio.timeout(5):
            while True:  # the node may also ping us back to verify us first
                reply = bencode.decode(await cl.got.get())
                if reply[b"y"] == b"r":
                    break
        assert reply[b"t"] == b"p1"
    finally:
        tr.close()
        ep.close()


async def test_incoming_queries_are_rate_limited_per_source() -> None:
    """Nothing beyond the per-source burst is sent: the reply and the verifying ping each take a token."""
    ep = await open_endpoint(replace(CFG, incoming_burst=5, incoming_rate_per_source=0.001))
    tr, cl = await client()
    try:
        for i in range(20):
            tr.sendto(ping(bytes([i])), ep.local_address)
        async with asyncio.timeout(5):
            while ep.stats["datagrams_in"] < 20:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        answers = []
        while not cl.got.empty():
            msg = bencode.decode(cl.got.get_nowait())
            if msg[b"y"] == b"r":
                answers.append(msg[b"t"])
        # Burst 5: the first query costs two tokens (reply, then the ping that verifies us).
        assert answers == [bytes([i]) for i in range(4)]
        assert ep.stats["dropped_rate_limited"] == 16 and ep.node.stats["queries_refused"] == 16
    finally:
        tr.close()
        ep.close()


async def test_oversized_datagrams_are_dropped() -> None:
    """A datagram above max_packet is dropped before the node sees it."""
    ep = await open_endpoint()
    tr, _ = await client()
    try:
        tr.sendto(b"d" + b"x" * 1600 + b"e", ep.local_address)
        async with asyncio.timeout(5):
            while ep.stats["dropped_oversized"] == 0:
                await asyncio.sleep(0.01)
        assert ep.node.stats["received"] == 0
    finally:
        tr.close()
        ep.close()


async def test_outgoing_queue_is_bounded() -> None:
    """When the transport stops accepting writes, datagrams beyond max_outgoing_queue are dropped."""
    ep = await open_endpoint(replace(CFG, max_outgoing_queue=3))
    try:
        ep.pause_writing()
        for i in range(10):
            ep.call(lambda n, now, i=i: n.add_node(("127.0.0.1", 20000 + i), now))
        assert ep.queued == 3 and ep.stats["dropped_queue_full"] == 7
        ep.resume_writing()
        assert ep.queued == 0
    finally:
        ep.close()


async def test_port_in_use_is_reported() -> None:
    """Binding a UDP port that is taken raises PortInUseError."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        with pytest.raises(PortInUseError):
            await DhtEndpoint.open(
                lambda now: DhtNode(CFG, now=now), host="127.0.0.1", port=sock.getsockname()[1], config=CFG
            )
    finally:
        sock.close()


async def test_timer_drives_timeouts() -> None:
    """The re-armed timer fires the node's query timeouts without any traffic."""
    ep = await open_endpoint(replace(CFG, query_timeout=0.2))
    try:
        ep.call(lambda n, now: n.add_node(("127.0.0.1", 9), now))  # nobody answers on port 9
        async with asyncio.timeout(5):
            while ep.node.stats["timeouts"] == 0:
                await asyncio.sleep(0.02)
    finally:
        ep.close()


async def test_resolve_ip_literal_needs_no_lookup() -> None:
    """An IP literal resolves to itself without asking the resolver."""
    ep = await open_endpoint()
    try:
        assert await ep.resolve("127.0.0.5", 6881) == [("127.0.0.5", 6881)]
        assert await ep.resolve("localhost", 6881) == [("127.0.0.1", 6881)]
    finally:
        ep.close()


def test_rate_limiter_refills_and_caps_sources() -> None:
    """Token buckets refill at the configured rate and at most max_sources are tracked."""
    rl = RateLimiter(rate=1.0, burst=2, max_sources=3)
    assert rl.allow("a", 0.0) and rl.allow("a", 0.0) and not rl.allow("a", 0.0)
    assert rl.allow("a", 1.0)
    for ip in "bcde":
        rl.allow(ip, 2.0)
    assert len(rl) == 3


def test_state_round_trip(tmp_path: Path) -> None:
    """Saved node id and nodes load back unchanged."""
    state = DhtState(b"\x01" * 20, ((b"\x02" * 20, ("127.0.0.2", 6881)),))
    save_state(tmp_path / "sub", state)
    assert load_state(tmp_path / "sub") == state


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"version": 2}',
        '{"version": 1, "node_id": "zz"}',
        '{"version": 1, "node_id": "00"}',
    ],
)
def test_corrupt_state_is_ignored(tmp_path: Path, text: str) -> None:
    """An unreadable or malformed state file counts as no state."""
    (tmp_path / STATE_FILE).write_text(text)
    assert load_state(tmp_path) is None


def test_bad_node_entries_are_skipped(tmp_path: Path) -> None:
    """Malformed node entries in the state file are skipped, good ones kept."""
    nodes = [
        ["02" * 20, "127.0.0.2", 6881],
        ["x", "y", 1],
        ["02" * 20, "nohost", 1],
        ["02" * 20, "1.2.3.4", 0],
    ]
    (tmp_path / STATE_FILE).write_text(json.dumps({"version": 1, "node_id": "01" * 20, "nodes": nodes}))
    state = load_state(tmp_path)
    assert state is not None and state.nodes == ((b"\x02" * 20, ("127.0.0.2", 6881)),)


def test_default_state_dir_order() -> None:
    """P2PSHARE_STATE_DIR wins over XDG_STATE_HOME, which wins over ~/.local/state."""
    assert default_state_dir({"P2PSHARE_STATE_DIR": "/a", "XDG_STATE_HOME": "/b"}) == Path("/a")
    assert default_state_dir({"XDG_STATE_HOME": "/b"}) == Path("/b/p2pshare")
    assert default_state_dir({}) == Path.home() / ".local" / "state" / "p2pshare"
