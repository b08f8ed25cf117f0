"""uTP's own UDP socket (when it does not share the DHT's), read in batches.

asyncio's datagram transport reads one datagram per readiness event.  For a bulk
uTP stream that means one ``epoll`` and one ack per packet.  Here one readiness
event drains up to ``max_batch`` datagrams and only then lets the owner flush, so
a burst that queued while the process was busy costs one wake-up and draws one
cumulative ack (libutp does the same with its deferred acks).

Sends go straight to the non-blocking socket; when its buffer is full they wait
in a bounded queue (``max_queue`` datagrams; beyond it they are dropped, which
uTP treats as loss) drained on writability.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections import deque
from collections.abc import Callable

from p2pshare.core.types import Addr
from p2pshare.errors import PortInUseError

__all__ = ["BatchedUdpSocket", "SharedTransport"]

log = logging.getLogger(__name__)


class BatchedUdpSocket:
    """A non-blocking UDP socket driven by ``add_reader``; see the module docstring."""

    def __init__(
        self,
        sock: socket.socket,
        on_datagram: Callable[[bytes, Addr], None],
        on_batch_end: Callable[[], None],
        *,
        max_batch: int = 64,
        max_queue: int = 4096,
        max_datagram: int = 65_535,
    ) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self._on_datagram = on_datagram
        self._on_batch_end = on_batch_end
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.max_datagram = max_datagram
        self._queue: deque[tuple[bytes | bytearray, Addr]] = deque()
        self._writing = False
        self.closed = False
        self.stats = {"batches": 0, "datagrams_in": 0, "dropped_queue_full": 0, "send_errors": 0}
        self.loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    def bind(
        cls,
        host: str,
        port: int,
        on_datagram: Callable[[bytes, Addr], None],
        on_batch_end: Callable[[], None],
        *,
        buffer_size: int = 0,
        max_datagram: int = 65_535,
        max_batch: int = 64,
        max_queue: int = 4096,
    ) -> BatchedUdpSocket:
        """A socket bound to ``host:port`` (0 picks a port); ``buffer_size`` sets SO_RCVBUF/SO_SNDBUF."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            if buffer_size:
                for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, opt, buffer_size)
                    except OSError as exc:  # pragma: no cover - platform limits
                        log.debug("cannot set UDP buffer to %d: %s", buffer_size, exc)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(f"UDP port {port} on {host} is in use") from None
            raise
        return cls(
            sock,
            on_datagram,
            on_batch_end,
            max_batch=max_batch,
            max_queue=max_queue,
            max_datagram=max_datagram,
        )

    @property
    def local_address(self) -> Addr:
        name = self.sock.getsockname()
        return (str(name[0]), int(name[1]))

    def _readable(self) -> None:
        if self.closed:
            return
        recvfrom = self.sock.recvfrom
        size = self.max_datagram
        got = 0
        for _ in range(self.max_batch):
            try:
                data, addr = recvfrom(size)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # ICMP errors (port unreachable) surface here
                log.debug("uTP socket error: %s", exc)
                continue
            got += 1
            try:
                self._on_datagram(data, (str(addr[0]), int(addr[1])))
            except Exception:  # a bug in the core must not take the socket down
                log.exception("uTP failed on a datagram from %s", addr)
        self.stats["datagrams_in"] += got
        self.stats["batches"] += 1
        self._on_batch_end()

    def sendto(self, data: bytes | bytearray, addr: Addr) -> None:
        if self.closed:
            return
        if self._queue:
            self._enqueue(data, addr)
            return
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._enqueue(data, addr)
        except OSError as exc:
            self.stats["send_errors"] += 1
            log.debug("uTP send to %s failed: %s", addr, exc)

    def _enqueue(self, data: bytes | bytearray, addr: Addr) -> None:
        if len(self._queue) >= self.max_queue:
            self.stats["dropped_queue_full"] += 1
            return
        self._queue.append((data, addr))
        if not self._writing:
            self._writing = True
            self.loop.add_writer(self.sock.fileno(), self._writable)

    def _writable(self) -> None:
        queue = self._queue
        while queue:
            data, addr = queue[0]
            try:
                self.sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.stats["send_errors"] += 1
                log.debug("uTP send to %s failed: %s", addr, exc)
            queue.popleft()
        self._writing = False
        self.loop.remove_writer(self.sock.fileno())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        fd = self.sock.fileno()
        self.loop.remove_reader(fd)
        if self._writing:
            self.loop.remove_writer(fd)
        self._queue.clear()
        self.sock.close()


class SharedTransport(asyncio.DatagramTransport):
    """The batched socket seen as an asyncio datagram transport, for a second protocol (the DHT).

    Sends go through the shared socket.  ``close`` only detaches: the socket belongs
    to the :class:`BatchedUdpSocket` (and its owner closes it).
    """

    def __init__(self, udp: BatchedUdpSocket) -> None:
        super().__init__(extra={"socket": udp.sock, "sockname": udp.sock.getsockname()})
        self._udp = udp
        self._closing = False

    def sendto(self, data: bytes | bytearray | memoryview, addr: object = None) -> None:
        if not self._closing and isinstance(addr, tuple):
            self._udp.sendto(bytes(data) if isinstance(data, memoryview) else data, addr)

    def close(self) -> None:
        self._closing = True

    def abort(self) -> None:
        self._closing = True

    def is_closing(self) -> bool:
        return self._closing or self._udp.closed

    def get_write_buffer_size(self) -> int:
        return len(self._udp._queue)
