"""BEP 15 UDP tracker packets: both directions, big-endian, fixed layouts.

Client side: :func:`encode_connect`, :func:`encode_announce`, :func:`encode_scrape` and
:func:`decode_header` plus the ``parse_*`` functions for the payload after the 8-byte
``action, transaction_id`` header.  Server side (used by our loopback test tracker):
:func:`decode_request` and the ``encode_*_response`` functions.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from p2pshare.config import TrackerConfig
from p2pshare.core.tracker.messages import (
    AnnounceEvent,
    AnnounceRequest,
    AnnounceResponse,
    ScrapeResponse,
    ScrapeStats,
)
from p2pshare.core.tracker.peers import decode_compact, encode_compact
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.errors import RemoteProtocolError

__all__ = [
    "ACTION_ANNOUNCE",
    "ACTION_CONNECT",
    "ACTION_ERROR",
    "ACTION_SCRAPE",
    "MAX_SCRAPE_HASHES",
    "PROTOCOL_ID",
    "UdpRequest",
    "decode_header",
    "decode_request",
    "encode_announce",
    "encode_announce_response",
    "encode_connect",
    "encode_connect_response",
    "encode_error",
    "encode_scrape",
    "encode_scrape_response",
    "parse_announce",
    "parse_connect",
    "parse_error",
    "parse_scrape",
]

PROTOCOL_ID = 0x41727101980  #: magic constant of a connect request
ACTION_CONNECT, ACTION_ANNOUNCE, ACTION_SCRAPE, ACTION_ERROR = 0, 1, 2, 3
MAX_SCRAPE_HASHES = 74  #: BEP 15: about the most that fit one datagram
_OPTION_END, _OPTION_NOP, _OPTION_URL_DATA = 0, 1, 2  #: BEP 41 announce options

_HEADER = struct.Struct(">II")
_CONNECT = struct.Struct(">QII")
_ANNOUNCE = struct.Struct(">QII20s20sQQQIIIiH")
_ANNOUNCE_RESP = struct.Struct(">III")
_SCRAPE_ENTRY = struct.Struct(">III")


# -- client side ---------------------------------------------------------------------------
def encode_connect(transaction_id: int) -> bytes:
    return _CONNECT.pack(PROTOCOL_ID, ACTION_CONNECT, transaction_id)


def encode_announce(
    connection_id: int, transaction_id: int, req: AnnounceRequest, url_data: bytes = b""
) -> bytes:
    """98 bytes; ``ip`` is 0 (the sender's address) and ``num_want`` -1 when unset.

    ``url_data`` (the announce URL's path and query, BEP 41) follows as URLData options of
    at most 255 bytes each; trackers that do not know the extension ignore the extra bytes.
    """
    packet = _ANNOUNCE.pack(
        connection_id, ACTION_ANNOUNCE, transaction_id, req.info_hash.value, req.peer_id,
        req.downloaded, req.left, req.uploaded, req.event.value, 0, req.key,
        -1 if req.numwant is None else min(req.numwant, 2**31 - 1), req.port,
    )  # fmt: skip
    options = b"".join(
        bytes([_OPTION_URL_DATA, len(url_data[i : i + 255])]) + url_data[i : i + 255]
        for i in range(0, len(url_data), 255)
    )
    return packet + options


def encode_scrape(connection_id: int, transaction_id: int, info_hashes: Sequence[InfoHash]) -> bytes:
    if not 0 < len(info_hashes) <= MAX_SCRAPE_HASHES:
        raise ValueError(f"a UDP scrape asks about 1..{MAX_SCRAPE_HASHES} info hashes")
    return _CONNECT.pack(connection_id, ACTION_SCRAPE, transaction_id) + b"".join(
        h.value for h in info_hashes
    )


def decode_header(data: bytes) -> tuple[int, int]:
    """``(action, transaction_id)`` of an answer; RemoteProtocolError below 8 bytes."""
    if len(data) < _HEADER.size:
        raise RemoteProtocolError(f"UDP tracker packet of {len(data)} bytes is shorter than its header")
    action, tid = _HEADER.unpack_from(data)
    return action, tid


def parse_connect(data: bytes) -> int:
    """The connection id from a connect answer."""
    if len(data) < 16:
        raise RemoteProtocolError(f"UDP connect answer of {len(data)} bytes (16 expected)")
    return int.from_bytes(data[8:16], "big")


def parse_announce(data: bytes, *, ipv6: bool, cfg: TrackerConfig) -> AnnounceResponse:
    """An announce answer: interval, leechers, seeders, then 6- (or 18-, over IPv6) byte peers."""
    if len(data) < 20:
        raise RemoteProtocolError(f"UDP announce answer of {len(data)} bytes (at least 20 expected)")
    interval, leechers, seeders = _ANNOUNCE_RESP.unpack_from(data, 8)
    peers = decode_compact(bytes(data[20:]), ipv6=ipv6, limit=cfg.max_peers)
    return AnnounceResponse(
        interval=float(min(max(interval, cfg.min_interval), cfg.max_interval)),
        peers=tuple(peers),
        complete=seeders,
        incomplete=leechers,
    )


def parse_scrape(data: bytes, info_hashes: Sequence[InfoHash]) -> ScrapeResponse:
    """A scrape answer: one (seeders, completed, leechers) triple per hash asked, in order."""
    body = bytes(data[8:])
    if len(body) % _SCRAPE_ENTRY.size or len(body) // _SCRAPE_ENTRY.size > len(info_hashes):
        raise RemoteProtocolError(
            f"UDP scrape answer of {len(data)} bytes does not fit {len(info_hashes)} hashes"
        )
    files: dict[InfoHash, ScrapeStats] = {}
    for i, (seeders, completed, leechers) in enumerate(_SCRAPE_ENTRY.iter_unpack(body)):
        files[info_hashes[i]] = ScrapeStats(complete=seeders, downloaded=completed, incomplete=leechers)
    return ScrapeResponse(files)


def parse_error(data: bytes, max_text: int) -> str:
    """The human-readable message of an error answer (action 3)."""
    return bytes(data[8 : 8 + max_text]).decode("utf-8", "replace") or "(no message)"


# -- server side (our loopback test tracker) -----------------------------------------------
@dataclass(frozen=True, slots=True)
class UdpRequest:
    """A request as a tracker sees it."""

    action: int
    transaction_id: int
    connection_id: int
    announce: AnnounceRequest | None = None
    info_hashes: tuple[InfoHash, ...] = ()
    url_data: bytes = b""  #: BEP 41 URLData options of an announce, joined


def decode_request(data: bytes) -> UdpRequest:
    """Parse a client's connect, announce or scrape request; RemoteProtocolError if malformed."""
    if len(data) < 16:
        raise RemoteProtocolError("UDP tracker request shorter than 16 bytes")
    conn, action, tid = _CONNECT.unpack_from(data)
    if action == ACTION_CONNECT:
        if conn != PROTOCOL_ID:
            raise RemoteProtocolError("connect request without the protocol id")
        return UdpRequest(action, tid, conn)
    if action == ACTION_ANNOUNCE:
        if len(data) < _ANNOUNCE.size:
            raise RemoteProtocolError("UDP announce request shorter than 98 bytes")
        f = _ANNOUNCE.unpack_from(data)
        req = AnnounceRequest(
            info_hash=InfoHash(f[3]), peer_id=f[4], downloaded=f[5], left=f[6], uploaded=f[7],
            event=AnnounceEvent(f[8]) if f[8] in (0, 1, 2, 3) else AnnounceEvent.NONE,
            key=f[10], numwant=None if f[11] < 0 else f[11], port=f[12],
        )  # fmt: skip
        return UdpRequest(action, tid, conn, announce=req, url_data=_url_data(data[_ANNOUNCE.size :]))
    if action == ACTION_SCRAPE:
        body = data[16:]
        if not body or len(body) % 20 or len(body) // 20 > MAX_SCRAPE_HASHES:
            raise RemoteProtocolError("UDP scrape request with a bad hash list")
        hashes = tuple(InfoHash(bytes(body[i : i + 20])) for i in range(0, len(body), 20))
        return UdpRequest(action, tid, conn, info_hashes=hashes)
    raise RemoteProtocolError(f"unknown UDP tracker action {action}")


def _url_data(options: bytes) -> bytes:
    """The URLData of BEP 41 options; a truncated option ends the list."""
    out, pos = bytearray(), 0
    while pos < len(options) and options[pos] != _OPTION_END:
        kind = options[pos]
        if kind == _OPTION_NOP:
            pos += 1
            continue
        if pos + 1 >= len(options):
            break
        size = options[pos + 1]
        if kind == _OPTION_URL_DATA:
            out += options[pos + 2 : pos + 2 + size]
        pos += 2 + size
    return bytes(out)


def encode_connect_response(transaction_id: int, connection_id: int) -> bytes:
    return _HEADER.pack(ACTION_CONNECT, transaction_id) + connection_id.to_bytes(8, "big")


def encode_announce_response(
    transaction_id: int, interval: int, leechers: int, seeders: int, peers: Sequence[PeerAddress]
) -> bytes:
    head = _HEADER.pack(ACTION_ANNOUNCE, transaction_id) + _ANNOUNCE_RESP.pack(interval, leechers, seeders)
    return head + encode_compact(peers)


def encode_scrape_response(transaction_id: int, stats: Sequence[ScrapeStats]) -> bytes:
    body = b"".join(_SCRAPE_ENTRY.pack(s.complete, s.downloaded, s.incomplete) for s in stats)
    return _HEADER.pack(ACTION_SCRAPE, transaction_id) + body


def encode_error(transaction_id: int, message: str) -> bytes:
    return _HEADER.pack(ACTION_ERROR, transaction_id) + message.encode("utf-8")
