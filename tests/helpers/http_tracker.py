"""The loopback HTTP tracker of :mod:`tests.helpers.tracker_servers`, served from its own thread.

For tests whose own code is not async (engines in subprocesses, aria2c, Transmission):
aria2 takes peers only from a tracker or the DHT, so tests register p2pshare's address
with :meth:`HttpTracker.add_peer` and hand the engine :attr:`HttpTracker.announce_url`.
Peers that announce are remembered too (the port they announce, the address they came
from), so two engines can find each other through it.  The tracker itself (parsing,
the swarm, compact answers) is ``tracker_servers.HttpTracker``: one implementation.

It binds one loopback address, never contacts anyone, and stops in
:meth:`HttpTracker.close` (or at the end of a ``with`` block).
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from p2pshare.core.types import PeerAddress
from tests.helpers import tracker_servers

__all__ = ["Announce", "HttpTracker"]

#: The interval the tracker asks clients to wait between announces.
ANNOUNCE_INTERVAL = 5
#: Bound on starting and stopping the tracker's thread.
THREAD_TIMEOUT = 10.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Announce:
    """One announce the tracker received."""

    info_hash: bytes
    peer_id: bytes
    port: int
    event: str  #: "started", "completed", "stopped" or "" (a regular announce)
    compact: bool


class HttpTracker:
    """A loopback HTTP tracker on its own thread and event loop; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the test tracker binds loopback only, not {host}")
        self._server = tracker_servers.HttpTracker(host, interval=ANNOUNCE_INTERVAL)
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._server.__aenter__())
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._server.__aexit__(None, None, None))
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="http-tracker", daemon=True)
        self._thread.start()
        if not started.wait(THREAD_TIMEOUT):
            raise RuntimeError("the test tracker did not start")
        self.host, self.port = host, self._server.port

    @property
    def announce_url(self) -> str:
        return self._server.url()

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the tracker's loop (its state is only touched there) and return its result."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(THREAD_TIMEOUT)

    def add_peer(self, info_hash: bytes, host: str, port: int) -> None:
        """Hand out ``host:port`` to everyone who announces ``info_hash``."""
        self._call(lambda: self._server.swarm.add(info_hash, PeerAddress(host, port)))

    def peers(self, info_hash: bytes) -> list[tuple[str, int]]:
        return self._call(lambda: [(p.host, p.port) for p in self._server.swarm.peers.get(info_hash, {})])

    def announced(self, info_hash: bytes) -> list[Announce]:
        """The announces received for ``info_hash``, oldest first."""

        def collect() -> list[Announce]:
            out = []
            for path, q in self._server.requests:
                if path != "/announce" or q.get("info_hash", [b""])[0] != info_hash:
                    continue
                out.append(
                    Announce(
                        info_hash=info_hash,
                        peer_id=q.get("peer_id", [b""])[0],
                        port=int(q.get("port", [b"0"])[0]),
                        event=q.get("event", [b""])[0].decode("latin-1"),
                        compact=q.get("compact", [b""])[0] == b"1",
                    )
                )
            return out

        return self._call(collect)

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(THREAD_TIMEOUT)

    def __enter__(self) -> HttpTracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
