"""The sans-I/O NAT-PMP/PCP client on a virtual clock: schedule, fallback, leases, epoch, close."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.config import NatPmpConfig
from p2pshare.core.natpmp import (
    AddressFailed,
    Closed,
    Dialect,
    ExternalAddress,
    GatewayRestarted,
    GatewayUnsupported,
    MappingFailed,
    MappingReady,
    MappingRemoved,
    NatPmpClient,
    NatPmpEvent,
)
from p2pshare.core.natpmp_wire import encode_natpmp_address_request, encode_natpmp_map_request
from p2pshare.errors import LocalProtocolError, RemoteProtocolError
from tests.helpers.natpmp_gateway import (
    NONCE,
    TCP,
    UDP,
    natpmp_address,
    natpmp_map,
    pcp_map,
    unsupported_natpmp,
)


def drain(client: NatPmpClient) -> list[NatPmpEvent]:
    events = []
    while (event := client.next_event()) is not None:
        events.append(event)
    return events


def make(**overrides: object) -> NatPmpClient:
    config = NatPmpConfig(**overrides)  # type: ignore[arg-type]
    return NatPmpClient(config, client_ip="192.168.1.10", nonce=NONCE)


def test_pcp_maps_both_ports_and_learns_the_external_address() -> None:
    """With PCP, each mapping is one MAP request; the answers grant it and name the external address."""
    client = make()
    client.start(0.0)
    client.add_mapping(TCP, 6881, 0.0)
    client.add_mapping(UDP, 6881, 0.0)
    sent = client.datagrams_to_send()
    assert [len(d) for d in sent] == [60, 60] and {d[36] for d in sent} == {6, 17}
    client.receive_data(pcp_map(TCP, 6881, 6881, 7200, 1000), 0.1)
    client.receive_data(pcp_map(UDP, 6881, 6881, 7200, 1000), 0.1)
    events = drain(client)
    assert MappingReady(TCP, 6881, 6881, 7200, Dialect.PCP) in events
    assert MappingReady(UDP, 6881, 6881, 7200, Dialect.PCP) in events
    assert ExternalAddress("11.11.0.1", Dialect.PCP) in events
    assert sorted(client.mappings, key=lambda m: m[0].value) == [
        (TCP, 6881, 6881, 7200),
        (UDP, 6881, 6881, 7200),
    ]
    assert client.get_timer() == pytest.approx(0.1 + 3600)


def test_retransmission_doubles_from_250_ms_and_gives_up_after_nine_tries() -> None:
    """A silent gateway gets 9 requests at 0, .25, .75, 1.75 ... s, then is declared unsupported."""
    client = make()
    client.add_mapping(TCP, 6881, 0.0)
    send_times = []
    now = 0.0
    while True:
        if client.datagrams_to_send():
            send_times.append(now)
        timer = client.get_timer()
        if timer is None:
            break
        now = timer
        client.handle_timer(now)
    assert send_times == [0.25 * (2**k - 1) for k in range(9)]
    assert now == pytest.approx(0.25 * (2**9 - 1))
    assert drain(client) == [GatewayUnsupported("no NAT-PMP/PCP answer from the gateway after 9 tries")]
    assert client.finished and client.get_timer() is None


def test_port_unreachable_ends_the_client_at_once() -> None:
    """An ICMP port unreachable before any answer means no NAT-PMP/PCP: unsupported, no timer left."""
    client = make()
    client.add_mapping(UDP, 1234, 0.0)
    client.gateway_unreachable(0.01)
    assert isinstance(drain(client)[0], GatewayUnsupported)
    assert client.get_timer() is None


def test_natpmp_only_gateway_makes_the_client_fall_back_from_pcp() -> None:
    """A NAT-PMP "unsupported version" answer to PCP switches to NAT-PMP and asks again at once."""
    client = make()
    client.start(0.0)
    client.add_mapping(TCP, 6881, 0.0)
    client.datagrams_to_send()
    client.receive_data(unsupported_natpmp(), 0.05)
    assert client.dialect is Dialect.NATPMP
    resent = client.datagrams_to_send()
    assert resent == [encode_natpmp_address_request(), encode_natpmp_map_request(TCP, 6881, 6881, 7200)]
    client.receive_data(natpmp_address(6), 0.06)
    client.receive_data(natpmp_map(TCP, 6881, 6881, 7200, 6), 0.06)
    assert drain(client) == [
        ExternalAddress("11.11.0.1", Dialect.NATPMP),
        MappingReady(TCP, 6881, 6881, 7200, Dialect.NATPMP),
    ]


def test_pcp_only_gateway_refusing_version_zero_is_unsupported() -> None:
    """A gateway that answers NAT-PMP with PCP's "unsupported version" speaks nothing we can use."""
    client = make(try_pcp=False)
    client.start(0.0)
    client.receive_data(struct.pack("!BBBBII", 2, 0x80, 0, 1, 0, 5) + bytes(12), 0.05)
    assert drain(client) == [GatewayUnsupported("the gateway speaks an unsupported NAT-PMP/PCP version (2)")]


