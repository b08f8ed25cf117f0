"""BEP 11 ut_pex codec and sender diff: whole messages, every truncation, limits, address checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.config import CoopConfig
from p2pshare.core import bencode
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire.pex import (
    PexDiff,
    PexFlags,
    PexMessage,
    PexPeer,
    decode_pex,
    encode_pex,
    valid_peer_address,
)
from p2pshare.errors import RemoteProtocolError, Violation

A = PeerAddress("127.0.0.2", 6881)
B = PeerAddress("127.0.0.3", 6882)
V6 = PeerAddress("::1", 7000)


def _msg() -> PexMessage:
    return PexMessage(
        added=(PexPeer(A, PexFlags.SEED | PexFlags.REACHABLE), PexPeer(V6, PexFlags.UTP)),
        dropped=(B,),
    )


def test_a_message_round_trips_with_its_flags_and_both_families() -> None:
    """Encoding then decoding gives back the same added peers, flags and dropped peers."""
    assert decode_pex(encode_pex(_msg())) == _msg()


def test_the_encoding_is_the_bep_11_dict() -> None:
    """Keys and compact forms are exactly BEP 11's: 6-byte v4, 18-byte v6, one flag byte each."""
    d = bencode.decode(encode_pex(_msg()))
    assert d[b"added"] == bytes([127, 0, 0, 2, 0x1A, 0xE1])
    assert d[b"added.f"] == bytes([0x12])
    assert d[b"added6"] == bytes(15) + b"\x01" + (7000).to_bytes(2, "big")
    assert d[b"added6.f"] == bytes([0x04])
    assert d[b"dropped"] == bytes([127, 0, 0, 3, 0x1A, 0xE2])
    assert d[b"dropped6"] == b""


def test_every_truncation_is_an_error_never_a_crash() -> None:
    """Each proper prefix of a valid message is malformed and raises RemoteProtocolError."""
    raw = encode_pex(_msg())
    for cut in range(len(raw)):
        with pytest.raises(RemoteProtocolError):
            decode_pex(raw[:cut])


def test_a_compact_list_of_the_wrong_length_is_malformed() -> None:
    """An added list that is not a multiple of 6 bytes is malformed."""
    with pytest.raises(RemoteProtocolError) as err:
        decode_pex(bencode.encode({b"added": bytes(7)}))
    assert err.value.kind is Violation.MALFORMED


def test_too_many_added_or_dropped_peers_break_the_limit() -> None:
    """More added (or dropped) entries than the configured caps is TOO_LARGE."""
    cfg = CoopConfig(pex_max_received=3, pex_max_received_dropped=2)
    four = b"".join(bytes([127, 0, 0, i, 0, 80]) for i in range(1, 5))
    with pytest.raises(RemoteProtocolError) as err:
        decode_pex(bencode.encode({b"added": four}), cfg)
    assert err.value.kind is Violation.TOO_LARGE
    with pytest.raises(RemoteProtocolError):
        decode_pex(bencode.encode({b"dropped": four[:18]}), cfg)
    assert len(decode_pex(bencode.encode({b"added": four[:18]}), cfg).added) == 3
    big = bencode.encode({b"x": bytes(cfg.pex_max_payload)})
    with pytest.raises(RemoteProtocolError):
        decode_pex(big, cfg)


def test_undialable_addresses_are_skipped_and_missing_flags_are_none() -> None:
    """Port 0, 0.0.0.0, multicast and broadcast entries are dropped; absent flags read as none."""
    entries = [
        bytes([0, 0, 0, 0, 0, 80]),
        bytes([127, 0, 0, 5, 0, 0]),
        bytes([224, 0, 0, 1, 0, 80]),
        bytes([255, 255, 255, 255, 0, 80]),
        bytes([127, 0, 0, 9, 0, 80]),
    ]
    msg = decode_pex(bencode.encode({b"added": b"".join(entries), b"added.f": b"\x02"}))
    assert msg.added == (PexPeer(PeerAddress("127.0.0.9", 80), PexFlags.NONE),)
    assert not valid_peer_address("example.org", 80)
    assert valid_peer_address("10.1.2.3", 1)


def test_wrong_types_are_malformed() -> None:
    """A non-dict message, or a non-string list or flags, is malformed."""
    for bad in (b"le", bencode.encode({b"added": 5}), bencode.encode({b"added.f": [1]})):
        with pytest.raises(RemoteProtocolError):
            decode_pex(bad)


_v4 = st.tuples(st.integers(1, 223), st.integers(0, 255), st.integers(0, 255), st.integers(1, 254)).map(
    lambda t: ".".join(map(str, t))
)
_peer = st.builds(
    lambda h, p, f: PexPeer(PeerAddress(h, p), PexFlags(f)), _v4, st.integers(1, 65535), st.integers(0, 0x1F)
)


@given(st.lists(_peer, max_size=60), st.lists(_v4, max_size=20))
def test_any_valid_message_round_trips(added: list[PexPeer], dropped: list[str]) -> None:
    """Hypothesis: any message of valid v4 peers decodes to itself."""
    msg = PexMessage(tuple(added), tuple(PeerAddress(h, 9) for h in dropped))
    assert decode_pex(encode_pex(msg), CoopConfig(pex_max_received=60)) == msg


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    """Hypothesis: any bytes either decode or raise RemoteProtocolError."""
    try:
        decode_pex(data)
    except RemoteProtocolError:
        pass


def _diff(now: float = 0.0, **kw: int) -> PexDiff:
    return PexDiff(now, interval=60.0, first_delay=2.0, max_added=kw.get("max_added", 50), max_dropped=50)


def test_the_diff_waits_for_the_first_delay_then_one_interval_between_messages() -> None:
    """Nothing before the first delay; then one message; nothing again until a minute has passed."""
    d = _diff()
    cur = {A: PexFlags.NONE}
    assert d.next_message(1.0, cur) is None
    assert d.next_message(2.0, cur) == PexMessage((PexPeer(A),), ())
    cur[B] = PexFlags.SEED
    assert d.next_message(30.0, cur) is None
    assert d.next_message(62.0, cur) == PexMessage((PexPeer(B, PexFlags.SEED),), ())


def test_the_diff_sends_drops_flag_changes_and_nothing_when_nothing_changed() -> None:
    """A peer that left is dropped, a changed flag is re-added, an unchanged set sends nothing."""
    d = _diff()
    d.next_message(2.0, {A: PexFlags.NONE, B: PexFlags.NONE})
    assert d.next_message(70.0, {A: PexFlags.NONE, B: PexFlags.NONE}) is None
    msg = d.next_message(80.0, {A: PexFlags.SEED})
    assert msg == PexMessage((PexPeer(A, PexFlags.SEED),), (B,))


def test_at_most_max_added_per_message_and_the_rest_comes_next_time() -> None:
    """With 120 peers and a cap of 50: 50, then 50, then 20, a minute apart."""
    d = _diff(max_added=50)
    cur = {PeerAddress(f"127.0.1.{i}", 1000 + i): PexFlags.NONE for i in range(1, 121)}
    sizes = []
    for t in (2.0, 62.0, 122.0, 182.0):
        msg = d.next_message(t, cur)
        sizes.append(0 if msg is None else len(msg.added))
    assert sizes == [50, 50, 20, 0]
