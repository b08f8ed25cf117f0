"""uTP's own UDP socket: bursts are read in one batch, and a full send buffer queues (bounded)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from p2pshare.io.utp_udp import BatchedUdpSocket


async def test_a_burst_is_read_in_few_batches_and_flushed_once_per_batch() -> None:
    """Twenty datagrams that queued up together come out in order, with one flush per batch."""
    got: list[bytes] = []
    flushes: list[int] = []
    udp = BatchedUdpSocket.bind("127.0.0.2", 0, lambda d, a: got.append(d), lambda: flushes.append(len(got)))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        tx.bind(("127.0.0.3", 0))
        for i in range(20):
            tx.sendto(b"%d" % i, udp.local_address)
        async with asyncio.timeout(5):
            while len(got) < 20:
                await asyncio.sleep(0.01)
        assert got == [b"%d" % i for i in range(20)]
        assert udp.stats["batches"] == len(flushes) < 20
    finally:
        tx.close()
        udp.close()


class StallingSocket(socket.socket):
    """A UDP socket whose send buffer is 'full' while ``stalled`` is set."""

    stalled = False

    def sendto(self, data: Any, *args: Any) -> int:  # type: ignore[override]
        if self.stalled:
            raise BlockingIOError
        return super().sendto(data, *args)


async def test_full_send_buffer_queues_in_order_up_to_the_limit() -> None:
    """While the socket cannot send, datagrams wait (at most max_queue); they go out in order once it can."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.3", 0))
    rx.settimeout(5)
    sock = StallingSocket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind(("127.0.0.2", 0))
    udp = BatchedUdpSocket(sock, lambda d, a: None, lambda: None, max_queue=5)
    try:
        sock.stalled = True
        for i in range(8):
            udp.sendto(b"%d" % i, rx.getsockname())
        assert udp.stats["dropped_queue_full"] == 3
        sock.stalled = False
        udp._writable()
        assert [rx.recv(100) for _ in range(5)] == [b"0", b"1", b"2", b"3", b"4"]
        udp.sendto(b"after", rx.getsockname())
        assert rx.recv(100) == b"after"
    finally:
        rx.close()
        udp.close()
