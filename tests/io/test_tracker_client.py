"""The tracker client against loopback HTTP(S) and UDP trackers, well-behaved and not."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from p2pshare.config import TrackerConfig
from p2pshare.core import bencode
from p2pshare.core.tracker import (
    AnnounceEvent,
    AnnounceRequest,
    TrackerFailure,
    TrackerTimeout,
    TrackerUnreachable,
    UnsupportedTracker,
    udp,
)
from p2pshare.core.types import PeerAddress
from p2pshare.errors import RemoteProtocolError
from p2pshare.io.tracker_client import TrackerClient
from tests.helpers.tracker_servers import HttpTracker, UdpTracker, http_answer, info_hash, peer_id, requery

CFG = replace(TrackerConfig(), http_timeout=5.0, connect_timeout=2.0, udp_retry_base=0.05, udp_max_retries=3)
IH = info_hash(7)


def req(tag: int, port: int, event: AnnounceEvent = AnnounceEvent.STARTED, left: int = 0) -> AnnounceRequest:
    return AnnounceRequest(info_hash=IH, peer_id=peer_id(tag), port=port, left=left, event=event, numwant=50)


async def test_http_announce_returns_other_peers_and_scrape_counts_them() -> None:
    """A second announcer gets the first one's address back; scrape counts one seed and one leecher."""
    async with HttpTracker() as tracker:
        client = TrackerClient(CFG)
        first = await client.announce(tracker.url(), req(1, 7001))
        assert first.peers == () and first.interval == 1800.0
        second = await client.announce(tracker.url(), req(2, 7002, left=10))
        assert second.peers == (PeerAddress("127.0.0.1", 7001),)
        assert (second.complete, second.incomplete) == (1, 1)
        scraped = await client.scrape(tracker.url(), [IH])
        assert (scraped.files[IH].complete, scraped.files[IH].incomplete) == (1, 1)
        path, query = tracker.requests[0]
        assert path == "/announce" and query["info_hash"] == [IH.value] and query["event"] == [b"started"]
        await client.aclose()


async def test_redirects_are_followed_up_to_the_limit() -> None:
    """Relative and absolute redirects are followed; one hop too many is TrackerUnreachable."""
    async with HttpTracker() as tracker:
        tracker.script["/r1"] = lambda q: http_answer(b"", "302 Found", (f"Location: /r2?{requery(q)}",))
        tracker.script["/r2"] = lambda q: http_answer(
            b"", "307 Temporary", (f"Location: {tracker.url()}?{requery(q)}",)
        )
        tracker.script["/loop"] = lambda q: http_answer(b"", "301 Moved", ("Location: /loop",))
        client = TrackerClient(replace(CFG, max_redirects=2))
        response = await client.announce(tracker.url("/r1"), req(1, 7001))
        assert response.interval == 1800.0
        assert [p for p, _ in tracker.requests] == ["/r1", "/r2", "/announce"]
        assert tracker.requests[2][1]["info_hash"] == [IH.value]
        with pytest.raises(TrackerUnreachable, match="redirects"):
            await client.announce(tracker.url("/loop"), req(1, 7001))
        assert [p for p, _ in tracker.requests].count("/loop") == 3


async def test_redirect_to_another_scheme_is_refused() -> None:
    """A redirect to a udp:// or file:// URL is not followed."""
    async with HttpTracker() as tracker:
        tracker.script["/r"] = lambda q: http_answer(b"", "302 Found", ("Location: file:///etc/passwd",))
        with pytest.raises(UnsupportedTracker):
            await TrackerClient(CFG).announce(tracker.url("/r"), req(1, 7001))


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (http_answer(b"x" * 2000), RemoteProtocolError),  # over max_response_bytes
        (b"HTTP/1.1 200 OK\r\n\r\n" + b"y" * 2000, RemoteProtocolError),  # until-close, oversize
        (b"HTTP/1.1 200 OK\r\nX: " + b"h" * 5000 + b"\r\n\r\n", RemoteProtocolError),
        (http_answer(b"<html>hello</html>"), RemoteProtocolError),
        (b"\x00\xff garbage", RemoteProtocolError),
        (http_answer(b"d8:intervali60e5:peers5:abcdee"), RemoteProtocolError),
        (http_answer(b"d14:failure reason6:nope!!e"), TrackerFailure),
        (http_answer(b"d14:failure reason4:gonee", "403 Forbidden"), TrackerFailure),
        (http_answer(b"oops", "500 Internal Server Error"), TrackerUnreachable),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", RemoteProtocolError),
    ],
)
async def test_bad_answers_raise_typed_errors(answer: bytes, error: type[Exception]) -> None:
    """Oversize, garbage, truncated, refused and error-status answers each raise their own error type."""
    cfg = replace(CFG, max_response_bytes=1024, max_header_bytes=4096)
    async with HttpTracker() as tracker:
        tracker.script["/announce"] = lambda q: answer
        with pytest.raises(error):
            await TrackerClient(cfg).announce(tracker.url(), req(1, 7001))


async def test_chunked_answer_is_read() -> None:
    """A chunked answer split into several chunks parses like a plain one."""
    body = bencode.encode({b"interval": 120, b"peers": bytes([127, 0, 0, 9, 0, 80])})
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 5]), body[i : i + 5]) for i in range(0, len(body), 5)
    )
    async with HttpTracker() as tracker:
        tracker.script["/announce"] = lambda q: (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n"
        )
        response = await TrackerClient(CFG).announce(tracker.url(), req(1, 7001))
        assert response.peers == (PeerAddress("127.0.0.9", 80),) and response.interval == 120.0


