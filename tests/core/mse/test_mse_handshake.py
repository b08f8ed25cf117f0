"""The two MSE machines against each other and against hand-written peers: whole, byte by byte,
at every split point."""

from __future__ import annotations

import pytest

from p2pshare.config import EncryptionPolicy, MseConfig
from p2pshare.core.mse import Failed, FailureReason, HandshakeDone, Initiator, Method, Receiver, skey_lookup
from p2pshare.errors import LocalProtocolError
from tests.core.mse.mse_helpers import (
    CFG,
    INFO_HASH,
    ScriptedA,
    ScriptedB,
    make_pair,
    pump,
    rc4,
    seeded,
    sha1,
)


def test_pair_agrees_on_rc4_and_delivers_ia() -> None:
    """Both roles finish with RC4, the receiver learns the info hash and the IA, and the ciphers match."""
    a, b = make_pair(ia=b"\x13BitTorrent protocol" + bytes(48))
    ev_a, ev_b = pump(a, b)
    assert ev_a == [HandshakeDone(Method.RC4, INFO_HASH, b"")]
    assert ev_b == [HandshakeDone(Method.RC4, INFO_HASH, b"\x13BitTorrent protocol" + bytes(48))]
    assert a.cipher is not None and b.cipher is not None
    assert b.cipher.decrypt(a.cipher.encrypt(b"interested")) == b"interested"
    assert a.cipher.decrypt(b.cipher.encrypt(b"unchoke")) == b"unchoke"
    assert a.get_timer() is None and b.get_timer() is None


def test_plaintext_payload_when_rc4_not_preferred() -> None:
    """With prefer_rc4 off, a receiver offered both chooses plaintext and neither side keeps a cipher."""
    cfg = MseConfig(prefer_rc4=False)
    a, b = make_pair(config=cfg, ia=b"hi")
    ev_a, ev_b = pump(a, b)
    assert ev_a == [HandshakeDone(Method.PLAINTEXT, INFO_HASH, b"")]
    assert ev_b == [HandshakeDone(Method.PLAINTEXT, INFO_HASH, b"hi")]
    assert a.cipher is None and b.cipher is None


@pytest.mark.parametrize(
    ("a_policy", "b_policy", "method"),
    [
        (EncryptionPolicy.REQUIRE, EncryptionPolicy.PREFER, Method.RC4),
        (EncryptionPolicy.PREFER, EncryptionPolicy.REQUIRE, Method.RC4),
        (EncryptionPolicy.REQUIRE, EncryptionPolicy.REQUIRE, Method.RC4),
    ],
)
def test_policies_meet_on_rc4(a_policy: EncryptionPolicy, b_policy: EncryptionPolicy, method: Method) -> None:
    """Every pairing of prefer and require settles on RC4 even when plaintext is preferred."""
    a, b = make_pair(a_policy=a_policy, b_policy=b_policy, config=MseConfig(prefer_rc4=False))
    ev_a, ev_b = pump(a, b)
    assert [type(e) for e in ev_a + ev_b] == [HandshakeDone, HandshakeDone]
    assert a.method is method and b.method is method


@pytest.mark.parametrize("pad", [0, 512])
def test_pads_at_both_limits(pad: int) -> None:
    """Pads of 0 and of 512 bytes in all four places complete the handshake."""
    a, b = make_pair(pad=pad, ia=b"x")
    first = a.data_to_send()
    assert len(first) == 96 + pad
    b.receive_data(first)
    second = b.data_to_send()
    assert len(second) == 96 + pad
    a.receive_data(second)
    third = a.data_to_send()
    assert len(third) == 20 + 20 + 8 + 4 + 2 + pad + 2 + 1
    b.receive_data(third)
    fourth = b.data_to_send()
    assert len(fourth) == 8 + 4 + 2 + pad
    a.receive_data(fourth)
    assert [type(e) for e in a.events() + b.events()] == [HandshakeDone, HandshakeDone]


def test_initiator_bytes_match_the_spec() -> None:
    """The initiator's messages equal an encoding written out from the spec, byte for byte."""
    draw = seeded(7, pad=3)
    a = Initiator(INFO_HASH, config=CFG, now=0.0, initial_payload=b"IA!", random_bytes=draw)
    replay = seeded(7, pad=3)
    xa = int.from_bytes(replay(20), "big")
    replay(2)
    pad_a = replay(3)
    first = a.data_to_send()
    assert first == ScriptedA(xa).ya + pad_a
    peer = ScriptedB()
    a.receive_data(peer.yb)
    replay(2)
    pad_c = replay(3)
    expected, _, _ = ScriptedA(xa).step3(peer.yb, provide=3, pad_c=pad_c, ia=b"IA!")
    assert a.data_to_send() == expected


def test_receiver_reply_matches_the_spec() -> None:
    """The receiver answers Yb+PadB, then ENCRYPT(VC, crypto_select, len(PadD), PadD) with zero PadD."""
    b = Receiver(skey_lookup([INFO_HASH]), config=CFG, now=0.0, random_bytes=seeded(9, pad=5))
    replay = seeded(9, pad=5)
    xb = int.from_bytes(replay(20), "big")
    replay(2)
    pad_b = replay(5)
    peer = ScriptedA()
    b.receive_data(peer.ya)
    assert b.data_to_send() == ScriptedB(xb).yb + pad_b
    third, _, _ = peer.step3(ScriptedB(xb).yb, provide=2)
    b.receive_data(third)
    s = peer.secret(ScriptedB(xb).yb)
    expected = rc4(sha1(b"keyB", s, INFO_HASH)).update(
        bytes(8) + (2).to_bytes(4, "big") + b"\x00\x05" + bytes(5)
    )
    assert b.data_to_send() == expected
    assert b.events() == [HandshakeDone(Method.RC4, INFO_HASH, b"")]