def test_second_version_refusal_after_falling_back_is_ignored() -> None:
    """Each PCP request in flight draws its own refusal; only the first switches dialect, none fails."""
    client = make()
    client.add_mapping(TCP, 1, 0.0)
    client.add_mapping(UDP, 2, 0.0)
    client.receive_data(unsupported_natpmp(), 0.01)
    client.receive_data(unsupported_natpmp(), 0.01)
    assert client.dialect is Dialect.NATPMP and not client.finished
    assert drain(client) == [] and client.unsolicited == 1


def test_lease_is_renewed_at_half_life() -> None:
    """A 120-second lease is asked for again 60 s after it was granted, with the same request."""
    client = make(try_pcp=False, lifetime=120)
    client.add_mapping(UDP, 7000, 0.0)
    first = client.datagrams_to_send()
    client.receive_data(natpmp_map(UDP, 7000, 7000, 120, 50), 1.0)
    drain(client)
    assert client.get_timer() == pytest.approx(61.0)
    client.handle_timer(61.0)
    assert client.datagrams_to_send() == first
    client.receive_data(natpmp_map(UDP, 7000, 7000, 120, 110), 61.1)
    assert drain(client) == [MappingReady(UDP, 7000, 7000, 120, Dialect.NATPMP)]


def test_epoch_going_back_means_the_gateway_restarted_and_everything_is_mapped_again() -> None:
    """An epoch that fell behind our clock re-requests every mapping and the address."""
    client = make(try_pcp=False)
    client.start(0.0)
    client.add_mapping(TCP, 6881, 0.0)
    client.datagrams_to_send()
    client.receive_data(natpmp_address(1000), 0.1)
    client.receive_data(natpmp_map(TCP, 6881, 6881, 7200, 1000), 0.1)
    drain(client)
    client.receive_data(natpmp_address(3), 600.0)  # a fresh router: epoch 3 s, 600 s later
    events = drain(client)
    assert events[0] == GatewayRestarted(3)
    assert encode_natpmp_map_request(TCP, 6881, 6881, 7200) in client.datagrams_to_send()


def test_epoch_that_kept_pace_is_no_restart() -> None:
    """An epoch that advanced with our clock (within 7/8 minus 2 s) is a normal answer."""
    client = make(try_pcp=False)
    client.start(0.0)
    client.receive_data(natpmp_address(1000), 0.0)
    client.start(100.0)
    client.receive_data(natpmp_address(1089), 100.0)  # 89 >= 100 * 7/8 - 2
    assert not any(isinstance(e, GatewayRestarted) for e in drain(client))


