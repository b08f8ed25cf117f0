"""BEP 14 Local Service Discovery: the BT-SEARCH codec and a sans-I/O announcer/listener.

Theory of operation
-------------------
:class:`LsdNode` keeps the info hashes we take part in, each with the time its next
announce is due (at once when added, then every ``announce_interval``).  An announce is one
BT-SEARCH message per multicast group (the Host header names the group), carrying as many
due info hashes as fit ``max_infohashes`` and ``max_message`` bytes; BEP 14 asks for no more
than one announce a minute, so announces are at least ``min_announce_gap`` apart and
whatever did not fit waits for the next slot, oldest due first.

Incoming datagrams are parsed strictly (:func:`decode_announce`): size, header count, the
request line, a decimal port, 40-hex info hashes.  One that carries our own cookie is ours,
looped back by multicast, and is ignored; for each info hash we take part in, a
:class:`PeerFound` names the sender's address (from the UDP source, as the BEP says) and its
Port header.

Verbs: ``add_torrent``/``remove_torrent``, ``receive_data(data, source_ip, now)``,
``datagrams_to_send()`` -> ``[(group, payload)]``, ``next_event()``, ``get_timer()``,
``handle_timer(now)``.
"""

from __future__ import annotations

import ipaddress
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from p2pshare.config import LsdConfig
from p2pshare.core.types import Addr
from p2pshare.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["Announce", "LsdNode", "PeerFound", "decode_announce", "encode_announce", "group_host"]

REQUEST_LINE = b"BT-SEARCH * HTTP/1.1"
_HEX40 = re.compile(rb"\A[0-9a-fA-F]{40}\Z")
_TOKEN = re.compile(rb"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")


@dataclass(frozen=True, slots=True)
class Announce:
    """One BT-SEARCH message."""

    host: str  #: the Host header: the multicast group and port it was sent to
    port: int  #: where the sender listens for BitTorrent connections
    info_hashes: tuple[bytes, ...]
    cookie: str | None


@dataclass(frozen=True, slots=True)
class PeerFound:
    """A peer on the LAN announced an info hash we take part in."""

    info_hash: bytes
    host: str
    port: int


