"""Fuzz targets for what trackers send us: HTTP announce/scrape bodies, HTTP framing, UDP answers.

Registered in :data:`fuzz.targets.TARGETS`; each may raise only the typed errors that
mean "bad answer, try the next tracker".
"""

from __future__ import annotations

import random
import struct

from fuzz.targets import INFO_HASH, Target
from p2pshare.config import TrackerConfig
from p2pshare.core import bencode
from p2pshare.core.tracker import (
    AnnounceEvent,
    AnnounceRequest,
    HttpResponseReader,
    RequestFailed,
    TrackerError,
    UdpTrackerMachine,
    parse_announce_response,
    parse_scrape_response,
    udp,
)
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.errors import RemoteProtocolError

__all__ = ["TRACKER_TARGETS"]

CFG = TrackerConfig()
_V4 = bytes([127, 0, 0, 2, 0x1A, 0xE1, 10, 0, 0, 1, 0, 80])
_V6 = bytes(15) + b"\x01\x1a\xe2"


def _announce_seeds() -> list[bytes]:
    return [
        bencode.encode(
            {
                b"interval": 1800,
                b"min interval": 900,
                b"complete": 3,
                b"incomplete": 1,
                b"peers": _V4,
                b"peers6": _V6,
                b"tracker id": b"T",
            }
        ),
        bencode.encode(
            {b"interval": 60, b"peers": [{b"ip": b"127.0.0.5", b"port": 7000, b"peer id": b"x" * 20}]}
        ),
        bencode.encode({b"interval": 5, b"peers": b"", b"warning message": b"w"}),
    ]


def _announce_run(data: bytes) -> None:
    parse_announce_response(data, CFG)


def _scrape_seeds() -> list[bytes]:
    stats = {b"complete": 1, b"downloaded": 2, b"incomplete": 3}
    return [bencode.encode({b"files": {INFO_HASH: stats, b"\x01" * 20: {}}}), bencode.encode({b"files": {}})]


def _scrape_run(data: bytes) -> None:
    parse_scrape_response(data, CFG)


def _http_seeds() -> list[bytes]:
    body = _announce_seeds()[0]
    return [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX: y\r\n\r\n%s" % (len(body), body),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nd1:ai\r\n3\r\n1ee\r\n0\r\n\r\n",
        b"HTTP/1.0 302 Found\nLocation: /a\n\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nde",
    ]


def _http_run(data: bytes) -> None:
    reader = HttpResponseReader(max_header_bytes=4096, max_headers=32, max_body=CFG.max_response_bytes)
    cut = data[0] % (len(data) + 1) if data else 0
    reader.receive_data(data[:cut])
    reader.receive_data(data[cut:])
    reader.receive_eof()
    response = reader.next_event()
    if response is None or len(response.body) > CFG.max_response_bytes:
        raise AssertionError("a complete reader gave no response, or an oversize one")


_REQUEST = AnnounceRequest(
    info_hash=InfoHash(INFO_HASH), peer_id=b"-PS0100-aaaaaaaaaaaa", port=1, event=AnnounceEvent.STARTED
)


def _udp_seeds() -> list[bytes]:
    """Answers as length-prefixed datagrams; the harness stamps the live transaction id into each.

    A zero length lets the retry timer fire.  Errors and refusals come from mutations (a seed
    must be accepted).
    """
    connect = udp.encode_connect_response(0, 0x1122334455667788)
    announce = udp.encode_announce_response(0, 1800, 1, 2, [PeerAddress("127.0.0.2", 6881)])
    framed = bytes([len(connect)]) + connect + bytes([len(announce)]) + announce
    return [framed, b"\x00" + framed]


def _udp_run(data: bytes) -> None:
    """Feed datagrams (1-byte length prefix) with our transaction id; a length of 0 lets a timer fire."""
    m = UdpTrackerMachine(CFG, rand=random.Random(5))
    now = 0.0
    m.start_announce(_REQUEST, now)
    last = m.datagrams_to_send()[-1]
    pos = 0
    while pos < len(data) and m.busy:
        size = data[pos]
        chunk = data[pos + 1 : pos + 1 + size]
        pos += 1 + size
        if size == 0:
            now = m.get_timer() or now
            m.handle_timer(now)
        else:
            tid = struct.unpack_from(">I", last, 12)[0]  # connect and announce both carry it at 12
            m.receive_datagram(chunk[:4] + struct.pack(">I", tid) + chunk[8:], now)
        out = m.datagrams_to_send()
        if out:
            last = out[-1]
    while (event := m.next_event()) is not None:
        if isinstance(event, RequestFailed):
            raise event.error


TRACKER_TARGETS: tuple[Target, ...] = (
    Target("tracker_announce", _announce_run, (RemoteProtocolError, TrackerError), _announce_seeds, True),
    Target("tracker_scrape", _scrape_run, (RemoteProtocolError, TrackerError), _scrape_seeds, True),
    Target("tracker_http", _http_run, (RemoteProtocolError,), _http_seeds, False),
    Target("tracker_udp", _udp_run, (RemoteProtocolError, TrackerError), _udp_seeds, False),
)
