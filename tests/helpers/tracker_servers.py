"""Small loopback trackers for tests: HTTP (with scripted misbehaviour) and UDP (with dropped packets).

Both keep a real swarm (:class:`MiniSwarm`): announced peers per info hash, handed to the
next announcer, removed on ``stopped``.  Each server records what it was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl as ssl_module
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote_from_bytes, unquote_to_bytes, urlsplit

from p2pshare.core import bencode
from p2pshare.core.tracker import udp
from p2pshare.core.tracker.messages import AnnounceEvent, ScrapeStats
from p2pshare.core.tracker.peers import encode_compact
from p2pshare.core.types import InfoHash, PeerAddress

__all__ = ["HttpTracker", "MiniSwarm", "UdpTracker", "http_answer", "info_hash", "peer_id", "requery"]


@dataclass
class MiniSwarm:
    """Peers per info hash, as a tracker keeps them."""

    peers: dict[bytes, dict[PeerAddress, int]] = field(default_factory=dict)  #: hash -> peer -> left
    completed: dict[bytes, int] = field(default_factory=dict)

    def announce(
        self, ih: bytes, peer: PeerAddress, left: int, event: AnnounceEvent, numwant: int
    ) -> list[PeerAddress]:
        swarm = self.peers.setdefault(ih, {})
        if event is AnnounceEvent.STOPPED:
            swarm.pop(peer, None)
            return []
        if event is AnnounceEvent.COMPLETED:
            self.completed[ih] = self.completed.get(ih, 0) + 1
        swarm[peer] = left
        return [p for p in swarm if p != peer][:numwant]

    def add(self, ih: bytes, peer: PeerAddress, left: int = 0) -> None:
        """Hand ``peer`` to everyone who announces ``ih`` (as if it had announced; a seed by default)."""
        self.peers.setdefault(ih, {})[peer] = left

    def stats(self, ih: bytes) -> ScrapeStats:
        swarm = self.peers.get(ih, {})
        seeds = sum(1 for left in swarm.values() if left == 0)
        return ScrapeStats(seeds, self.completed.get(ih, 0), len(swarm) - seeds)


EVENTS = {e.name.lower().encode(): e for e in AnnounceEvent if e is not AnnounceEvent.NONE}


def requery(query: dict[str, list[bytes]]) -> str:
    """A parsed query back as a query string (for redirects that keep it)."""
    return "&".join(f"{k}={quote_from_bytes(v, safe='')}" for k, vs in query.items() for v in vs)


def http_answer(body: bytes, status: str = "200 OK", headers: tuple[str, ...] = ()) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class HttpTracker:
    """An HTTP tracker on ``host``.  ``script`` maps a path to a function giving the raw answer.

    Unscripted paths ``/announce`` and ``/scrape`` behave as a real tracker; others get 404.
    A script function returning None makes the server hang without answering.
    """

    def __init__(
        self, host: str = "127.0.0.1", interval: int = 1800, ssl: ssl_module.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = 0
        self.interval = interval
        self.ssl = ssl
        self.swarm = MiniSwarm()
        self.script: dict[str, Callable[[dict[str, list[bytes]]], bytes | None]] = {}
        self.requests: list[tuple[str, dict[str, list[bytes]]]] = []  #: (path, query) in order
        self._server: asyncio.Server | None = None
        self._hung: list[asyncio.StreamWriter] = []

    def url(self, path: str = "/announce") -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}{path}"

    async def __aenter__(self) -> HttpTracker:
        self._server = await asyncio.start_server(self._handle, self.host, 0, ssl=self.ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for w in self._hung:
            w.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        target = head.split(b" ")[1].decode()
        parts = urlsplit(target)
        query: dict[str, list[bytes]] = {}
        for pair in filter(None, parts.query.split("&")):
            k, _, v = pair.partition("=")
            query.setdefault(k, []).append(unquote_to_bytes(v))
        self.requests.append((parts.path, query))
        peer_ip = writer.get_extra_info("peername")[0]
        script = self.script.get(parts.path)
        if script is not None:
            answer = script(query)
        elif parts.path == "/announce":
            answer = http_answer(self._announce(query, peer_ip))
        elif parts.path == "/scrape":
            files = {ih: vars_of(self.swarm.stats(ih)) for ih in query.get("info_hash", [])}
            answer = http_answer(bencode.encode({b"files": files}))
        else:
            answer = http_answer(b"not here", "404 Not Found")
        if answer is None:
            self._hung.append(writer)
            return
        with contextlib.suppress(ConnectionError):
            writer.write(answer)
            await writer.drain()
        writer.close()

    def _announce(self, q: dict[str, list[bytes]], peer_ip: str) -> bytes:
        ih = q["info_hash"][0]
        event = EVENTS.get(q.get("event", [b""])[0], AnnounceEvent.NONE)
        if len(ih) != 20 or len(q["peer_id"][0]) != 20:
            return bencode.encode({b"failure reason": b"bad info_hash or peer_id"})
        peers = self.swarm.announce(
            ih,
            PeerAddress(peer_ip, int(q["port"][0])),
            int(q["left"][0]),
            event,
            int(q.get("numwant", [b"50"])[0]),
        )
        stats = self.swarm.stats(ih)
        return bencode.encode(
            {b"interval": self.interval, b"complete": stats.complete, b"incomplete": stats.incomplete,
             b"peers": encode_compact(p for p in peers if ":" not in p.host)}
        )  # fmt: skip


def vars_of(s: ScrapeStats) -> dict[bytes, int]:
    return {b"complete": s.complete, b"downloaded": s.downloaded, b"incomplete": s.incomplete}


class UdpTracker(asyncio.DatagramProtocol):
    """A BEP 15 tracker on ``host``.  ``drop`` says, per received datagram, whether to ignore it."""

    def __init__(self, host: str = "127.0.0.1", interval: int = 1800) -> None:
        self.host = host
        self.port = 0
        self.interval = interval
        self.swarm = MiniSwarm()
        self.drop: Callable[[udp.UdpRequest], bool] = lambda req: False
        self.error: str | None = None  #: answer every announce/scrape with this error
        self.received: list[udp.UdpRequest] = []  #: every request, with its BEP 41 url_data
        self.valid_ids: set[int] = set()
        self._transport: asyncio.DatagramTransport | None = None

    def url(self) -> str:
        return f"udp://{self.host}:{self.port}/announce"

    async def __aenter__(self) -> UdpTracker:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, 0))
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._transport is not None
        self._transport.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        req = udp.decode_request(data)
        self.received.append(req)
        if self.drop(req):
            return
        answer = self._answer(req, addr)
        assert self._transport is not None
        self._transport.sendto(answer, addr)

    def _answer(self, req: udp.UdpRequest, addr: tuple[str, int]) -> bytes:
        if req.action == udp.ACTION_CONNECT:
            conn = random.getrandbits(64)
            self.valid_ids.add(conn)
            return udp.encode_connect_response(req.transaction_id, conn)
        if req.connection_id not in self.valid_ids:
            return udp.encode_error(req.transaction_id, "bad connection id")
        if self.error is not None:
            return udp.encode_error(req.transaction_id, self.error)
        if req.announce is not None:
            a = req.announce
            peers = self.swarm.announce(a.info_hash.value, PeerAddress(addr[0], a.port), a.left, a.event,
                                        50 if a.numwant is None else a.numwant)  # fmt: skip
            stats = self.swarm.stats(a.info_hash.value)
            return udp.encode_announce_response(req.transaction_id, self.interval, stats.incomplete,
                                                stats.complete, peers)  # fmt: skip
        return udp.encode_scrape_response(
            req.transaction_id, [self.swarm.stats(h.value) for h in req.info_hashes]
        )


def peer_id(tag: int) -> bytes:
    return b"-PS0100-" + tag.to_bytes(12, "big")


def info_hash(tag: int) -> InfoHash:
    return InfoHash(bytes([tag]) * 20)