def test_close_deletes_every_mapping_then_reports_closed() -> None:
    """Close sends lifetime-0 requests; once each is confirmed, MappingRemoved and Closed follow."""
    client = make(try_pcp=False)
    client.add_mapping(TCP, 6881, 0.0)
    client.datagrams_to_send()
    client.receive_data(natpmp_map(TCP, 6881, 6881, 7200, 10), 0.1)
    drain(client)
    client.close(1.0)
    assert client.datagrams_to_send() == [encode_natpmp_map_request(TCP, 6881, 0, 0)]
    client.receive_data(natpmp_map(TCP, 6881, 0, 0, 11), 1.1)
    assert drain(client) == [MappingRemoved(TCP, 6881), Closed()]
    assert client.get_timer() is None


def test_pcp_close_sends_map_with_lifetime_zero_and_same_nonce() -> None:
    """A PCP delete is the MAP request again with lifetime 0."""
    client = make()
    client.add_mapping(UDP, 6881, 0.0)
    client.datagrams_to_send()
    client.receive_data(pcp_map(UDP, 6881, 6881, 7200, 5), 0.1)
    client.close(0.2)
    (delete,) = client.datagrams_to_send()
    assert delete[4:8] == bytes(4) and delete[24:36] == NONCE
    client.receive_data(pcp_map(UDP, 6881, 6881, 0, 5), 0.3)
    assert drain(client)[-2:] == [MappingRemoved(UDP, 6881), Closed()]


def test_close_with_a_silent_gateway_still_ends() -> None:
    """Deletes that are never answered run out of tries and Closed still comes."""
    client = make(try_pcp=False, max_tries=3)
    client.add_mapping(TCP, 1, 0.0)
    client.receive_data(natpmp_map(TCP, 1, 1, 100, 1), 0.0)
    client.close(1.0)
    now = 1.0
    for _ in range(10):
        timer = client.get_timer()
        if timer is None:
            break
        now = timer
        client.handle_timer(now)
    assert drain(client)[-1] == Closed()
    assert now == pytest.approx(1.0 + 0.25 * 7)


def test_refused_mapping_is_reported_with_its_reason() -> None:
    """A result code other than success is a MappingFailed naming the RFC's reason."""
    client = make(try_pcp=False)
    client.add_mapping(TCP, 80, 0.0)
    client.receive_data(natpmp_map(TCP, 80, 0, 0, 5, result=2), 0.1)
    assert drain(client) == [MappingFailed(TCP, 80, "not authorized/refused")]
    assert client.mappings == []


def test_refused_address_request_is_reported() -> None:
    """An error answer to the address request is AddressFailed."""
    client = make(try_pcp=False)
    client.start(0.0)
    client.receive_data(natpmp_address(5, result=3), 0.1)
    assert drain(client) == [AddressFailed("network failure")]


def test_answers_nobody_asked_for_are_counted_and_ignored() -> None:
    """A map answer for a port we never asked, or with another nonce, changes nothing."""
    client = make()
    client.add_mapping(TCP, 6881, 0.0)
    client.receive_data(pcp_map(TCP, 6881, 6881, 7200, 5, nonce=b"x" * 12), 0.1)
    client.receive_data(pcp_map(UDP, 9999, 9999, 7200, 5), 0.1)
    assert drain(client) == [] and client.unsolicited == 2 and client.mappings == []


def test_malformed_datagram_raises_and_leaves_the_client_as_it_was() -> None:
    """A garbage datagram is a RemoteProtocolError; the pending request is still retransmitted."""
    client = make()
    client.add_mapping(TCP, 6881, 0.0)
    client.datagrams_to_send()
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"\x02\x81garbage", 0.1)
    client.handle_timer(0.25)
    assert len(client.datagrams_to_send()) == 1


def test_mapping_count_is_limited() -> None:
    """More mappings than max_mappings is refused as our own error."""
    client = make(max_mappings=2)
    client.add_mapping(TCP, 1, 0.0)
    client.add_mapping(TCP, 2, 0.0)
    with pytest.raises(LocalProtocolError):
        client.add_mapping(TCP, 3, 0.0)


# -- state x input ------------------------------------------------------------------------------

