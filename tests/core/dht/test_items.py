"""BEP 44 items: the signature buffer against the BEP's test vectors, and every rule of the store."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.config import DhtConfig
from p2pshare.core import bencode
from p2pshare.core.dht import krpc
from p2pshare.core.dht.items import (
    Item,
    ItemStore,
    immutable_item,
    immutable_target,
    mutable_target,
    public_key_of,
    sign_mutable,
    signature_buffer,
    verify_item,
    verify_signature,
)
from p2pshare.errors import LocalProtocolError

# BEP 44, "Test Vectors"
PUB = bytes.fromhex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
SIG1 = bytes.fromhex(
    "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff"
    "1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01"
)
SIG2 = bytes.fromhex(
    "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d"
    "df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08"
)
HELLO = b"12:Hello World!"

SEED = bytes(range(32))
CFG = DhtConfig(bootstrap=())


def test_vector_1_mutable() -> None:
    """BEP 44 test 1: the signed buffer, the target and the published signature all match."""
    buf = signature_buffer(b"", 1, HELLO)
    assert buf == b"3:seqi1e1:v12:Hello World!"
    assert mutable_target(PUB).hex() == "4a533d47ec9c7d95b1ad75f576cffc641853b750"
    assert verify_signature(PUB, SIG1, buf)
    item = Item(HELLO, PUB, b"", 1, SIG1)
    assert verify_item(item, bytes.fromhex("4a533d47ec9c7d95b1ad75f576cffc641853b750"), max_value=1000)


def test_vector_2_mutable_with_salt() -> None:
    """BEP 44 test 2: the salt is prepended to the buffer and appended to the key for the target."""
    buf = signature_buffer(b"foobar", 1, HELLO)
    assert buf == b"4:salt6:foobar3:seqi1e1:v12:Hello World!"
    assert mutable_target(PUB, b"foobar").hex() == "411eba73b6f087ca51a3795d9c8c938d365e32c1"
    assert verify_signature(PUB, SIG2, buf)
    assert not verify_signature(PUB, SIG2, signature_buffer(b"", 1, HELLO))


def test_vector_3_immutable() -> None:
    """BEP 44 test 3: an immutable item lives under the SHA-1 of its bencoded value."""
    assert immutable_target(HELLO).hex() == "e5f96f6f38320f0f33959cb4d3d656452117aadb"
    assert immutable_item(b"Hello World!").target == immutable_target(HELLO)


@pytest.mark.parametrize("flip", [0, 31, 63])
def test_any_changed_signature_byte_fails(flip: int) -> None:
    """A signature with one bit flipped does not verify."""
    bad = bytearray(SIG1)
    bad[flip] ^= 1
    assert not verify_signature(PUB, bytes(bad), signature_buffer(b"", 1, HELLO))


def test_wrong_sizes_do_not_verify() -> None:
    """A key or signature of the wrong length is simply invalid, never an exception."""
    buf = signature_buffer(b"", 1, HELLO)
    assert not verify_signature(PUB[:31], SIG1, buf)
    assert not verify_signature(PUB, SIG1[:63], buf)


@given(value=st.binary(max_size=200), seq=st.integers(0, 2**63 - 1), salt=st.binary(max_size=64))
def test_sign_then_verify_round_trip(value: bytes, seq: int, salt: bytes) -> None:
    """An item we sign verifies under its own target, and not under another seq."""
    item = sign_mutable(SEED, value, seq, salt)
    assert item.key == public_key_of(SEED) and item.target == mutable_target(item.key, salt)
    assert verify_item(item, item.target, max_value=1000)
    assert not replace(item, seq=seq ^ 1).signature_ok()


def test_sign_refuses_bad_keys_and_seq() -> None:
    """Signing with a key that is not 32 bytes or a negative seq is our bug."""
    with pytest.raises(LocalProtocolError):
        sign_mutable(SEED[:31], b"x", 1)
    with pytest.raises(LocalProtocolError):
        sign_mutable(SEED, b"x", -1)


def test_verify_item_checks_target_and_size() -> None:
    """An item for another target, or larger than allowed, is refused by a lookup."""
    item = sign_mutable(SEED, b"x" * 100, 1)
    assert not verify_item(item, bytes(20), max_value=1000)
    assert not verify_item(item, item.target, max_value=50)


# -- the store ----------------------------------------------------------------------------


def put_args(item: Item, *, cas: int | None = None) -> krpc.PutArgs:
    return krpc.PutArgs(
        b"tok", item.value, item.key, item.salt, item.seq if item.key else None, item.sig, cas
    )


def store(config: DhtConfig = CFG) -> ItemStore:
    return ItemStore(config)


def test_immutable_put_then_get() -> None:
    """An immutable item is stored under its hash and returned until it expires."""
    s = store()
    item = immutable_item([1, b"two", {b"k": b"v"}])
    assert s.put(put_args(item), "10.0.0.1", 0.0) is None
    assert s.get(item.target, 1.0) == item


def test_value_too_big_is_205() -> None:
    """A value whose bencoding exceeds 1000 bytes is refused with 205."""
    item = immutable_item(b"x" * 996)  # 4:... prefix makes it 1000 bytes: accepted
    assert len(item.value) == 1000 and store().put(put_args(item), "a", 0.0) is None
    big = immutable_item(b"x" * 997)
    assert store().put(put_args(big), "a", 0.0) == krpc.ERROR_VALUE_TOO_BIG


def test_salt_too_big_is_207() -> None:
    """A salt longer than 64 bytes is refused with 207; 64 bytes are accepted."""
    assert store().put(put_args(sign_mutable(SEED, b"v", 1, b"s" * 64)), "a", 0.0) is None
    item = sign_mutable(SEED, b"v", 1, b"s" * 65)
    assert store().put(put_args(item), "a", 0.0) == krpc.ERROR_SALT_TOO_BIG


def test_invalid_signature_is_206() -> None:
    """A mutable put whose signature does not verify is refused with 206 and stores nothing."""
    s = store()
    item = replace(sign_mutable(SEED, b"v", 1), value=b"1:w")
    assert s.put(put_args(item), "a", 0.0) == krpc.ERROR_INVALID_SIGNATURE and len(s) == 0


def test_higher_seq_replaces_lower_is_302() -> None:
    """A higher seq replaces the item; a lower one is refused with 302."""
    s = store()
    assert s.put(put_args(sign_mutable(SEED, b"v2", 2)), "a", 0.0) is None
    assert s.put(put_args(sign_mutable(SEED, b"v1", 1)), "a", 1.0) == krpc.ERROR_SEQ_TOO_LOW
    assert s.put(put_args(sign_mutable(SEED, b"v3", 3)), "a", 2.0) is None
    got = s.get(mutable_target(public_key_of(SEED)), 3.0)
    assert got is not None and got.seq == 3 and got.decoded() == b"v3"


def test_same_seq_other_value_is_302_same_value_refreshes() -> None:
    """Equal seq with another value is refused; equal seq with the same value resets the expiry."""
    s = store()
    first = sign_mutable(SEED, b"v", 5)
    assert s.put(put_args(first), "a", 0.0) is None
    assert s.put(put_args(sign_mutable(SEED, b"w", 5)), "a", 1.0) == krpc.ERROR_SEQ_TOO_LOW
    assert s.put(put_args(first), "b", 7000.0) is None  # refreshed just before 2 h
    assert s.get(first.target, 7200.0 + 100.0) == first
    assert s.get(first.target, 7000.0 + 7200.0) is None


def test_cas_mismatch_is_301_and_match_stores() -> None:
    """A cas that is not the stored seq is refused with 301; the right one lets the put through."""
    s = store()
    assert s.put(put_args(sign_mutable(SEED, b"v", 4)), "a", 0.0) is None
    assert s.put(put_args(sign_mutable(SEED, b"w", 5), cas=3), "a", 1.0) == krpc.ERROR_CAS_MISMATCH
    assert s.put(put_args(sign_mutable(SEED, b"w", 5), cas=4), "a", 1.0) is None


def test_cas_is_ignored_without_a_stored_item() -> None:
    """With nothing stored yet, cas does not matter (BEP 44: SHOULD be ignored)."""
    assert store().put(put_args(sign_mutable(SEED, b"v", 1), cas=99), "a", 0.0) is None


def test_cas_is_checked_before_seq() -> None:
    """A put with a stale seq and a wrong cas reports the cas mismatch (301), as libtorrent does."""
    s = store()
    s.put(put_args(sign_mutable(SEED, b"v", 4)), "a", 0.0)
    assert s.put(put_args(sign_mutable(SEED, b"w", 1), cas=2), "a", 1.0) == krpc.ERROR_CAS_MISMATCH


def test_salted_items_of_one_key_are_separate() -> None:
    """One key with two salts stores two items under two targets."""
    s = store()
    a, b = sign_mutable(SEED, b"a", 1, b"one"), sign_mutable(SEED, b"b", 1, b"two")
    assert s.put(put_args(a), "x", 0.0) is None and s.put(put_args(b), "x", 0.0) is None
    assert a.target != b.target and s.get(a.target, 1.0) == a and s.get(b.target, 1.0) == b


def test_items_expire_after_two_hours() -> None:
    """An item not put again is gone after item_ttl (2 h), and expire() frees it."""
    s = store()
    item = immutable_item(b"x")
    s.put(put_args(item), "a", 0.0)
    assert s.get(item.target, 7199.0) == item
    assert s.expire(7200.0) == 1 and len(s) == 0 and s.sources() == 0


def test_per_source_cap_is_202() -> None:
    """One source IP cannot hold more than max_items_per_source items; others still can put."""
    s = store(replace(CFG, max_items_per_source=3))
    for i in range(3):
        assert s.put(put_args(immutable_item(i)), "10.0.0.1", 0.0) is None
    assert s.put(put_args(immutable_item(3)), "10.0.0.1", 0.0) == krpc.ERROR_SERVER
    assert s.put(put_args(immutable_item(3)), "10.0.0.2", 0.0) is None and len(s) == 4


def test_total_cap_evicts_the_item_nearest_expiry() -> None:
    """A full store drops the item closest to expiry to take a new one, and never grows past max_items."""
    s = store(replace(CFG, max_items=4))
    items = [immutable_item(i) for i in range(6)]
    for i, item in enumerate(items):
        assert s.put(put_args(item), f"10.0.0.{i}", float(i)) is None
        assert len(s) <= 4
    assert s.get(items[0].target, 10.0) is None and s.get(items[1].target, 10.0) is None
    assert all(s.get(it.target, 10.0) == it for it in items[2:])
    assert s.sources() == 4


def test_store_memory_is_bounded_by_bytes() -> None:
    """Items are kept as their bencoded bytes: 700 full items hold under 1.5 MB of values."""
    s = store()
    for i in range(1000):
        s.put(put_args(immutable_item(i.to_bytes(2, "big") * 497)), f"10.{i >> 8}.0.{i & 255}", 0.0)
    assert len(s) == 700
    held = sum(len(s.get(t, 1.0).value) for t in list(s._items))  # type: ignore[union-attr]
    assert held <= 700 * 1000


def test_item_put_args_round_trip_through_krpc() -> None:
    """A signed item's put arguments decode back (through KRPC) to the same item."""
    item = sign_mutable(SEED, {b"ih": bytes(20)}, 9, b"salt")
    args = {b"id": bytes(20), b"token": b"tok", **item.put_args()}
    q = krpc.decode_message(krpc.encode_query(b"t", b"put", args), max_packet=1500)
    assert isinstance(q, krpc.Query) and isinstance(q.args, krpc.PutArgs)
    assert put_args(item) == q.args
    assert bencode.decode(q.args.value) == {b"ih": bytes(20)}