async def test_silent_tracker_times_out_and_closed_port_is_unreachable() -> None:
    """A tracker that never answers hits http_timeout; a closed port is TrackerUnreachable."""
    async with HttpTracker() as tracker:
        tracker.script["/announce"] = lambda q: None
        client = TrackerClient(replace(CFG, http_timeout=0.3))
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TrackerTimeout):
            await client.announce(tracker.url(), req(1, 7001))
        assert loop.time() - started < 3.0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TrackerUnreachable):
        await TrackerClient(CFG).announce(f"http://127.0.0.1:{port}/announce", req(1, 7001))


async def test_scrape_needs_an_announce_url_by_convention() -> None:
    """An HTTP tracker whose path does not end in 'announce' cannot be scraped."""
    with pytest.raises(UnsupportedTracker):
        await TrackerClient(CFG).scrape("http://127.0.0.1:1/tracker", [IH])


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and a client trusting it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


async def test_https_announce_verifies_the_certificate(
    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """HTTPS works with a trusted certificate and fails as unreachable with an untrusted one."""
    server_ctx, client_ctx = tls_pair
    async with HttpTracker(ssl=server_ctx) as tracker:
        await TrackerClient(CFG, ssl_context=client_ctx).announce(tracker.url(), req(1, 7001))
        response = await TrackerClient(CFG, ssl_context=client_ctx).announce(tracker.url(), req(2, 7002))
        assert response.peers == (PeerAddress("127.0.0.1", 7001),)
        with pytest.raises(TrackerUnreachable):
            await TrackerClient(CFG).announce(tracker.url(), req(3, 7003))


async def test_udp_announce_and_scrape_share_one_connection_id() -> None:
    """Over UDP the second announcer gets the first; announce and scrape reuse one connect."""
    async with UdpTracker() as tracker:
        client = TrackerClient(CFG)
        await client.announce(tracker.url(), req(1, 7001))
        response = await client.announce(tracker.url(), req(2, 7002, left=5))
        assert response.peers == (PeerAddress("127.0.0.1", 7001),)
        scraped = await client.scrape(tracker.url(), [IH])
        assert (scraped.files[IH].complete, scraped.files[IH].incomplete) == (1, 1)
        assert [r.action for r in tracker.received] == [0, 1, 1, 2]
        assert {r.url_data for r in tracker.received if r.announce} == {b"/announce"}  # BEP 41
        await client.aclose()


async def test_udp_dropped_packets_are_retransmitted() -> None:
    """The first connect and announce are dropped; retries with fresh transaction ids get through."""
    async with UdpTracker() as tracker:
        dropped: set[int] = set()

        def drop(r: udp.UdpRequest) -> bool:
            if r.action in dropped:
                return False
            dropped.add(r.action)
            return True

        tracker.drop = drop
        client = TrackerClient(CFG)
        await client.announce(tracker.url(), req(1, 7001))
        assert [r.action for r in tracker.received] == [0, 0, 1, 1]
        assert len({r.transaction_id for r in tracker.received}) == 4
        await client.aclose()


async def test_udp_tracker_that_never_answers_times_out_after_the_retries() -> None:
    """All datagrams dropped: 1 + udp_max_retries connects go out, then TrackerTimeout."""
    async with UdpTracker() as tracker:
        tracker.drop = lambda r: True
        client = TrackerClient(CFG)
        with pytest.raises(TrackerTimeout):
            await client.announce(tracker.url(), req(1, 7001))
        assert [r.action for r in tracker.received] == [0] * (CFG.udp_max_retries + 1)
        tracker.drop = lambda r: False
        assert (await client.announce(tracker.url(), req(1, 7001))).interval == 1800.0
        await client.aclose()


async def test_udp_error_answer_is_a_tracker_failure() -> None:
    """An action-3 answer raises TrackerFailure with the tracker's message."""
    async with UdpTracker() as tracker:
        tracker.error = "Requested download is not authorized"
        client = TrackerClient(CFG)
        with pytest.raises(TrackerFailure, match="not authorized"):
            await client.announce(tracker.url(), req(1, 7001))
        await client.aclose()


async def test_udp_closed_port_fails_fast() -> None:
    """A UDP tracker port with nobody behind it fails without waiting out every retry."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = TrackerClient(replace(CFG, udp_retry_base=5.0))
    with pytest.raises((TrackerUnreachable, TrackerTimeout)):
        async with asyncio.timeout(4.0):
            await client.announce(f"udp://127.0.0.1:{port}", req(1, 7001))
    await client.aclose()


async def test_cancelled_udp_request_leaves_the_session_usable() -> None:
    """Cancelling an announce in flight resets the machine, so the next announce works."""
    async with UdpTracker() as tracker:
        tracker.drop = lambda r: True
        client = TrackerClient(replace(CFG, udp_retry_base=10.0))
        task = asyncio.create_task(client.announce(tracker.url(), req(1, 7001)))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        tracker.drop = lambda r: False
        assert (await client.announce(tracker.url(), req(1, 7001))).interval == 1800.0
        await client.aclose()


async def test_local_host_sets_the_address_trackers_record() -> None:
    """With local_host, both HTTP and UDP trackers see announces from that loopback address."""
    async with HttpTracker() as http_tracker, UdpTracker() as udp_tracker:
        client = TrackerClient(CFG, local_host="127.0.0.5")
        await client.announce(http_tracker.url(), req(1, 7001))
        await client.announce(udp_tracker.url(), req(1, 7001))
        expected = {PeerAddress("127.0.0.5", 7001): 0}
        assert http_tracker.swarm.peers[IH.value] == expected == udp_tracker.swarm.peers[IH.value]
        await client.aclose()