ANSWERS = [
    natpmp_address(10),
    natpmp_address(1),
    natpmp_map(TCP, 6881, 6881, 100, 20),
    natpmp_map(UDP, 6881, 7000, 0, 20),
    natpmp_map(TCP, 6881, 0, 0, 20, result=4),
    pcp_map(TCP, 6881, 6881, 100, 30),
    pcp_map(UDP, 6881, 6881, 0, 30),
    pcp_map(UDP, 6881, 6881, 100, 2, result=8),
    unsupported_natpmp(),
    struct.pack("!BBBBII", 2, 0x81, 0, 1, 0, 5) + bytes(12),
]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), st.sampled_from(ANSWERS)),
        st.tuples(st.just("garbage"), st.binary(max_size=64)),
        st.tuples(st.just("timer"), st.floats(0.0, 5000.0)),
        st.tuples(st.just("unreachable"), st.just(b"")),
        st.tuples(st.just("close"), st.just(b"")),
    ),
    max_size=40,
)


@given(steps, st.booleans())
def test_any_sequence_of_answers_timers_and_close_keeps_the_client_consistent(
    sequence: list[tuple[str, object]], pcp: bool
) -> None:
    """Whatever arrives in whatever order, only RemoteProtocolError escapes and the client stays coherent."""
    client = make(try_pcp=pcp, max_tries=4)
    now = 0.0
    client.start(now)
    client.add_mapping(TCP, 6881, now)
    client.add_mapping(UDP, 6881, now)
    for kind, value in sequence:
        now += 0.1
        if kind == "answer" or kind == "garbage":
            assert isinstance(value, bytes)
            try:
                client.receive_data(value, now)
            except RemoteProtocolError:
                assert kind == "garbage"
        elif kind == "timer":
            assert isinstance(value, float)
            now = max(now, value)
            client.handle_timer(now)
        elif kind == "unreachable":
            client.gateway_unreachable(now)
        else:
            client.close(now)
        events = drain(client)
        assert events.count(Closed()) <= 1
        timer = client.get_timer()
        if kind == "timer":
            assert timer is None or timer > now, "handle_timer left work overdue"
        if client.finished:
            assert timer is None
        for datagram in client.datagrams_to_send():
            assert datagram[0] in (0, 2) and len(datagram) in (2, 12, 60)


def test_natpmp_announcement_of_a_restart_remaps_at_once() -> None:
    """An unrequested address answer with a fresh epoch (a restart) re-requests every mapping now."""
    client = make(try_pcp=False)
    client.add_mapping(UDP, 6881, 0.0)
    client.receive_data(natpmp_map(UDP, 6881, 6881, 7200, 5000), 0.1)
    drain(client)
    client.datagrams_to_send()
    client.receive_data(natpmp_address(0, address="11.11.0.9"), 30.0)
    assert drain(client) == [GatewayRestarted(0), ExternalAddress("11.11.0.9", Dialect.NATPMP)]
    assert encode_natpmp_map_request(UDP, 6881, 6881, 7200) in client.datagrams_to_send()
    assert client.unsolicited == 0


def test_pcp_announce_of_a_restart_remaps_at_once() -> None:
    """A PCP ANNOUNCE whose epoch went back re-requests the mappings; one that kept pace changes nothing."""
    client = make()
    client.add_mapping(TCP, 6881, 0.0)
    client.receive_data(pcp_map(TCP, 6881, 6881, 7200, 1000), 0.1)
    drain(client)
    client.datagrams_to_send()
    client.receive_data(struct.pack("!BBBBII", 2, 0x80, 0, 0, 0, 1010) + bytes(12), 10.1)
    assert drain(client) == [] and client.datagrams_to_send() == []
    client.receive_data(struct.pack("!BBBBII", 2, 0x80, 0, 0, 0, 2) + bytes(12), 20.0)
    assert drain(client) == [GatewayRestarted(2)]
    assert len(client.datagrams_to_send()) == 1
