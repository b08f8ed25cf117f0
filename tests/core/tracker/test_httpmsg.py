"""The bounded HTTP/1.1 response reader, fed whole, byte by byte and at every split point."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.core.tracker import HttpResponse, HttpResponseReader, build_get
from p2pshare.errors import LocalProtocolError, RemoteProtocolError

LIMITS = dict(max_header_bytes=512, max_headers=8, max_body=256)

LENGTH = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nd1:ai1ee..."
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"4;ext=1\r\nd1:a\r\n7\r\ni1ee...\r\n0\r\nX-Trailer: y\r\n\r\n"
)
CLOSE = b"HTTP/1.0 200 OK\nServer: old\n\nd1:ai1ee..."
INTERIM = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"


def read(chunks: list[bytes], eof: bool = True) -> HttpResponse:
    reader = HttpResponseReader(**LIMITS)
    for chunk in chunks:
        reader.receive_data(chunk)
    if eof:
        reader.receive_eof()
    response = reader.next_event()
    assert response is not None
    assert reader.next_event() is None
    return response


@pytest.mark.parametrize("raw", [LENGTH, CHUNKED, CLOSE], ids=["length", "chunked", "close"])
def test_body_is_the_same_whole_byte_by_byte_and_at_every_split(raw: bytes) -> None:
    """Content-Length, chunked and read-until-close bodies come out identical however the bytes arrive."""
    whole = read([raw])
    assert whole.status == 200 and whole.body == b"d1:ai1ee..."
    assert read([raw[i : i + 1] for i in range(len(raw))]) == whole
    for cut in range(len(raw) + 1):
        assert read([raw[:cut], raw[cut:]]) == whole


def test_interim_answers_are_skipped_and_redirects_are_recognised() -> None:
    """A 100 Continue is skipped; the 302 with Location that follows is a redirect with an empty body."""
    for cut in range(len(INTERIM) + 1):
        response = read([INTERIM[:cut], INTERIM[cut:]], eof=False)
        assert response.status == 302 and response.is_redirect
        assert response.header("LOCATION") == "/x" and response.body == b""


def test_length_framed_response_completes_without_eof_and_ignores_extra_bytes() -> None:
    """A Content-Length response is complete at its last byte; bytes after it are ignored."""
    reader = HttpResponseReader(**LIMITS)
    reader.receive_data(LENGTH + b"garbage")
    assert reader.complete
    reader.receive_data(b"more")
    response = reader.next_event()
    assert response is not None and response.body == b"d1:ai1ee..."


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 257,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n101\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n80\r\n"
        + b"x" * 128
        + b"\r\n80\r\n"
        + b"x" * 129,
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 600,
        b"HTTP/1.1 200 OK\r\n" + b"X: a\r\n" * 9 + b"\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 600,
        "HTTP/1.1 ²00 OK\r\n\r\n".encode("latin-1"),  # str.isdigit() says yes, int() says no
        "HTTP/1.1 200 OK\r\nContent-Length: ²\r\n\r\n".encode("latin-1"),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\na\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
    ],
)
def test_limits_and_malformations_raise_remote_protocol_error(raw: bytes) -> None:
    """Oversize heads/bodies/chunks, too many headers and malformed framing raise RemoteProtocolError."""
    reader = HttpResponseReader(**LIMITS)
    with pytest.raises(RemoteProtocolError):
        reader.receive_data(raw)
        reader.receive_eof()


def test_early_close_is_an_error() -> None:
    """A connection that closes inside a Content-Length body is a protocol error."""
    reader = HttpResponseReader(**LIMITS)
    reader.receive_data(LENGTH[:-3])
    with pytest.raises(RemoteProtocolError, match="before"):
        reader.receive_eof()
    assert reader.next_event() is None


@given(st.binary(max_size=200), st.integers(0, 200))
def test_reader_fuzz_raises_only_protocol_errors(raw: bytes, cut: int) -> None:
    """Arbitrary bytes, split anywhere, either parse or raise RemoteProtocolError."""
    reader = HttpResponseReader(**LIMITS)
    try:
        reader.receive_data(raw[:cut])
        reader.receive_data(raw[cut:])
        reader.receive_eof()
    except RemoteProtocolError:
        return
    response = reader.next_event()
    assert response is not None and len(response.body) <= LIMITS["max_body"]


def test_build_get_has_host_and_close_and_refuses_injection() -> None:
    """The request is a GET with Host and Connection: close; CR/LF in any part is refused."""
    raw = build_get("/announce?x=%00", "t.example:8080", "p2pshare/1")
    assert raw.startswith(b"GET /announce?x=%00 HTTP/1.1\r\nHost: t.example:8080\r\n")
    assert b"\r\nConnection: close\r\n\r\n" in raw and raw.endswith(b"\r\n\r\n")
    with pytest.raises(LocalProtocolError):
        build_get("/a\r\nX: y", "h", "ua")
    with pytest.raises(LocalProtocolError):
        build_get("no-slash", "h", "ua")
