"""KRPC parsing of BEP 44 get and put queries: well-typed arguments or a flagged 203."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.core import bencode
from p2pshare.core.dht import krpc
from p2pshare.core.dht.items import sign_mutable

NID = bytes(range(20))
SEED = bytes(32)
ITEM = sign_mutable(SEED, b"hello", 3, b"salt")


def dec(data: bytes) -> krpc.Message:
    return krpc.decode_message(data, max_packet=1500)


def put(**over: Any) -> bytes:
    args: dict[bytes, Any] = {b"id": NID, b"token": b"tok", **ITEM.put_args()}
    for k, v in over.items():
        if v is None:
            args.pop(k.encode(), None)
        else:
            args[k.encode()] = v
    return krpc.encode_query(b"tt", b"put", args)


def test_get_with_and_without_seq() -> None:
    """get carries a 20-byte target and an optional integer seq."""
    q = dec(krpc.encode_query(b"t", b"get", {b"id": NID, b"target": NID, b"seq": 4}))
    assert isinstance(q, krpc.Query) and q.args == krpc.GetArgs(NID, 4, frozenset())
    q = dec(krpc.encode_query(b"t", b"get", {b"id": NID, b"target": NID}))
    assert isinstance(q, krpc.Query) and q.args == krpc.GetArgs(NID, None, frozenset())


def test_mutable_put_is_parsed_whole() -> None:
    """A mutable put yields its key, salt, seq, signature, cas and the canonical value bytes."""
    q = dec(put(cas=2))
    assert isinstance(q, krpc.Query)
    assert q.args == krpc.PutArgs(b"tok", b"5:hello", ITEM.key, b"salt", 3, ITEM.sig, 2)


def test_immutable_put_ignores_mutable_fields() -> None:
    """A put without k is immutable: only the value and token matter."""
    q = dec(krpc.encode_query(b"t", b"put", {b"id": NID, b"token": b"x", b"v": [1, 2]}))
    assert isinstance(q, krpc.Query) and q.args == krpc.PutArgs(
        b"x", b"li1ei2ee", None, b"", None, None, None
    )


@pytest.mark.parametrize(
    "over",
    [
        {"v": None},
        {"token": None},
        {"token": 5},
        {"k": b"short"},
        {"sig": b"s" * 63},
        {"sig": None},
        {"seq": None},
        {"seq": -1},
        {"seq": 1 << 63},
        {"seq": b"1"},
        {"cas": b"1"},
        {"salt": 7},
    ],
)
def test_bad_put_arguments_are_flagged_203(over: dict[str, Any]) -> None:
    """Each malformed put argument is a flagged 203 that keeps the transaction id."""
    with pytest.raises(krpc.KrpcError) as info:
        dec(put(**over))
    assert info.value.query and info.value.code == 203 and info.value.tid == b"tt"


def test_put_with_unsorted_value_dict_is_203() -> None:
    """BEP 44: a value that is not canonical bencode (unsorted keys) is refused with 203."""
    good = krpc.encode_query(b"tt", b"put", {b"id": NID, b"token": b"x", b"v": {b"a": 1, b"b": 2}})
    bad = good.replace(b"1:ai1e1:bi2e", b"1:bi2e1:ai1e")
    assert bad != good and isinstance(dec(good), krpc.Query)
    with pytest.raises(krpc.KrpcError) as info:
        dec(bad)
    assert info.value.query and info.value.code == 203


def test_nested_value_within_depth_is_accepted() -> None:
    """A value nested a few levels deep (a BEP 46 dict inside a list) still parses."""
    v = [[{b"ih": [NID]}]]
    q = dec(krpc.encode_query(b"t", b"put", {b"id": NID, b"token": b"x", b"v": v}))
    assert isinstance(q, krpc.Query) and isinstance(q.args, krpc.PutArgs)
    assert bencode.decode(q.args.value) == v


@given(st.data())
def test_mutated_put_raises_only_krpc_error(data: st.DataObject) -> None:
    """Any byte-level mutation of a valid put either parses or raises KrpcError, nothing else."""
    raw = bytearray(put(cas=1))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        msg = dec(bytes(raw))
    except krpc.KrpcError:
        return
    assert isinstance(msg, (krpc.Query, krpc.Response, krpc.ErrorMessage))


def test_put_is_parsed_at_every_truncation() -> None:
    """Every strict prefix of a put datagram is refused as KrpcError."""
    raw = put()
    for end in range(len(raw)):
        with pytest.raises(krpc.KrpcError):
            dec(raw[:end])
