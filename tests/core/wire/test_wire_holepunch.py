"""BEP 55 ut_holepunch codec: exact bytes, every type and error, every truncation, and the relay budget."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.core.wire.holepunch import (
    HolepunchError,
    HolepunchMessage,
    HolepunchType,
    RelayBudget,
    decode_holepunch,
    encode_holepunch,
)
from p2pshare.errors import RemoteProtocolError, Violation

V4_CONNECT = bytes.fromhex("01 00 0a000001 1ae1 00000000")
V6_ERROR = bytes.fromhex("02 01 20010db8000000000000000000000001 0050 00000002")


def test_ipv4_connect_has_the_exact_bep_layout() -> None:
    """A connect to 10.0.0.1:6881 is type 1, addr_type 0, four address bytes, port, and a zero code."""
    msg = HolepunchMessage(HolepunchType.CONNECT, "10.0.0.1", 6881)
    assert encode_holepunch(msg) == V4_CONNECT
    assert decode_holepunch(V4_CONNECT) == msg


def test_ipv6_error_has_the_exact_bep_layout() -> None:
    """An IPv6 NotConnected error is 24 bytes: addr_type 1, sixteen address bytes, port, code 2."""
    msg = HolepunchMessage(HolepunchType.ERROR, "2001:db8::1", 80, HolepunchError.NOT_CONNECTED)
    assert encode_holepunch(msg) == V6_ERROR
    assert decode_holepunch(V6_ERROR) == msg


@pytest.mark.parametrize("code", [c for c in HolepunchError if c is not HolepunchError.NONE])
def test_every_error_code_round_trips(code: HolepunchError) -> None:
    """Each of the four BEP error codes decodes to itself."""
    msg = HolepunchMessage(HolepunchType.ERROR, "192.0.2.7", 1, code)
    assert decode_holepunch(encode_holepunch(msg)).error is code


@pytest.mark.parametrize("data", [V4_CONNECT, V6_ERROR])
def test_every_truncation_and_extension_is_malformed(data: bytes) -> None:
    """Any prefix shorter than the message, or a trailing byte, is rejected as malformed."""
    for cut in range(len(data)):
        with pytest.raises(RemoteProtocolError) as info:
            decode_holepunch(data[:cut])
        assert info.value.kind is Violation.MALFORMED
    with pytest.raises(RemoteProtocolError):
        decode_holepunch(data + b"\x00")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (bytes.fromhex("03 00 0a000001 1ae1 00000000"), "msg_type"),
        (bytes.fromhex("01 02 0a000001 1ae1 00000000"), "addr_type"),
        (bytes.fromhex("02 00 0a000001 1ae1 00000005"), "err_code"),
        (bytes.fromhex("02 00 0a000001 1ae1 00000000"), "err_code 0"),
    ],
)
def test_unknown_types_and_codes_are_malformed(data: bytes, why: str) -> None:
    """An unknown type, address type or error code (or an error without a code) is malformed."""
    with pytest.raises(RemoteProtocolError, match=why.split()[0]):
        decode_holepunch(data)


def test_a_code_in_a_non_error_message_is_ignored() -> None:
    """A rendezvous carrying a non-zero err_code still decodes, with no error attached."""
    data = bytes.fromhex("00 00 0a000001 1ae1 00000003")
    assert decode_holepunch(data) == HolepunchMessage(HolepunchType.RENDEZVOUS, "10.0.0.1", 6881)


def test_encoding_refuses_host_names_and_bad_ports() -> None:
    """Only IP literals and 16-bit ports can be encoded."""
    with pytest.raises(ValueError):
        encode_holepunch(HolepunchMessage(HolepunchType.CONNECT, "example.org", 1))
    with pytest.raises(ValueError):
        encode_holepunch(HolepunchMessage(HolepunchType.CONNECT, "10.0.0.1", 70000))


@given(st.binary(max_size=40))
def test_any_bytes_decode_or_raise_remote_protocol_error(data: bytes) -> None:
    """Arbitrary payloads either decode to a message that re-encodes to the same bytes, or are malformed."""
    try:
        msg = decode_holepunch(data)
    except RemoteProtocolError:
        return
    again = encode_holepunch(msg)
    assert again[:-4] == data[:-4]
    assert decode_holepunch(again) == msg


@given(
    st.sampled_from(list(HolepunchType)),
    st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    st.integers(0, 65535),
    st.sampled_from([c for c in HolepunchError if c is not HolepunchError.NONE]),
)
def test_messages_round_trip(kind: HolepunchType, ip: object, port: int, code: HolepunchError) -> None:
    """Every message of every type and address family survives encode then decode."""
    err = code if kind is HolepunchType.ERROR else HolepunchError.NONE
    msg = HolepunchMessage(kind, str(ip), port, err)
    assert decode_holepunch(encode_holepunch(msg)) == msg


def test_relay_budget_counts_per_window() -> None:
    """A budget of 3 a minute allows three, refuses the fourth, and allows again once the first expires."""
    budget = RelayBudget(3, 60.0)
    assert [budget.take(t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    assert budget.used == 3
    assert not budget.take(59.9)
    assert budget.take(60.0)
    assert budget.used == 3
