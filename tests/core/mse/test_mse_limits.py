"""Every way an MSE handshake fails or falls through: limits, sync bound, bad keys, wrong SKEY,
methods, plain BitTorrent detection, closing."""

from __future__ import annotations

import pytest

from p2pshare.config import EncryptionPolicy, MseConfig
from p2pshare.core.mse import (
    PLAIN_HEADER,
    Failed,
    FailureReason,
    HandshakeDone,
    Initiator,
    Method,
    MseError,
    PlaintextStream,
    Receiver,
    retry_plaintext,
    select_method,
    skey_lookup,
)
from p2pshare.core.mse.machine import MseMachine
from p2pshare.errors import RemoteProtocolError
from tests.core.mse.mse_helpers import CFG, INFO_HASH, OTHER_HASH, P, ScriptedA, ScriptedB, seeded

PLAIN_HANDSHAKE = PLAIN_HEADER + bytes(8) + INFO_HASH + b"-XX0001-" + bytes(12)


def receiver(policy: EncryptionPolicy = EncryptionPolicy.PREFER, config: MseConfig = CFG) -> Receiver:
    return Receiver(skey_lookup([INFO_HASH]), config=config, now=0.0, policy=policy, random_bytes=seeded(5))


def initiator(policy: EncryptionPolicy = EncryptionPolicy.PREFER, config: MseConfig = CFG) -> Initiator:
    return Initiator(INFO_HASH, config=config, now=0.0, policy=policy, random_bytes=seeded(6))


def failure(machine: MseMachine) -> FailureReason:
    events = machine.events()
    assert len(events) == 1 and isinstance(events[0], Failed), events
    return events[0].reason


def run_receiver(b: Receiver, pad_a: bytes = b"", **step3: object) -> bytes:
    """Drive ``b`` with a scripted initiator; returns what ``b`` answered last."""
    a = ScriptedA()
    b.receive_data(a.ya + pad_a)
    yb = b.data_to_send()[:96]
    third, _, _ = a.step3(yb, **step3)  # type: ignore[arg-type]
    b.receive_data(third)
    return b.data_to_send()


def run_initiator(a: Initiator, pad_b: bytes = b"", **step4: object) -> None:
    ya = a.data_to_send()[:96]
    peer = ScriptedB()
    a.receive_data(peer.yb + pad_b)
    reply, _, _ = peer.step4(ya, **step4)  # type: ignore[arg-type]
    a.receive_data(reply)


@pytest.mark.parametrize(("size", "ok"), [(0, True), (512, True), (513, False)])
def test_pad_a_within_the_sync_window(size: int, ok: bool) -> None:
    """The req1 marker is found after up to 512 bytes of PadA, and not after 513."""
    b = receiver()
    run_receiver(b, pad_a=b"\x07" * size)
    if ok:
        assert b.events() == [HandshakeDone(Method.RC4, INFO_HASH, b"")]
    else:
        assert failure(b) is FailureReason.NO_SYNC


@pytest.mark.parametrize(("size", "ok"), [(0, True), (512, True), (513, False)])
def test_pad_b_within_the_sync_window(size: int, ok: bool) -> None:
    """The initiator finds ENCRYPT(VC) after up to 512 bytes of PadB, and not after 513."""
    a = initiator()
    run_initiator(a, pad_b=b"\xaa" * size)
    if ok:
        assert a.events() == [HandshakeDone(Method.RC4, INFO_HASH, b"")]
    else:
        assert failure(a) is FailureReason.NO_SYNC


def test_sync_search_waits_until_the_window_is_full() -> None:
    """Junk after Ya is buffered up to window + 20 bytes; the next byte makes it a NO_SYNC failure."""
    b = receiver(config=MseConfig(sync_window=100))
    b.receive_data(ScriptedA().ya + b"\x01" * 119)
    assert b.next_event() is None
    b.receive_data(b"\x01")
    assert failure(b) is FailureReason.NO_SYNC


def test_initiator_sync_bound_follows_config() -> None:
    """The initiator gives up on VC after sync_window + 8 bytes of reply past Yb."""
    a = initiator(config=MseConfig(sync_window=10))
    a.data_to_send()
    a.receive_data(ScriptedB().yb + b"\x01" * 17)
    assert a.next_event() is None
    a.receive_data(b"\x01")
    assert failure(a) is FailureReason.NO_SYNC


