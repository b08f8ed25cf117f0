"""Random and mutated bytes into both MSE machines: each ends in success, a typed failure or a wait."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pshare.config import MseConfig
from p2pshare.core.mse import Failed, HandshakeDone, Initiator, PlaintextStream, Receiver, skey_lookup
from p2pshare.core.mse.machine import MseMachine
from tests.core.mse.mse_helpers import INFO_HASH, make_pair, seeded

CFG = MseConfig(send_pad_max=40)


def _feed(machine: MseMachine, data: bytes, cuts: list[int]) -> list[object]:
    """Feed ``data`` in pieces cut at ``cuts``; never raises; returns the events."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for lo, hi in itertools.pairwise(points):
        if machine.finished:
            break
        if hi > lo:
            machine.receive_data(data[lo:hi])
    events: list[object] = machine.events()
    assert len(events) <= 1
    for event in events:
        assert isinstance(event, HandshakeDone | PlaintextStream | Failed)
    return events


def _recorded(seed: int) -> tuple[bytes, bytes]:
    """What each side receives in one good handshake (plus a little RC4 payload)."""
    a, b = make_pair(seed, config=CFG, ia=b"ia")
    to_a = bytearray()
    to_b = bytearray()
    for _ in range(4):
        d = a.data_to_send()
        to_b += d
        if d:
            b.receive_data(d)
        d = b.data_to_send()
        to_a += d
        if d:
            a.receive_data(d)
    return bytes(to_b), bytes(to_a)


GOOD = {seed: _recorded(seed) for seed in range(3)}


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    out = bytearray(data)
    for pos, val in flips:
        out[pos % len(out)] ^= val or 1
    return bytes(out[:cut] if cut is not None else out)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1500), st.lists(st.integers(0, 2000), max_size=6))
def test_receiver_random_bytes(data: bytes, cuts: list[int]) -> None:
    """Random bytes never make the receiver raise; any failure is typed."""
    b = Receiver(skey_lookup([INFO_HASH]), config=CFG, now=0.0, random_bytes=seeded(1))
    _feed(b, data, cuts)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1500), st.lists(st.integers(0, 2000), max_size=6))
def test_initiator_random_bytes(data: bytes, cuts: list[int]) -> None:
    """Random bytes never make the initiator raise; any failure is typed."""
    a = Initiator(INFO_HASH, config=CFG, now=0.0, random_bytes=seeded(2))
    _feed(a, data, cuts)


FLIPS = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=3)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(GOOD)),
    FLIPS,
    st.none() | st.integers(0, 800),
    st.lists(st.integers(0, 900), max_size=4),
)
def test_receiver_mutated_handshake(
    seed: int, flips: list[tuple[int, int]], cut: int | None, cuts: list[int]
) -> None:
    """A real initiator stream with flipped bytes or cut short ends in success, a typed failure or a wait."""
    _, b = make_pair(seed, config=CFG, ia=b"ia")
    data = _mutate(GOOD[seed][0], flips, cut)
    events = _feed(b, data, cuts)
    if not flips and cut is None:
        assert [type(e) for e in events] == [HandshakeDone]


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(GOOD)),
    FLIPS,
    st.none() | st.integers(0, 800),
    st.lists(st.integers(0, 900), max_size=4),
)
def test_initiator_mutated_reply(
    seed: int, flips: list[tuple[int, int]], cut: int | None, cuts: list[int]
) -> None:
    """A real receiver reply with flipped bytes or cut short ends in success, a typed failure or a wait."""
    a, _ = make_pair(seed, config=CFG, ia=b"ia")
    data = _mutate(GOOD[seed][1], flips, cut)
    events = _feed(a, data, cuts)
    if not flips and cut is None:
        assert [type(e) for e in events] == [HandshakeDone]
