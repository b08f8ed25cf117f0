"""The listener's pending handshakes: the oldest makes room for the newest, and each costs little."""

from __future__ import annotations

import asyncio
import tracemalloc

from p2pshare.io.listener import Listener
from p2pshare.io.peer_link import PeerLink

HANDSHAKE_PREFIX = b"\x13BitTorrent protocol" + bytes(8) + b"\xaa" * 20


Pair = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open(port: int, n: int) -> list[Pair]:
    pairs = []
    for _ in range(n):
        r, w = await asyncio.open_connection("127.0.0.2", port, local_addr=("127.0.0.9", 0))
        w.write(b"\x13Bit")  # a handshake that never finishes
        pairs.append((r, w))
    return pairs


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 2.0) == b""
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def test_a_full_pending_queue_evicts_its_oldest_and_still_routes_an_honest_handshake() -> None:
    """With max_pending slow handshakes waiting, a new honest connection evicts the oldest and is routed."""
    routed: list[bytes] = []

    def route(info_hash: bytes, link: PeerLink) -> bool:
        routed.append(info_hash)
        link.close()
        return True

    listener = Listener(route, timeout=30.0, max_pending=8)
    await listener.start("127.0.0.2", 0)
    try:
        slow = await _open(listener.port, 8)
        await asyncio.sleep(0.2)
        assert listener.pending == 8 and listener.evicted == 0
        _, writer = await asyncio.open_connection("127.0.0.2", listener.port, local_addr=("127.0.0.3", 0))
        writer.write(HANDSHAKE_PREFIX)
        await writer.drain()
        for _ in range(50):
            if routed:
                break
            await asyncio.sleep(0.05)
        assert routed == [b"\xaa" * 20]
        assert listener.evicted == 1 and listener.pending == 7
        assert await _closed_by_peer(slow[0][0])
        assert not await _closed_by_peer(slow[1][0])
        writer.close()
        for _, w in slow:
            w.close()
    finally:
        await listener.close()


async def test_two_hundred_pending_handshakes_cost_under_two_mib() -> None:
    """200 pending handshakes allocate less than 2 MiB in the listener's process (no read buffer each)."""
    listener = Listener(lambda h, link: False, timeout=30.0, max_pending=256)
    await listener.start("127.0.0.2", 0)
    try:
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        pairs = await _open(listener.port, 200)
        await asyncio.sleep(0.3)
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        assert listener.pending == 200
        grown = sum(
            s.size_diff for s in after.compare_to(before, "filename") if "p2pshare" in str(s.traceback)
        )
        assert grown < 2 * 1024 * 1024, grown
        for _, w in pairs:
            w.close()
    finally:
        await listener.close()