@pytest.mark.parametrize(("size", "ok"), [(512, True), (513, False)])
def test_pad_c_limit(size: int, ok: bool) -> None:
    """A PadC of 512 bytes is read; 513 announced is refused before waiting for it."""
    b = receiver()
    if ok:
        run_receiver(b, pad_c=bytes(size))
        assert b.events() == [HandshakeDone(Method.RC4, INFO_HASH, b"")]
    else:
        run_receiver(b, pad_c_len=size)
        assert failure(b) is FailureReason.PAD_TOO_LONG


@pytest.mark.parametrize(("size", "ok"), [(512, True), (513, False)])
def test_pad_d_limit(size: int, ok: bool) -> None:
    """A PadD of 512 bytes is read; 513 announced is refused."""
    a = initiator()
    if ok:
        run_initiator(a, pad_d=bytes(size))
        assert a.events() == [HandshakeDone(Method.RC4, INFO_HASH, b"")]
    else:
        run_initiator(a, pad_d_len=size)
        assert failure(a) is FailureReason.PAD_TOO_LONG


def test_initial_payload_limit() -> None:
    """An IA longer than max_initial_payload is refused as soon as its length is read."""
    b = receiver(config=MseConfig(max_initial_payload=10))
    run_receiver(b, ia_len=11)
    assert failure(b) is FailureReason.PAYLOAD_TOO_LONG
    b = receiver(config=MseConfig(max_initial_payload=10))
    run_receiver(b, ia=b"0123456789")
    assert b.events() == [HandshakeDone(Method.RC4, INFO_HASH, b"0123456789")]


def test_wrong_skey_is_refused() -> None:
    """An initiator asking for a torrent the session does not serve fails with UNKNOWN_SKEY."""
    b = receiver()
    run_receiver(b, skey=OTHER_HASH)
    assert failure(b) is FailureReason.UNKNOWN_SKEY
    assert b.data_to_send() == b""


def test_skey_resolved_among_many() -> None:
    """The receiver finds the requested torrent among every info hash the session serves."""
    hashes = [bytes([i]) * 20 for i in range(50)]
    b = Receiver(skey_lookup(hashes), config=CFG, now=0.0)
    run_receiver(b, skey=hashes[37])
    assert b.events() == [HandshakeDone(Method.RC4, hashes[37], b"")]
    assert b.info_hash == hashes[37]


def test_bad_vc_is_refused() -> None:
    """A verification constant that does not decrypt to zeros fails the handshake."""
    b = receiver()
    run_receiver(b, vc=b"\x00" * 7 + b"\x01")
    assert failure(b) is FailureReason.BAD_VC


@pytest.mark.parametrize("y", [0, 1, P - 1, P, 2**768 - 1])
def test_degenerate_public_keys(y: int) -> None:
    """Public keys 0, 1, P-1 and anything >= P are refused by both roles."""
    b = receiver()
    b.receive_data(y.to_bytes(96, "big"))
    assert failure(b) is FailureReason.BAD_PUBLIC_KEY
    a = initiator()
    a.receive_data(y.to_bytes(96, "big"))
    assert failure(a) is FailureReason.BAD_PUBLIC_KEY


@pytest.mark.parametrize(
    ("policy", "provide", "ok"),
    [
        (EncryptionPolicy.REQUIRE, 1, False),
        (EncryptionPolicy.PREFER, 1, True),
        (EncryptionPolicy.PREFER, 0, False),
        (EncryptionPolicy.PREFER, 0xFC, False),
    ],
)
def test_crypto_provide_without_an_allowed_method(policy: EncryptionPolicy, provide: int, ok: bool) -> None:
    """A crypto_provide with nothing the policy allows fails with NO_COMMON_METHOD."""
    b = receiver(policy)
    run_receiver(b, provide=provide)
    if ok:
        assert b.events() == [HandshakeDone(Method.PLAINTEXT, INFO_HASH, b"")]
    else:
        assert failure(b) is FailureReason.NO_COMMON_METHOD


@pytest.mark.parametrize(
    ("policy", "select"),
    [
        (EncryptionPolicy.REQUIRE, 1),
        (EncryptionPolicy.PREFER, 3),
        (EncryptionPolicy.PREFER, 0),
        (EncryptionPolicy.PREFER, 4),
    ],
)
def test_crypto_select_not_offered(policy: EncryptionPolicy, select: int) -> None:
    """A receiver that selects a method we did not offer, or not exactly one, fails the initiator."""
    a = initiator(policy)
    run_initiator(a, select=select)
    assert failure(a) is FailureReason.BAD_SELECT


