"""A BEP 15 UDP tracker session as a sans-I/O machine: one tracker, one request at a time.

Theory of operation
-------------------
The adapter owns one UDP socket connected to the tracker and calls

* ``start_announce(request, now)`` or ``start_scrape(info_hashes, now)`` (one at a time);
* ``receive_datagram(data, now)`` for every datagram from the tracker;
* ``handle_timer(now)`` once ``now >= get_timer()``;

and after each call sends ``datagrams_to_send()`` and drains ``next_event()``.
(Datagram machines use the DHT node's verbs: a datagram is a unit, not a stream.)

A request first needs a connection id: when ours is missing or older than
``udp_connection_lifetime`` (BEP 15: one minute) we send *connect*, else the request
itself.  Every packet carries a fresh random transaction id; an answer with any other
id is stale or spoofed and ignored.  A try that gets no answer within
``udp_retry_base * 2**n`` seconds (capped at ``udp_retry_cap``) is retransmitted with
n + 1, going back to *connect* when the connection id has expired meanwhile; after
``udp_max_retries`` retransmissions the request ends with :class:`RequestFailed`
carrying :class:`TrackerTimeout`.  n counts timeouts of the whole request (connect
and announce together), so a tracker that answers connects but nothing else still
runs out of tries.  An *error* answer (action 3), or an announce answer
with nothing after its 8-byte header (how opentracker refuses a torrent it does not
list), ends the request with :class:`TrackerFailure`; a malformed answer with :class:`RemoteProtocolError`.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, auto

from p2pshare.config import TrackerConfig
from p2pshare.core.tracker import udp
from p2pshare.core.tracker.errors import TrackerError, TrackerFailure, TrackerTimeout
from p2pshare.core.tracker.messages import AnnounceRequest, AnnounceResponse, ScrapeResponse
from p2pshare.core.types import InfoHash
from p2pshare.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["AnnounceDone", "RequestFailed", "ScrapeDone", "UdpEvent", "UdpTrackerMachine"]


@dataclass(frozen=True, slots=True)
class AnnounceDone:
    """The tracker answered our announce."""

    response: AnnounceResponse


@dataclass(frozen=True, slots=True)
class ScrapeDone:
    """The tracker answered our scrape."""

    response: ScrapeResponse


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """The request ended without an answer: refused, timed out, or answered with garbage."""

    error: TrackerError | RemoteProtocolError


UdpEvent = AnnounceDone | ScrapeDone | RequestFailed


class _Phase(Enum):
    IDLE = auto()
    CONNECTING = auto()
    REQUESTING = auto()


class UdpTrackerMachine:
    """Connection id, transaction ids, retries and parsing for one UDP tracker."""

    def __init__(
        self,
        cfg: TrackerConfig,
        *,
        ipv6: bool = False,
        rand: random.Random | None = None,
        url_data: bytes = b"",
    ) -> None:
        """``url_data``: the tracker URL's path and query, sent with announces (BEP 41)."""
        self._cfg = cfg
        self._url_data = url_data
        self._ipv6 = ipv6
        self._rand = rand or random.SystemRandom()
        self._conn_id: int | None = None
        self._conn_at = 0.0
        self._phase = _Phase.IDLE
        self._announce: AnnounceRequest | None = None
        self._scrape: tuple[InfoHash, ...] = ()
        self._tid = -1
        self._tries = 0  #: n of BEP 15: timeouts so far in this request
        self._deadline: float | None = None
        self._out: list[bytes] = []
        self._events: deque[UdpEvent] = deque()
        self.ignored = 0  #: datagrams dropped as stale, spoofed or oversized

    # -- what the user wants -----------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._phase is not _Phase.IDLE

    def start_announce(self, request: AnnounceRequest, now: float) -> None:
        self._begin(now)
        self._announce = request
        self._send(now)

    def start_scrape(self, info_hashes: Sequence[InfoHash], now: float) -> None:
        if not 0 < len(info_hashes) <= min(udp.MAX_SCRAPE_HASHES, self._cfg.max_scrape_files):
            raise LocalProtocolError("a UDP scrape asks about 1..74 info hashes")
        self._begin(now)
        self._scrape = tuple(info_hashes)
        self._send(now)

    def cancel(self) -> None:
        """Forget the request in flight without an event (its caller gave up); the connection id stays."""
        self._phase = _Phase.IDLE
        self._deadline = None
        self._tid = -1
        self._announce, self._scrape = None, ()
        self._out.clear()

    # -- the verbs -----------------------------------------------------------------------------
    def datagrams_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> UdpEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> None:
        if self._deadline is None or now < self._deadline:
            return
        self._tries += 1
        if self._tries > self._cfg.udp_max_retries:
            self._end(RequestFailed(TrackerTimeout(f"UDP tracker did not answer after {self._tries} tries")))
            return
        self._send(now)

    def receive_datagram(self, data: bytes, now: float) -> None:
        if len(data) > self._cfg.udp_max_packet or len(data) < 8 or self._phase is _Phase.IDLE:
            self.ignored += 1
            return
        action, tid = udp.decode_header(data)
        if tid != self._tid:
            self.ignored += 1
            return
        try:
            if action == udp.ACTION_ERROR:
                self._end(RequestFailed(TrackerFailure(udp.parse_error(data, self._cfg.max_text))))
            elif self._phase is _Phase.CONNECTING:
                if action != udp.ACTION_CONNECT:
                    raise RemoteProtocolError(f"UDP tracker answered connect with action {action}")
                self._conn_id, self._conn_at = udp.parse_connect(data), now
                self._send(now)
            elif self._announce is not None:
                if action != udp.ACTION_ANNOUNCE:
                    raise RemoteProtocolError(f"UDP tracker answered announce with action {action}")
                if len(data) == 8:  # opentracker's way of refusing a torrent it does not list
                    self._end(
                        RequestFailed(TrackerFailure("empty answer: the tracker does not serve this torrent"))
                    )
                    return
                self._end(AnnounceDone(udp.parse_announce(data, ipv6=self._ipv6, cfg=self._cfg)))
            else:
                if action != udp.ACTION_SCRAPE:
                    raise RemoteProtocolError(f"UDP tracker answered scrape with action {action}")
                self._end(ScrapeDone(udp.parse_scrape(data, self._scrape)))
        except RemoteProtocolError as exc:
            self._conn_id = None  # do not trust what this tracker handed out before
            self._end(RequestFailed(exc))

    # -- inside ----------------------------------------------------------------------------------
    def _begin(self, now: float) -> None:
        if self._phase is not _Phase.IDLE:
            raise LocalProtocolError("a UDP tracker request is already in flight")
        self._announce, self._scrape, self._tries = None, (), 0

    def _new_tid(self) -> int:
        tid = self._rand.getrandbits(32)
        while tid == self._tid:
            tid = self._rand.getrandbits(32)
        self._tid = tid
        return tid

    def _send(self, now: float) -> None:
        tid = self._new_tid()
        if self._conn_id is None or now >= self._conn_at + self._cfg.udp_connection_lifetime:
            self._conn_id = None
            self._phase = _Phase.CONNECTING
            self._out.append(udp.encode_connect(tid))
        else:
            self._phase = _Phase.REQUESTING
            if self._announce is not None:
                self._out.append(udp.encode_announce(self._conn_id, tid, self._announce, self._url_data))
            else:
                self._out.append(udp.encode_scrape(self._conn_id, tid, self._scrape))
        wait = min(self._cfg.udp_retry_base * 2**self._tries, self._cfg.udp_retry_cap)
        self._deadline = now + wait

    def _end(self, event: UdpEvent) -> None:
        self._phase = _Phase.IDLE
        self._deadline = None
        self._tid = -1
        self._announce, self._scrape = None, ()
        self._events.append(event)