def group_host(group: Addr) -> str:
    """The Host header for a group: ``239.192.152.143:6771`` or ``[ff15::efc0:988f]:6771``."""
    address, port = group
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def encode_announce(host: str, port: int, info_hashes: Sequence[bytes], cookie: str | None) -> bytes:
    """A BT-SEARCH message as BEP 14 lays it out (each info hash in its own header)."""
    if not 1 <= port <= 0xFFFF:
        raise LocalProtocolError(f"LSD port {port} is not a port number")
    if not info_hashes or any(len(ih) != 20 for ih in info_hashes):
        raise LocalProtocolError("an LSD announce needs one or more 20-byte info hashes")
    if cookie is not None and not _TOKEN.match(cookie.encode("ascii", "replace")):
        raise LocalProtocolError(f"LSD cookie {cookie!r} is not a plain token")
    lines = [REQUEST_LINE, f"Host: {host}".encode(), f"Port: {port}".encode()]
    lines += [b"Infohash: " + ih.hex().encode() for ih in info_hashes]
    if cookie is not None:
        lines.append(f"cookie: {cookie}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n\r\n"


def decode_announce(data: bytes, config: LsdConfig) -> Announce:
    """Parse one BT-SEARCH datagram; raises RemoteProtocolError for anything malformed or too large."""
    if len(data) > config.max_message:
        raise RemoteProtocolError(f"LSD datagram of {len(data)} bytes exceeds {config.max_message}")
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise RemoteProtocolError("LSD datagram without the blank line that ends its headers")
    if rest.strip(b"\r\n"):
        raise RemoteProtocolError("LSD datagram with a body")
    lines = head.split(b"\r\n")
    if lines[0] != REQUEST_LINE:
        raise RemoteProtocolError(f"not a BT-SEARCH request line: {lines[0][:40]!r}")
    if len(lines) - 1 > config.max_headers + config.max_infohashes:
        raise RemoteProtocolError(f"LSD message with {len(lines) - 1} header lines")
    host: str | None = None
    port: int | None = None
    cookie: str | None = None
    hashes: list[bytes] = []
    others = 0
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            raise RemoteProtocolError(f"malformed LSD header line {line[:40]!r}")
        key = name.lower()
        value = value.strip(b" \t")
        if key == b"infohash":
            if not _HEX40.match(value):
                raise RemoteProtocolError(f"LSD Infohash {value[:48]!r} is not 40 hex digits")
            if len(hashes) >= config.max_infohashes:
                raise RemoteProtocolError(f"LSD message with more than {config.max_infohashes} info hashes")
            ih = bytes.fromhex(value.decode())
            if ih not in hashes:
                hashes.append(ih)
        elif key == b"port":
            if port is not None or not value.isdigit() or len(value) > 5 or not 1 <= int(value) <= 0xFFFF:
                raise RemoteProtocolError(f"bad LSD Port header {value[:16]!r}")
            port = int(value)
        elif key == b"host":
            if host is not None:
                raise RemoteProtocolError("LSD message with two Host headers")
            host = value.decode("ascii", "replace")
        elif key == b"cookie":
            cookie = value.decode("ascii", "replace")
        else:
            others += 1
            if others > config.max_headers:
                raise RemoteProtocolError(f"LSD message with more than {config.max_headers} unknown headers")
    if host is None or port is None or not hashes:
        raise RemoteProtocolError("LSD message lacks Host, Port or Infohash")
    return Announce(host=host, port=port, info_hashes=tuple(hashes), cookie=cookie)


class LsdNode:
    """Announces our info hashes and turns others' announces into :class:`PeerFound`; see above."""

    def __init__(
        self, config: LsdConfig, *, port: int, cookie: str, groups: Iterable[Addr] | None = None
    ) -> None:
        self.config = config
        self.port = port
        self.cookie = cookie
        self.groups = list(groups) if groups is not None else [config.group_v4, config.group_v6]
        self._due: dict[bytes, float] = {}  #: info hash -> when its next announce is due
        self._last_announce: float | None = None
        self._outgoing: list[tuple[Addr, bytes]] = []
        self._events: deque[PeerFound] = deque()
        self.announces_sent = 0
        self.own_ignored = 0
        self.malformed = 0
        self.heard = 0

    def add_torrent(self, info_hash: bytes, now: float) -> None:
        if len(info_hash) != 20:
            raise LocalProtocolError("an info hash is 20 bytes")
        self._due.setdefault(info_hash, now)

    def remove_torrent(self, info_hash: bytes) -> None:
        self._due.pop(info_hash, None)

    def receive_data(self, data: bytes, source_ip: str, now: float) -> None:
        """One datagram from ``source_ip``; a malformed one raises RemoteProtocolError (and is counted)."""
        try:
            announce = decode_announce(data, self.config)
        except RemoteProtocolError:
            self.malformed += 1
            raise
        if announce.cookie is not None and announce.cookie == self.cookie:
            self.own_ignored += 1
            return
        address, _, scope = source_ip.partition("%")
        host = str(ipaddress.ip_address(address)) + (f"%{scope}" if scope else "")  # keep a link-local scope
        self.heard += 1
        for ih in announce.info_hashes:
            if ih in self._due:
                self._events.append(PeerFound(ih, host, announce.port))

    def datagrams_to_send(self) -> list[tuple[Addr, bytes]]:
        out, self._outgoing = self._outgoing, []
        return out

    def next_event(self) -> PeerFound | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        if not self._due:
            return None
        earliest = min(self._due.values())
        if self._last_announce is not None:
            earliest = max(earliest, self._last_announce + self.config.min_announce_gap)
        return earliest

    def handle_timer(self, now: float) -> None:
        when = self.get_timer()
        if when is None or when > now:
            return
        due = sorted((t, ih) for ih, t in self._due.items() if t <= now)
        batch = self._fit([ih for _, ih in due])
        for group in self.groups:
            payload = encode_announce(group_host(group), self.port, batch, self.cookie)
            self._outgoing.append((group, payload))
        for ih in batch:
            self._due[ih] = now + self.config.announce_interval
        self._last_announce = now
        self.announces_sent += 1

    def _fit(self, hashes: list[bytes]) -> list[bytes]:
        """The longest prefix of ``hashes`` whose message fits the size and count limits."""
        batch: list[bytes] = []
        longest_host = max((group_host(g) for g in self.groups), key=len, default="")
        for ih in hashes[: self.config.max_infohashes]:
            trial = [*batch, ih]
            size = len(encode_announce(longest_host, self.port, trial, self.cookie))
            if batch and size > self.config.max_message:
                break
            batch = trial
        return batch
