"""Talking to trackers: HTTP(S) over asyncio streams, UDP over one socket per tracker.

Why our own small HTTP client rather than aiohttp or httpx: a tracker exchange is one
``GET`` with a small answer, and what matters is that a hostile tracker cannot make us
hold much (answer size, header size, redirects, time).  The sans-I/O reader in
:mod:`p2pshare.core.tracker.httpmsg` enforces those limits byte by byte and is tested
at every split point; a general client would add a dependency tree for features
(pools, cookies, compression, HTTP/2) we do not want a tracker to reach.  TLS is the
standard library's ``ssl`` with a default (verifying) context.

Every step has a deadline from :class:`~p2pshare.config.TrackerConfig`: resolving and
connecting (``connect_timeout``), the whole HTTP exchange with its redirects
(``http_timeout``), UDP host resolution (``resolve_timeout``) and UDP retries (the BEP 15
schedule in the machine).  Failures come out as :class:`TrackerError` subclasses or
:class:`~p2pshare.errors.RemoteProtocolError`; nothing else escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Sequence
from urllib.parse import urljoin

from p2pshare import __version__
from p2pshare.config import TrackerConfig
from p2pshare.core.tracker import http as http_codec
from p2pshare.core.tracker.errors import (
    TrackerError,
    TrackerTimeout,
    TrackerUnreachable,
    UnsupportedTracker,
)
from p2pshare.core.tracker.httpmsg import HttpResponse, HttpResponseReader, build_get
from p2pshare.core.tracker.messages import AnnounceRequest, AnnounceResponse, ScrapeResponse
from p2pshare.core.tracker.udp_machine import (
    AnnounceDone,
    RequestFailed,
    ScrapeDone,
    UdpEvent,
    UdpTrackerMachine,
)
from p2pshare.core.tracker.url import TrackerUrl, parse_tracker_url, scrape_url
from p2pshare.core.types import InfoHash
from p2pshare.errors import RemoteProtocolError

__all__ = ["TrackerClient", "USER_AGENT"]

USER_AGENT = f"p2pshare/{__version__}"
_READ_SIZE = 64 * 1024


class TrackerClient:
    """Announce to and scrape any http, https or udp tracker; one per torrent (or session)."""

    def __init__(
        self,
        cfg: TrackerConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = USER_AGENT,
        local_host: str | None = None,
    ) -> None:
        """``local_host``: the address our sockets bind to (the one we accept peers on), so the
        tracker records the right address; None lets the system choose."""
        self._cfg = cfg
        self._local_host = local_host
        self._ssl = ssl_context
        self._user_agent = user_agent
        self._udp: dict[tuple[str, int, str], _UdpSession] = {}
        self._closed = False

    async def announce(self, url: str, request: AnnounceRequest) -> AnnounceResponse:
        """One announce; raises TrackerError (incl. TrackerFailure) or RemoteProtocolError."""
        target = parse_tracker_url(url)
        if target.scheme == "udp":
            event = await self._udp_session(target).request(lambda m, now: m.start_announce(request, now))
            if isinstance(event, AnnounceDone):
                return event.response
            raise _failure(event)
        response = await self._http_get(http_codec.announce_url(url, request))
        return http_codec.parse_announce_response(response.body, self._cfg)

    async def scrape(self, url: str, info_hashes: Sequence[InfoHash]) -> ScrapeResponse:
        """One scrape of up to ``max_scrape_files`` hashes."""
        target = parse_tracker_url(url)
        hashes = list(info_hashes)[: self._cfg.max_scrape_files]
        if target.scheme == "udp":
            event = await self._udp_session(target).request(lambda m, now: m.start_scrape(hashes, now))
            if isinstance(event, ScrapeDone):
                return event.response
            raise _failure(event)
        base = scrape_url(url)
        if base is None:
            raise UnsupportedTracker(f"tracker {url} has no scrape URL (its path does not end in 'announce')")
        response = await self._http_get(http_codec.scrape_request_url(base, hashes))
        return http_codec.parse_scrape_response(response.body, self._cfg)

    async def aclose(self) -> None:
        """Close every UDP socket; later requests fail."""
        self._closed = True
        sessions, self._udp = list(self._udp.values()), {}
        for session in sessions:
            session.close()

    # -- HTTP ----------------------------------------------------------------------------------
    async def _http_get(self, url: str) -> HttpResponse:
        try:
            async with asyncio.timeout(self._cfg.http_timeout):
                for _ in range(self._cfg.max_redirects + 1):
                    target = parse_tracker_url(url)
                    if target.scheme not in ("http", "https"):
                        raise UnsupportedTracker(f"HTTP tracker redirected to a non-HTTP URL {url!r}")
                    response = await self._fetch_once(target)
                    if not response.is_redirect:
                        return _check_status(response, self._cfg)
                    url = urljoin(url, response.header("location") or "")
                raise TrackerUnreachable(f"more than {self._cfg.max_redirects} HTTP redirects")
        except TimeoutError:
            raise TrackerTimeout(f"HTTP tracker did not answer within {self._cfg.http_timeout:g} s") from None

    async def _fetch_once(self, target: TrackerUrl) -> HttpResponse:
        ctx: ssl.SSLContext | None = None
        if target.scheme == "https":
            ctx = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(self._cfg.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    target.host,
                    target.port,
                    ssl=ctx,
                    server_hostname=target.host if ctx else None,
                    local_addr=(self._local_host, 0) if self._local_host else None,
                )
        except TimeoutError:
            raise TrackerTimeout(f"could not connect to {target.host}:{target.port} in time") from None
        except (OSError, ssl.SSLError) as exc:
            raise TrackerUnreachable(f"cannot reach tracker {target.host}:{target.port}: {exc}") from None
        parser = HttpResponseReader(
            max_header_bytes=self._cfg.max_header_bytes,
            max_headers=self._cfg.max_headers,
            max_body=self._cfg.max_response_bytes,
        )
        try:
            writer.write(build_get(target.target, target.host_header, self._user_agent))
            await writer.drain()
            while (response := parser.next_event()) is None:
                data = await reader.read(_READ_SIZE)
                if data:
                    parser.receive_data(data)
                else:
                    parser.receive_eof()
            return response
        except (OSError, ssl.SSLError) as exc:
            raise TrackerUnreachable(f"connection to tracker {target.host} failed: {exc}") from None
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._cfg.close_timeout):
                    await writer.wait_closed()

    # -- UDP -----------------------------------------------------------------------------------
    def _udp_session(self, target: TrackerUrl) -> _UdpSession:
        if self._closed:
            raise TrackerError("the tracker client is closed")
        key = (target.host, target.port, target.target)  # the path (BEP 41) may carry a passkey
        session = self._udp.get(key)
        if session is None:
            session = self._udp[key] = _UdpSession(self._cfg, target, self._local_host)
        return session


def _check_status(response: HttpResponse, cfg: TrackerConfig) -> HttpResponse:
    if response.status == 200:
        return response
    # Some trackers send a bencoded failure reason with an error status: prefer their words.
    with contextlib.suppress(RemoteProtocolError):
        http_codec.parse_announce_response(response.body, cfg)
    raise TrackerUnreachable(f"tracker answered HTTP {response.status} {response.reason}".rstrip())


def _failure(event: UdpEvent) -> Exception:
    if isinstance(event, RequestFailed):
        return event.error
    return TrackerError(
        f"UDP tracker machine answered {type(event).__name__}"
    )  # never: it answers what was asked


class _UdpSession(asyncio.DatagramProtocol):
    """One connected UDP socket and one BEP 15 machine for one tracker address."""

    def __init__(self, cfg: TrackerConfig, target: TrackerUrl, local_host: str | None) -> None:
        self._cfg = cfg
        self._local_host = local_host
        self._host, self._port = target.host, target.port
        # BEP 41: the URL's path and query travel with each announce (passkeys live there).
        self._url_data = b"" if target.target == "/" else target.target.encode("utf-8", "replace")
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None
        self._machine: UdpTrackerMachine | None = None
        self._error: Exception | None = None

    async def request(self, start: Callable[[UdpTrackerMachine, float], None]) -> UdpEvent:
        async with self._lock:
            machine = await self._open()
            loop = asyncio.get_running_loop()
            self._error = None  # an ICMP error that came in between requests is old news
            start(machine, loop.time())
            try:
                while True:
                    self._flush(machine)
                    event = machine.next_event()
                    if event is not None:
                        return event
                    if self._error is not None:
                        error, self._error = self._error, None
                        raise TrackerUnreachable(f"UDP tracker {self._host}:{self._port}: {error}")
                    timer = machine.get_timer()
                    self._wake.clear()
                    if timer is not None:
                        with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow a cancel
                            async with asyncio.timeout(max(0.0, timer - loop.time())):
                                await self._wake.wait()
                    machine.handle_timer(loop.time())
            finally:
                machine.cancel()  # a no-op once the request ended; else (cancelled, unreachable) a reset

    async def _open(self) -> UdpTrackerMachine:
        if self._machine is not None:
            return self._machine
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._cfg.resolve_timeout):
                infos = await loop.getaddrinfo(self._host, self._port, type=socket.SOCK_DGRAM)
            family, _, _, _, addr = infos[0]
            self._transport, _ = await loop.create_datagram_endpoint(
                lambda: self,
                remote_addr=(str(addr[0]), int(addr[1])),
                family=family,
                local_addr=(self._local_host, 0) if self._local_host else None,
            )
        except TimeoutError:
            raise TrackerTimeout(f"resolving UDP tracker {self._host} took too long") from None
        except (OSError, IndexError) as exc:
            raise TrackerUnreachable(f"cannot reach UDP tracker {self._host}:{self._port}: {exc}") from None
        self._machine = UdpTrackerMachine(self._cfg, ipv6=family == socket.AF_INET6, url_data=self._url_data)
        return self._machine

    def _flush(self, machine: UdpTrackerMachine) -> None:
        for datagram in machine.datagrams_to_send():
            if self._transport is not None and not self._transport.is_closing():
                self._transport.sendto(datagram)

    # -- asyncio.DatagramProtocol ------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self._machine is not None:
            self._machine.receive_datagram(data, asyncio.get_running_loop().time())
            self._wake.set()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the tracker is not there, so fail fast
        # rather than wait out the BEP 15 retries (the next tracker in the tier gets its turn).
        self._error = exc
        self._wake.set()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = None
        self._machine = None
