"""The BEP 3 bitfield: bit order, spare bits and sizes."""

from __future__ import annotations

import pytest

from p2pshare.core.bitfield import Bitfield


def test_bit_order_is_high_bit_first() -> None:
    """Piece 0 is the high bit of the first byte."""
    bf = Bitfield.from_indices(10, [0, 7, 9])
    assert bf.to_bytes() == bytes([0b10000001, 0b01000000])


def test_round_trip_bytes() -> None:
    """from_bytes(to_bytes()) gives an equal bitfield with the same count."""
    bf = Bitfield.from_indices(13, [1, 2, 3, 12])
    again = Bitfield.from_bytes(bf.to_bytes(), 13)
    assert again == bf
    assert len(again) == 4
    assert list(again) == [1, 2, 3, 12]


@pytest.mark.parametrize(
    ("data", "length"), [(b"\x00\x01", 10), (b"\xff\xff", 15), (b"\x01", 7), (b"\xc0", 1)]
)
def test_spare_bits_rejected(data: bytes, length: int) -> None:
    """Bits set past the last piece are a ValueError."""
    with pytest.raises(ValueError, match="spare"):
        Bitfield.from_bytes(data, length)


@pytest.mark.parametrize(("data", "length"), [(b"", 1), (b"\x00", 9), (b"\x00\x00", 8), (b"\x00", 0)])
def test_wrong_size_rejected(data: bytes, length: int) -> None:
    """A bitfield whose byte count does not match the piece count is a ValueError."""
    with pytest.raises(ValueError, match="expected"):
        Bitfield.from_bytes(data, length)


def test_full_bitfield_has_clean_spare_bits() -> None:
    """A full bitfield sets every piece and leaves the spare bits zero."""
    bf = Bitfield(11, full=True)
    assert bf.complete
    assert len(bf) == 11
    assert bf.to_bytes() == b"\xff\xe0"
    assert list(bf.missing()) == []


def test_add_discard_contains() -> None:
    """add/discard report whether anything changed and keep the count right."""
    bf = Bitfield(20)
    assert bf.add(5) is True
    assert bf.add(5) is False
    assert 5 in bf and 6 not in bf
    assert len(bf) == 1
    assert bf.discard(5) is True
    assert bf.discard(5) is False
    assert len(bf) == 0
    assert list(bf.missing()) == list(range(20))


def test_out_of_range_indices() -> None:
    """add/discard raise IndexError out of range; membership is simply False."""
    bf = Bitfield(8)
    for bad in (-1, 8):
        with pytest.raises(IndexError):
            bf.add(bad)
        with pytest.raises(IndexError):
            bf.discard(bad)
        assert bad not in bf
    assert "x" not in bf


def test_negative_length_rejected() -> None:
    """A negative length is a ValueError."""
    with pytest.raises(ValueError):
        Bitfield(-1)


def test_copy_is_independent() -> None:
    """A copy does not share state with the original."""
    bf = Bitfield.from_indices(9, [0])
    cp = bf.copy()
    cp.add(8)
    assert 8 not in bf and cp != bf


def test_empty_bitfield() -> None:
    """A zero-length bitfield is empty, complete and zero bytes long."""
    bf = Bitfield(0, full=True)
    assert bf.to_bytes() == b""
    assert bf.complete and len(bf) == 0
    assert Bitfield.from_bytes(b"", 0) == bf