_PUTS = st.lists(
    st.tuples(st.integers(0, 6), st.sampled_from([b"a", b"b"]), st.none() | st.integers(0, 6)),
    min_size=1,
    max_size=25,
)
_KEYS = {(seq, v): sign_mutable(SEED, v, seq) for seq in range(7) for v in (b"a", b"b")}


@given(_PUTS)
def test_store_follows_the_bep44_rules_for_any_put_sequence(
    puts: list[tuple[int, bytes, int | None]],
) -> None:
    """For any sequence of puts, each answer matches a model of BEP 44 and the stored seq never drops."""
    s = store()
    held: tuple[int, bytes] | None = None
    for i, (seq, v, cas) in enumerate(puts):
        item = _KEYS[(seq, v)]
        code = s.put(put_args(item, cas=cas), "a", float(i))
        if held is None:
            expected = None
        elif cas is not None and cas != held[0]:
            expected = krpc.ERROR_CAS_MISMATCH
        elif seq < held[0] or (seq == held[0] and item.value != held[1]):
            expected = krpc.ERROR_SEQ_TOO_LOW
        else:
            expected = None
        assert code == expected
        if code is None:
            held = (seq, item.value)
        got = s.get(item.target, float(i))
        assert got is not None and held is not None and (got.seq, got.value) == held
