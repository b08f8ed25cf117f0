"""NAT-PMP (RFC 6886) and PCP (RFC 6887) codecs: layouts, whole answers, every truncation, fuzz."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.core.natpmp_wire import (
    AddressResponse,
    MapProtocol,
    MapResponse,
    PcpAnnounce,
    PcpMapResponse,
    UnsupportedVersion,
    decode_response,
    encode_natpmp_address_request,
    encode_natpmp_map_request,
    encode_pcp_map_request,
)
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


def test_natpmp_requests_have_the_rfc_layout() -> None:
    """The address request is 2 bytes; a TCP map request is vers 0, op 2, ports and lifetime big-endian."""
    assert encode_natpmp_address_request() == b"\x00\x00"
    assert encode_natpmp_map_request(TCP, 6881, 6882, 7200) == bytes.fromhex("0002 0000 1ae1 1ae2 00001c20")
    assert encode_natpmp_map_request(UDP, 1, 0, 0) == bytes.fromhex("0001 0000 0001 0000 00000000")


def test_pcp_map_request_has_the_rfc_layout() -> None:
    """A PCP MAP request is 60 bytes: header with v4-mapped client IP, then nonce, protocol and ports."""
    data = encode_pcp_map_request(
        client_ip="192.168.1.10",
        nonce=NONCE,
        protocol=UDP,
        internal_port=6881,
        external_port=6881,
        lifetime=60,
    )
    assert len(data) == 60
    assert data[:8] == bytes.fromhex("02 01 0000 0000003c")
    assert data[8:24] == bytes(10) + b"\xff\xff" + bytes([192, 168, 1, 10])
    assert data[24:36] == NONCE
    assert data[36:44] == bytes.fromhex("11 000000 1ae1 1ae1")
    assert data[44:60] == bytes(10) + b"\xff\xff" + bytes(4)


def test_encoders_refuse_values_out_of_range() -> None:
    """Ports above 65535, lifetimes above 32 bits and short nonces are our bugs, not packets."""
    with pytest.raises(LocalProtocolError):
        encode_natpmp_map_request(TCP, 70000, 0, 0)
    with pytest.raises(LocalProtocolError):
        encode_natpmp_map_request(TCP, 1, 1, 2**32)
    with pytest.raises(LocalProtocolError):
        encode_pcp_map_request(
            client_ip="1.2.3.4", nonce=b"x", protocol=TCP, internal_port=1, external_port=1, lifetime=1
        )


VALID_RESPONSES = [
    (natpmp_address(77), AddressResponse(0, 77, "11.11.0.1")),
    (natpmp_map(TCP, 6881, 6900, 7200, 78), MapResponse(TCP, 0, 78, 6881, 6900, 7200)),
    (natpmp_map(UDP, 6881, 6881, 0, 79), MapResponse(UDP, 0, 79, 6881, 6881, 0)),
    (unsupported_natpmp(9), UnsupportedVersion(0, 9)),
    (
        pcp_map(UDP, 6881, 6882, 120, 80),
        PcpMapResponse(0, 120, 80, NONCE, UDP, 6881, 6882, "11.11.0.1"),
    ),
    (struct.pack("!BBBBII", 2, 0x81, 0, 1, 0, 81) + bytes(12), UnsupportedVersion(2, 81)),
    (struct.pack("!BBBBII", 2, 0x80, 0, 0, 0, 3) + bytes(12), PcpAnnounce(0, 3)),
]


@pytest.mark.parametrize(("data", "expected"), VALID_RESPONSES)
def test_decode_whole_responses(data: bytes, expected: object) -> None:
    """Each response kind decodes to exactly its fields."""
    assert decode_response(data) == expected


@pytest.mark.parametrize(("data", "expected"), VALID_RESPONSES)
def test_every_truncation_is_refused_or_a_shorter_valid_form(data: bytes, expected: object) -> None:
    """Cut at every byte, a response is a RemoteProtocolError (never a crash, never the whole answer)."""
    for cut in range(len(data)):
        try:
            decoded = decode_response(data[:cut])
        except RemoteProtocolError:
            continue
        assert decoded != expected, f"prefix of {cut} bytes decoded as the whole response"
        assert isinstance(decoded, UnsupportedVersion), decoded  # only the 8-byte error form may remain


def test_error_results_may_come_in_the_short_form() -> None:
    """An error answer cut to 8 bytes (vers, op, result, epoch) still decodes, with its result code."""
    assert decode_response(struct.pack("!BBHI", 0, 130, 2, 5)) == MapResponse(TCP, 2, 5, 0, 0, 0)
    assert decode_response(struct.pack("!BBHI", 0, 128, 3, 5)) == AddressResponse(3, 5, "0.0.0.0")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00\x01" + bytes(10),  # a request, not a response
        b"\x00\x83" + bytes(14),  # answer to opcode 3, which we never send
        b"\x07\x80" + bytes(10),  # unknown version
        natpmp_map(TCP, 1, 1, 1, 1) + b"\0",  # one byte too long
        pcp_map(TCP, 1, 1, 1, 1)[:-4],  # MAP payload cut short
        pcp_map(TCP, 1, 1, 1, 1) + b"\0",  # not a multiple of 4
        bytes([2, 0x01]) + bytes(58),  # a PCP request
        bytes([2, 0x82]) + bytes(58),  # PCP PEER answer, never asked
        pcp_map(TCP, 1, 1, 1, 1)[:36] + b"\x84" + pcp_map(TCP, 1, 1, 1, 1)[37:],  # protocol 132
        bytes(1101),
    ],
)
def test_malformed_datagrams_are_remote_protocol_errors(data: bytes) -> None:
    """Requests, unknown versions or opcodes, wrong sizes and oversized datagrams are refused."""
    with pytest.raises(RemoteProtocolError):
        decode_response(data)


@given(st.binary(max_size=1200))
def test_decoder_fuzz_returns_a_response_or_raises_remote_protocol_error(data: bytes) -> None:
    """Any bytes at all: a decoded response or a RemoteProtocolError, nothing else."""
    try:
        decoded = decode_response(data)
    except RemoteProtocolError:
        return
    assert isinstance(
        decoded, AddressResponse | MapResponse | PcpMapResponse | PcpAnnounce | UnsupportedVersion
    )


@given(
    st.sampled_from([TCP, UDP]),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
)
def test_map_responses_round_trip(
    protocol: MapProtocol, internal: int, external: int, life: int, epoch: int
) -> None:
    """Whatever the fields, a NAT-PMP and a PCP map answer decode back to them."""
    assert decode_response(natpmp_map(protocol, internal, external, life, epoch)) == MapResponse(
        protocol, 0, epoch, internal, external, life
    )
    pcp = decode_response(pcp_map(protocol, internal, external, life, epoch))
    assert isinstance(pcp, PcpMapResponse)
    assert (pcp.protocol, pcp.internal_port, pcp.external_port, pcp.lifetime, pcp.epoch) == (
        protocol,
        internal,
        external,
        life,
        epoch,
    )
