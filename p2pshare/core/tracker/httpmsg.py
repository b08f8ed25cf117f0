"""A small sans-I/O HTTP/1.1 client codec: one GET out, one bounded response in.

Theory of operation
-------------------
:func:`build_get` makes the request bytes (``Connection: close``, no body).
:class:`HttpResponseReader` is fed with ``receive_data(data)`` and ``receive_eof()``;
``next_event()`` returns the whole :class:`HttpResponse` once it is complete, else None.

States, in order: ``HEAD`` (status line and headers, at most ``max_header_bytes`` and
``max_headers`` lines; interim 1xx answers are skipped), then one of ``LENGTH``
(``Content-Length`` bytes), ``CHUNK_SIZE`` / ``CHUNK_DATA`` / ``CHUNK_END`` / ``TRAILERS``
(``Transfer-Encoding: chunked``) or ``UNTIL_CLOSE`` (neither: the body ends with the
connection), and finally ``DONE``.  A body longer than ``max_body``, a malformed line
or an early close is a :class:`~p2pshare.errors.RemoteProtocolError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

from p2pshare.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["HttpResponse", "HttpResponseReader", "build_get"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _ascii_digits(text: str) -> bool:
    """Only 0-9 (``str.isdigit`` also accepts the likes of '²', which ``int`` refuses)."""
    return bool(text) and text.isascii() and text.isdigit()


def build_get(target: str, host_header: str, user_agent: str) -> bytes:
    """The bytes of ``GET target`` with the headers a tracker needs."""
    if any(c in target + host_header + user_agent for c in "\r\n\0") or not target.startswith("/"):
        raise LocalProtocolError(f"refusing to build a request with a malformed target {target!r}")
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host_header}",
        f"User-Agent: {user_agent}",
        "Accept: */*",
        "Accept-Encoding: identity",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii", "strict")


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A complete response: status, headers (names lower-cased, in order) and body."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found

    @property
    def is_redirect(self) -> bool:
        return self.status in _REDIRECTS and self.header("location") is not None


class _State(Enum):
    HEAD = auto()
    LENGTH = auto()
    CHUNK_SIZE = auto()
    CHUNK_DATA = auto()
    CHUNK_END = auto()
    TRAILERS = auto()
    UNTIL_CLOSE = auto()
    DONE = auto()


class HttpResponseReader:
    """Reads one HTTP/1.x response, bounded in head size, header count and body size."""

    def __init__(self, *, max_header_bytes: int, max_headers: int, max_body: int) -> None:
        self._max_head = max_header_bytes
        self._max_headers = max_headers
        self._max_body = max_body
        self._buf = bytearray()
        self._state = _State.HEAD
        self._status = 0
        self._reason = ""
        self._headers: tuple[tuple[str, str], ...] = ()
        self._body = bytearray()
        self._remaining = 0  #: LENGTH / CHUNK_DATA: bytes still to come
        self._done: HttpResponse | None = None
        self._delivered = False

    # -- the verbs -------------------------------------------------------------------------
    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the connection."""
        if self._state is _State.DONE:
            return  # anything after the response (we asked to close) is ignored
        self._buf += data
        self._advance()

    def receive_eof(self) -> None:
        """The connection closed; a body delimited by close ends here, anything else is cut short."""
        if self._state is _State.UNTIL_CLOSE:
            self._finish()
        elif self._state is not _State.DONE:
            raise RemoteProtocolError("tracker closed the connection before the HTTP answer was complete")

    def next_event(self) -> HttpResponse | None:
        """The response once complete (returned once), else None."""
        if self._done is not None and not self._delivered:
            self._delivered = True
            return self._done
        return None

    @property
    def complete(self) -> bool:
        return self._state is _State.DONE

    # -- the machine -----------------------------------------------------------------------
    def _advance(self) -> None:
        while True:
            state = self._state
            if state is _State.HEAD:
                if not self._read_head():
                    return
            elif state is _State.LENGTH or state is _State.CHUNK_DATA:
                take = min(self._remaining, len(self._buf))
                self._append(self._buf[:take])
                del self._buf[:take]
                self._remaining -= take
                if self._remaining:
                    return
                if state is _State.LENGTH:
                    self._finish()
                    return
                self._state = _State.CHUNK_END
            elif state is _State.CHUNK_SIZE:
                line = self._line()
                if line is None:
                    return
                size_text = line.split(b";", 1)[0].strip()
                if not size_text or len(size_text) > 16 or not all(c in _HEX for c in size_text):
                    raise RemoteProtocolError(f"malformed chunk size {size_text[:32]!r}")
                size = int(size_text, 16)
                if len(self._body) + size > self._max_body:
                    raise RemoteProtocolError(f"tracker answer exceeds {self._max_body} bytes")
                self._remaining = size
                self._state = _State.CHUNK_DATA if size else _State.TRAILERS
            elif state is _State.CHUNK_END:
                line = self._line()
                if line is None:
                    return
                if line:
                    raise RemoteProtocolError("chunk data is not followed by CRLF")
                self._state = _State.CHUNK_SIZE
            elif state is _State.TRAILERS:
                line = self._line()
                if line is None:
                    return
                if not line:
                    self._finish()
                    return
            elif state is _State.UNTIL_CLOSE:
                self._append(self._buf)
                self._buf.clear()
                return
            else:
                return

    def _append(self, chunk: bytes | bytearray) -> None:
        if len(self._body) + len(chunk) > self._max_body:
            raise RemoteProtocolError(f"tracker answer exceeds {self._max_body} bytes")
        self._body += chunk

    def _line(self) -> bytes | None:
        """One CRLF- (or LF-) terminated line, bounded by ``max_header_bytes``."""
        end = self._buf.find(b"\n")
        if end < 0:
            if len(self._buf) > self._max_head:
                raise RemoteProtocolError(f"HTTP line longer than {self._max_head} bytes")
            return None
        if end > self._max_head:
            raise RemoteProtocolError(f"HTTP line longer than {self._max_head} bytes")
        line = bytes(self._buf[:end]).removesuffix(b"\r")
        del self._buf[: end + 1]
        return line

    def _read_head(self) -> bool:
        end, sep = self._buf.find(b"\r\n\r\n"), 4
        lf = self._buf.find(b"\n\n")
        if lf >= 0 and (end < 0 or lf < end):
            end, sep = lf, 2
        if end < 0:
            if len(self._buf) > self._max_head:
                raise RemoteProtocolError(f"HTTP header longer than {self._max_head} bytes")
            return False
        if end + sep > self._max_head:
            raise RemoteProtocolError(f"HTTP header longer than {self._max_head} bytes")
        head = bytes(self._buf[:end]).decode("latin-1")
        del self._buf[: end + sep]
        lines = head.replace("\r\n", "\n").split("\n")
        self._parse_status(lines[0])
        if len(lines) - 1 > self._max_headers:
            raise RemoteProtocolError(f"HTTP answer has more than {self._max_headers} header lines")
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip() or line[:1] in " \t":
                raise RemoteProtocolError(f"malformed HTTP header line {line[:64]!r}")
            headers.append((name.lower(), value.strip()))
        self._headers = tuple(headers)
        if 100 <= self._status < 200:
            return True  # interim answer: the real head follows
        self._choose_framing()
        return True

    def _parse_status(self, line: str) -> None:
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not _ascii_digits(code):
            raise RemoteProtocolError(f"malformed HTTP status line {line[:64]!r}")
        self._status, self._reason = int(code), reason.strip()

    def _choose_framing(self) -> None:
        values = dict(self._headers)
        if self._status in (204, 304):
            self._finish()
            return
        encoding = [
            t.strip().lower()
            for name, v in self._headers
            if name == "transfer-encoding"
            for t in v.split(",")
        ]
        if encoding:
            if encoding[-1] != "chunked" or any(t not in ("chunked", "identity") for t in encoding):
                raise RemoteProtocolError(f"unsupported Transfer-Encoding {values['transfer-encoding']!r}")
            self._state = _State.CHUNK_SIZE
            return
        lengths = {v.strip() for name, v in self._headers if name == "content-length"}
        if not lengths:
            self._state = _State.UNTIL_CLOSE
            return
        if len(lengths) != 1 or not _ascii_digits(text := lengths.pop()) or len(text) > 18:
            raise RemoteProtocolError("malformed or conflicting Content-Length")
        length = int(text)
        if length > self._max_body:
            raise RemoteProtocolError(f"tracker answer of {length} bytes exceeds {self._max_body}")
        self._remaining = length
        self._state = _State.LENGTH
        if not length:
            self._finish()

    def _finish(self) -> None:
        self._state = _State.DONE
        self._buf.clear()
        self._done = HttpResponse(self._status, self._reason, self._headers, bytes(self._body))