def _transcripts(seed: int, pad: int, ia: bytes, tail: bytes) -> tuple[bytes, bytes]:
    """The whole byte stream each side receives in a run (plus ``tail``, payload sent right after)."""
    a, b = make_pair(seed, pad=pad, ia=ia)
    to_b = bytearray()
    to_a = bytearray()
    for _ in range(5):
        d = a.data_to_send()
        to_b += d
        if d:
            b.receive_data(d)
        d = b.data_to_send()
        to_a += d
        if d:
            a.receive_data(d)
    assert a.cipher is not None and b.cipher is not None
    to_b += a.cipher.encrypt(tail)
    to_a += b.cipher.encrypt(tail)
    return bytes(to_b), bytes(to_a)


@pytest.mark.parametrize("pad", [0, 37])
def test_receiver_at_every_split_point(pad: int) -> None:
    """The receiver's result is the same whichever byte the stream is split at, and byte by byte."""
    tail = b"payload!"
    to_b, _ = _transcripts(3, pad, b"IA", tail)
    want = HandshakeDone(Method.RC4, INFO_HASH, b"IA" + tail)
    handshake = len(to_b) - len(tail)
    for cut in range(len(to_b) + 1):
        _, b = make_pair(3, pad=pad, ia=b"IA")
        if cut:
            b.receive_data(to_b[:cut])
        if cut < handshake:
            assert b.next_event() is None
            b.receive_data(to_b[cut:])
            assert b.events() == [want], cut
        else:  # the handshake ended inside the first part: the payload so far comes with it
            assert b.events() == [HandshakeDone(Method.RC4, INFO_HASH, b"IA" + tail[: cut - handshake])], cut
    _, b = make_pair(3, pad=pad, ia=b"IA")
    for i in range(len(to_b) - len(tail)):
        b.receive_data(to_b[i : i + 1])
    assert b.events() == [HandshakeDone(Method.RC4, INFO_HASH, b"IA")]


@pytest.mark.parametrize("pad", [0, 37])
def test_initiator_at_every_split_point(pad: int) -> None:
    """The initiator's result is the same whichever byte the reply is split at, and byte by byte."""
    tail = b"bitfield"
    _, to_a = _transcripts(4, pad, b"", tail)
    want = HandshakeDone(Method.RC4, INFO_HASH, tail)
    handshake = len(to_a) - len(tail)
    for cut in range(len(to_a) + 1):
        a, _ = make_pair(4, pad=pad)
        if cut:
            a.receive_data(to_a[:cut])
        if cut < handshake:
            assert a.next_event() is None
            a.receive_data(to_a[cut:])
            assert a.events() == [want], cut
        else:
            assert a.events() == [HandshakeDone(Method.RC4, INFO_HASH, tail[: cut - handshake])], cut
    a, _ = make_pair(4, pad=pad)
    for i in range(len(to_a) - len(tail)):
        a.receive_data(to_a[i : i + 1])
    assert a.events() == [HandshakeDone(Method.RC4, INFO_HASH, b"")]


def test_byte_by_byte_pair() -> None:
    """Two machines trading single bytes finish the same as with whole messages."""
    a, b = make_pair(11, ia=b"abc")
    ev_a, ev_b = pump(a, b, chunk=1)
    assert ev_a == [HandshakeDone(Method.RC4, INFO_HASH, b"")]
    assert ev_b == [HandshakeDone(Method.RC4, INFO_HASH, b"abc")]


def test_plaintext_select_leaves_trailing_payload_clear() -> None:
    """After a plaintext select, bytes that follow PadD reach the initiator as they were sent."""
    a = Initiator(INFO_HASH, config=CFG, now=0.0, random_bytes=seeded(2))
    ya = a.data_to_send()[:96]
    peer = ScriptedB()
    a.receive_data(peer.yb)
    reply, _, _ = peer.step4(ya, select=1, pad_d=bytes(4))
    a.receive_data(reply + b"\x00\x00\x00\x01\x02")
    assert a.events() == [HandshakeDone(Method.PLAINTEXT, INFO_HASH, b"\x00\x00\x00\x01\x02")]
    assert a.cipher is None


def test_receive_after_done_is_a_local_error() -> None:
    """Feeding a finished machine is the caller's bug, not the peer's."""
    a, b = make_pair()
    pump(a, b)
    with pytest.raises(LocalProtocolError):
        a.receive_data(b"more")


def test_initiator_refuses_policy_off() -> None:
    """Starting MSE while encryption is off is a local error."""
    with pytest.raises(LocalProtocolError):
        Initiator(INFO_HASH, config=CFG, now=0.0, policy=EncryptionPolicy.OFF)


def test_timeout_fires_at_the_deadline_only() -> None:
    """handle_timer before the deadline does nothing; at it the handshake fails with TIMEOUT."""
    a = Initiator(INFO_HASH, config=MseConfig(handshake_timeout=5.0), now=100.0)
    assert a.get_timer() == 105.0
    a.handle_timer(104.9)
    assert a.next_event() is None
    a.handle_timer(105.0)
    event = a.next_event()
    assert isinstance(event, Failed) and event.reason is FailureReason.TIMEOUT
    assert a.get_timer() is None
    a.handle_timer(200.0)
    assert a.next_event() is None