@pytest.mark.parametrize(
    ("provided", "policy", "prefer_rc4", "want"),
    [
        (3, EncryptionPolicy.PREFER, True, Method.RC4),
        (3, EncryptionPolicy.PREFER, False, Method.PLAINTEXT),
        (3, EncryptionPolicy.REQUIRE, False, Method.RC4),
        (1, EncryptionPolicy.REQUIRE, True, None),
        (2, EncryptionPolicy.PREFER, False, Method.RC4),
        (3, EncryptionPolicy.OFF, True, None),
    ],
)
def test_select_method_table(
    provided: int, policy: EncryptionPolicy, prefer_rc4: bool, want: Method | None
) -> None:
    """The receiver's choice follows crypto_provide, the policy and prefer_rc4."""
    assert select_method(provided, policy, prefer_rc4) == want


@pytest.mark.parametrize("policy", [EncryptionPolicy.PREFER, EncryptionPolicy.OFF])
def test_plain_bittorrent_falls_through(policy: EncryptionPolicy) -> None:
    """A plain handshake is recognised on its 20th byte, and every byte so far is handed back."""
    b = receiver(policy)
    for i in range(19):
        b.receive_data(PLAIN_HANDSHAKE[i : i + 1])
        assert b.next_event() is None
    b.receive_data(PLAIN_HANDSHAKE[19:])
    assert b.events() == [PlaintextStream(PLAIN_HANDSHAKE)]
    assert b.data_to_send() == b""


def test_plain_bittorrent_refused_under_require() -> None:
    """Under require, a plain BitTorrent peer is refused."""
    b = receiver(EncryptionPolicy.REQUIRE)
    b.receive_data(PLAIN_HANDSHAKE)
    assert failure(b) is FailureReason.PLAINTEXT_REFUSED


def test_mse_refused_when_off() -> None:
    """With encryption off, the first byte that is not plain BitTorrent refuses the stream."""
    b = receiver(EncryptionPolicy.OFF)
    b.receive_data(b"\x13Bit")
    assert b.next_event() is None
    b.receive_data(b"X")
    assert failure(b) is FailureReason.ENCRYPTION_REFUSED


def test_partial_header_match_is_still_mse() -> None:
    """A public key that happens to start like the plain header is handled as MSE."""
    b = receiver()
    b.receive_data(b"\x13BitTorrent" + b"\x01" * 85)
    assert b.next_event() is None
    assert len(b.data_to_send()) >= 96


@pytest.mark.parametrize("cut", [0, 50, 96, 200])
def test_close_mid_handshake(cut: int) -> None:
    """The peer closing the stream before the end fails with CLOSED and a typed error."""
    b = receiver()
    stream = ScriptedA().ya + bytes(150)
    if cut:
        b.receive_data(stream[:cut])
    b.receive_data(b"")
    events = b.events()
    assert len(events) == 1 and isinstance(events[0], Failed) and events[0].reason is FailureReason.CLOSED
    err = events[0].error()
    assert isinstance(err, MseError) and isinstance(err, RemoteProtocolError)
    assert err.reason is FailureReason.CLOSED


def test_one_final_event_only() -> None:
    """After failing, the machine reports nothing more, even on a later timeout."""
    b = receiver()
    b.receive_data(bytes(96))
    b.handle_timer(1e9)
    assert failure(b) is FailureReason.BAD_PUBLIC_KEY
    assert b.next_event() is None


@pytest.mark.parametrize(
    ("reason", "policy", "retry"),
    [
        (FailureReason.CLOSED, EncryptionPolicy.PREFER, True),
        (FailureReason.TIMEOUT, EncryptionPolicy.PREFER, True),
        (FailureReason.NO_SYNC, EncryptionPolicy.PREFER, True),
        (FailureReason.CLOSED, EncryptionPolicy.REQUIRE, False),
        (FailureReason.BAD_SELECT, EncryptionPolicy.PREFER, False),
        (FailureReason.BAD_PUBLIC_KEY, EncryptionPolicy.PREFER, False),
    ],
)
def test_retry_plaintext_only_under_prefer_for_peers_without_mse(
    reason: FailureReason, policy: EncryptionPolicy, retry: bool
) -> None:
    """A failed MSE dial is retried in plaintext only under prefer, and only when MSE went unanswered."""
    assert retry_plaintext(MseError(reason, "x"), policy) is retry
