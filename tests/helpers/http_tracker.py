"""A tiny HTTP tracker on loopback for interop tests (BEP 3 announce, BEP 23 compact peers).

aria2 takes peers only from a tracker or the DHT, and p2pshare speaks to neither
trackers nor (in most cells) the DHT, so tests register p2pshare's address here
with :meth:`HttpTracker.add_peer` and hand the engine :attr:`HttpTracker.announce_url`.
Peers that announce are remembered too (with the port they announce and the address
they came from), so two engines can find each other through it.

It binds one loopback address, answers ``GET /announce`` only, never contacts
anyone, and stops in :meth:`HttpTracker.close` (or at the end of a ``with`` block).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from p2pshare.core import bencode

__all__ = ["Announce", "HttpTracker", "compact_peers", "parse_announce_query"]

#: How many announces the tracker keeps for inspection (a bound, not a feature).
MAX_ANNOUNCES_KEPT = 1000
#: The interval the tracker asks clients to wait between announces.
ANNOUNCE_INTERVAL = 5


@dataclass(frozen=True, slots=True)
class Announce:
    """One parsed announce."""

    info_hash: bytes
    peer_id: bytes
    port: int
    event: str  #: "started", "completed", "stopped" or "" (a regular announce)
    compact: bool
    ip: str  #: the ``ip`` parameter when it is an IPv4 address, else where the request came from


def parse_announce_query(query: str, remote_ip: str) -> Announce:
    """The fields of a BEP 3 announce query string; ``ValueError`` when a required one is bad."""
    params = parse_qs(query, keep_blank_values=True, encoding="latin-1")

    def raw(name: str) -> bytes | None:
        values = params.get(name)
        return values[0].encode("latin-1") if values else None

    info_hash = raw("info_hash")
    if info_hash is None or len(info_hash) != 20:
        raise ValueError("info_hash must be 20 bytes")
    port_text = raw("port")
    if port_text is None or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("port must be 1..65535")
    ip_text = raw("ip")
    ip = remote_ip
    if ip_text:
        try:
            ip = str(ipaddress.IPv4Address(ip_text.decode("latin-1")))
        except ValueError:
            ip = remote_ip  # a name or junk: use where it came from, as trackers do
    event = raw("event") or b""
    return Announce(
        info_hash=info_hash,
        peer_id=raw("peer_id") or b"",
        port=int(port_text),
        event=event.decode("latin-1"),
        compact=raw("compact") == b"1",
        ip=ip,
    )


def compact_peers(peers: list[tuple[str, int]]) -> bytes:
    """BEP 23: 6 bytes per IPv4 peer, address then port, both big-endian."""
    return b"".join(socket.inet_aton(host) + struct.pack(">H", port) for host, port in peers)


class HttpTracker:
    """A loopback HTTP tracker; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the test tracker binds loopback only, not {host}")
        self._lock = threading.Lock()
        self._swarms: dict[bytes, dict[tuple[str, int], None]] = {}
        self.announces: list[Announce] = []
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                tracker._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the tests print what matters

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[0], self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1})
        self._thread.daemon = True
        self._thread.start()

    @property
    def announce_url(self) -> str:
        return f"http://{self.host}:{self.port}/announce"

    def add_peer(self, info_hash: bytes, host: str, port: int) -> None:
        """Hand out ``host:port`` to everyone who announces ``info_hash``."""
        with self._lock:
            self._swarms.setdefault(info_hash, {})[(host, port)] = None

    def peers(self, info_hash: bytes) -> list[tuple[str, int]]:
        with self._lock:
            return list(self._swarms.get(info_hash, {}))

    def announced(self, info_hash: bytes) -> list[Announce]:
        """The announces received for ``info_hash``, oldest first."""
        with self._lock:
            return [a for a in self.announces if a.info_hash == info_hash]

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict[bytes, object]) -> None:
        data = bencode.encode(body)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        if url.path != "/announce":
            handler.send_error(404)
            return
        try:
            ann = parse_announce_query(url.query, handler.client_address[0])
        except ValueError as exc:
            self._respond(handler, {b"failure reason": str(exc).encode()})
            return
        info_hash = ann.info_hash
        me = (ann.ip, ann.port)
        with self._lock:
            if len(self.announces) < MAX_ANNOUNCES_KEPT:
                self.announces.append(ann)
            swarm = self._swarms.setdefault(info_hash, {})
            if ann.event == "stopped":
                swarm.pop(me, None)
            others = [p for p in swarm if p != me]
            if ann.event != "stopped":
                swarm[me] = None
        body: dict[bytes, object] = {b"interval": ANNOUNCE_INTERVAL, b"complete": 0, b"incomplete": 0}
        if ann.compact:
            body[b"peers"] = compact_peers(others)
        else:
            body[b"peers"] = [{b"ip": h.encode(), b"port": p} for h, p in others]
        self._respond(handler, body)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HttpTracker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
