"""Hypothesis drives the UDP tracker machine through any order of requests, answers, junk and time."""

from __future__ import annotations

import random
import struct
from dataclasses import replace

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from p2pshare.config import TrackerConfig
from p2pshare.core.tracker import (
    AnnounceDone,
    AnnounceEvent,
    AnnounceRequest,
    RequestFailed,
    ScrapeDone,
    ScrapeStats,
    UdpTrackerMachine,
    udp,
)
from p2pshare.core.types import InfoHash, PeerAddress

CFG = replace(TrackerConfig(), udp_max_retries=3, udp_retry_base=15.0, udp_retry_cap=60.0)
IH = InfoHash(b"\x33" * 20)
REQ = AnnounceRequest(info_hash=IH, peer_id=b"-PS0100-000000000000", port=1, event=AnnounceEvent.STARTED)


class UdpMachineStates(RuleBasedStateMachine):
    """Each request ends in exactly one event, after a bounded number of datagrams and capped waits."""

    @initialize(seed=st.integers(0, 2**32))
    def setup(self, seed: int) -> None:
        self.m = UdpTrackerMachine(CFG, rand=random.Random(seed))
        self.now = 0.0
        self.last: bytes | None = None  #: the datagram in flight
        self.kind: type | None = None  #: the event the request in flight should end with
        self.sent = 0  #: datagrams of the request in flight
        self.ended = 0
        self.requests = 0

    def _drain(self) -> None:
        out = self.m.datagrams_to_send()
        assert len(out) <= 1
        if out:
            self.last, self.sent = out[0], self.sent + 1
        while (event := self.m.next_event()) is not None:
            assert self.kind is not None and isinstance(event, self.kind | RequestFailed)
            self.ended += 1
            self.kind, self.last = None, None

    @precondition(lambda self: not self.m.busy)
    @rule(scrape=st.booleans())
    def start(self, scrape: bool) -> None:
        if scrape:
            self.m.start_scrape([IH], self.now)
        else:
            self.m.start_announce(REQ, self.now)
        self.kind, self.sent = (ScrapeDone if scrape else AnnounceDone), 0
        self.requests += 1
        self._drain()

    @precondition(lambda self: self.last is not None)
    @rule(error=st.booleans())
    def answer(self, error: bool) -> None:
        assert self.last is not None
        req = udp.decode_request(self.last)
        if error:
            reply = udp.encode_error(req.transaction_id, "no")
        elif req.action == udp.ACTION_CONNECT:
            reply = udp.encode_connect_response(req.transaction_id, 42)
        elif req.action == udp.ACTION_ANNOUNCE:
            reply = udp.encode_announce_response(req.transaction_id, 100, 1, 1, [PeerAddress("127.0.0.1", 9)])
        else:
            reply = udp.encode_scrape_response(req.transaction_id, [ScrapeStats(1, 2, 3)])
        self.m.receive_datagram(reply, self.now)
        self._drain()

    @rule(junk=st.binary(max_size=40), keep_tid=st.booleans())
    def junk(self, junk: bytes, keep_tid: bool) -> None:
        if keep_tid and self.last is not None:
            tid = udp.decode_request(self.last).transaction_id
            junk = junk[:4] + struct.pack(">I", tid) + junk[4:]
        self.m.receive_datagram(junk, self.now)
        self._drain()

    @rule(dt=st.floats(0, 200))
    def time_passes(self, dt: float) -> None:
        self.now += dt
        self.m.handle_timer(self.now)
        self._drain()

    @precondition(lambda self: self.m.get_timer() is not None)
    @rule()
    def timer_fires(self) -> None:
        timer = self.m.get_timer()
        assert (timer is not None and timer > self.now - 1e-9) or self.m.busy
        self.now = max(self.now, timer)
        self.m.handle_timer(self.now)
        self._drain()

    @invariant()
    def consistent(self) -> None:
        if not hasattr(self, "m"):
            return
        assert self.m.busy == (self.m.get_timer() is not None) == (self.kind is not None)
        assert self.ended + int(self.m.busy) == self.requests
        # connect + request per try, at most 1 + udp_max_retries tries
        assert self.sent <= 2 * (CFG.udp_max_retries + 1)
        timer = self.m.get_timer()
        if timer is not None:  # never a wait longer than the cap
            assert timer - self.now <= CFG.udp_retry_cap + 1e-6


TestUdpMachineStates = UdpMachineStates.TestCase
