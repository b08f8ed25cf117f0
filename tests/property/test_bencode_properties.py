"""Hypothesis properties of strict bencode: round trips, garbage, and the info span."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pshare.core import bencode
from p2pshare.errors import BencodeError

bvalues = st.recursive(
    st.integers() | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.binary(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@given(bvalues)
def test_round_trip(value: object) -> None:
    """decode(encode(v)) == v for every bencodable value."""
    assert bencode.decode(bencode.encode(value)) == value


@given(bvalues)
def test_encoding_is_canonical(value: object) -> None:
    """Re-encoding a decoded canonical document gives the same bytes."""
    data = bencode.encode(value)
    assert bencode.encode(bencode.decode(data)) == data


@given(bvalues, st.binary(min_size=1, max_size=20))
def test_value_end_stops_at_the_value(value: object, tail: bytes) -> None:
    """value_end finds the end of a value whatever follows, and decode refuses the tail."""
    data = bencode.encode(value)
    assert bencode.value_end(data + tail, 0) == len(data)
    try:
        bencode.decode(data + tail)
    except BencodeError:
        pass
    else:
        raise AssertionError("trailing data was accepted")


@given(st.binary(max_size=200))
def test_garbage_raises_only_bencode_error(data: bytes) -> None:
    """Random bytes either decode or raise BencodeError, never another exception."""
    try:
        bencode.decode(data)
    except BencodeError:
        pass


@given(bvalues, st.data())
def test_mutated_documents_raise_only_bencode_error(value: object, data: st.DataObject) -> None:
    """Truncating or corrupting a valid document never raises anything but BencodeError."""
    doc = bytearray(bencode.encode(value))
    i = data.draw(st.integers(0, len(doc) - 1))
    mode = data.draw(st.sampled_from(["truncate", "flip", "insert"]))
    if mode == "truncate":
        del doc[i:]
    elif mode == "flip":
        doc[i] = data.draw(st.integers(0, 255))
    else:
        doc.insert(i, data.draw(st.sampled_from(b"ield0123456789:-")))
    try:
        bencode.decode(bytes(doc))
    except BencodeError:
        pass


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.binary(max_size=8).filter(lambda k: k != b"info"), bvalues, max_size=4),
    st.dictionaries(st.binary(min_size=1, max_size=8), bvalues, min_size=1, max_size=6),
    st.randoms(use_true_random=False),
)
def test_info_span_is_exact_bytes(outer: dict[bytes, object], info: dict[bytes, object], rnd: object) -> None:
    """find_info_span returns the info dict exactly as written, even with its keys shuffled."""
    items = list(info.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    raw_info = b"d" + b"".join(bencode.encode(k) + bencode.encode(v) for k, v in items) + b"e"
    top = dict(outer)
    top[b"info"] = 0  # placeholder to find the position
    parts = []
    for k in sorted(top):
        parts.append(bencode.encode(k) + (raw_info if k == b"info" else bencode.encode(top[k])))
    doc = b"d" + b"".join(parts) + b"e"
    start, end = bencode.find_info_span(doc)
    assert doc[start:end] == raw_info
    assert hashlib.sha1(doc[start:end]).digest() == hashlib.sha1(raw_info).digest()
    assert bencode.decode(doc[start:end]) == info
