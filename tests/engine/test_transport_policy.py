"""TransportPolicy: which transport is dialled first, what it learns, and its bounds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from p2pshare.config import TransportConfig
from p2pshare.engine.transports import Transport, TransportPolicy

TCP, UTP = Transport.TCP, Transport.UTP
A = ("10.0.0.1", 6881)


@pytest.mark.parametrize(("mode", "order"), [(Transport.TCP, [TCP]), (Transport.UTP, [UTP])])
def test_a_single_transport_is_the_only_choice(mode: Transport, order: list[Transport]) -> None:
    """With --transport tcp or utp, every address is dialled on that transport alone."""
    policy = TransportPolicy(TransportConfig(), mode)
    policy.note_utp(A)
    assert policy.order(A) == order


def test_both_dials_tcp_first_unless_the_peer_announced_utp() -> None:
    """By default TCP comes first; a PEX/BEP 10 uTP hint or an incoming uTP link puts uTP first."""
    policy = TransportPolicy(TransportConfig(), Transport.BOTH)
    assert policy.order(A) == [TCP, UTP]
    policy.note_utp(A)
    assert policy.order(A) == [UTP, TCP]
    policy.note_incoming_utp("10.0.0.2")
    assert policy.order(("10.0.0.2", 1)) == [UTP, TCP]
    off = TransportPolicy(TransportConfig(prefer_utp_when_announced=False), Transport.BOTH)
    off.note_utp(A)
    assert off.order(A) == [TCP, UTP]


def test_what_worked_is_tried_first_and_a_failure_forgets_it() -> None:
    """A fallback that worked becomes the first choice; when it later fails the default order returns."""
    policy = TransportPolicy(replace(TransportConfig(), prefer_utp=True), Transport.BOTH)
    assert policy.order(A) == [UTP, TCP]
    policy.dialled(A, UTP, False, attempt=0)
    policy.dialled(A, TCP, True, attempt=1)
    assert policy.stats.fallbacks == 1
    assert policy.stats.dials == {"tcp": 1, "utp": 1}
    assert policy.order(A) == [TCP, UTP]
    policy.dialled(A, TCP, False, attempt=0)
    assert policy.order(A) == [UTP, TCP]


def test_the_memory_of_addresses_is_bounded() -> None:
    """Past max_entries the oldest address is forgotten, hints and all."""
    policy = TransportPolicy(TransportConfig(), Transport.BOTH, max_entries=2)
    for i in range(3):
        policy.note_utp((f"10.0.1.{i}", 1))
    assert policy.order(("10.0.1.0", 1)) == [TCP, UTP]
    assert policy.order(("10.0.1.2", 1)) == [UTP, TCP]
    for i in range(3):
        policy.note_incoming_utp(f"10.0.2.{i}")
    assert policy.order(("10.0.2.0", 1)) == [TCP, UTP]
    assert policy.order(("10.0.2.2", 1)) == [UTP, TCP]


def test_transport_kinds() -> None:
    """both allows the two transports; each single one allows itself."""
    assert Transport.BOTH.kinds == (TCP, UTP)
    assert Transport("utp").kinds == (UTP,)


def test_a_link_closed_before_the_handshake_moves_its_transport_last() -> None:
    """TCP that connects and closes at once (incoming TCP off) makes the next dial start on uTP."""
    policy = TransportPolicy(TransportConfig(), Transport.BOTH)
    policy.dialled(A, TCP, True, attempt=0)
    assert policy.order(A) == [TCP, UTP]
    policy.failed(A, TCP)
    assert policy.order(A) == [UTP, TCP]
    policy.dialled(A, UTP, True, attempt=0)
    assert policy.order(A) == [UTP, TCP]
