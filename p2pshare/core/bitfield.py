"""A fixed-size set of piece indices, stored as BEP 3's wire bitfield.

Bit 0 is the high bit of the first byte.  Spare bits at the end must be zero on
the wire; :meth:`Bitfield.from_bytes` rejects them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["Bitfield"]

_POPCOUNT = bytes(bin(i).count("1") for i in range(256))


class Bitfield:
    """A mutable set of piece indices in ``range(length)``."""

    __slots__ = ("_bits", "_count", "length")

    def __init__(self, length: int, *, full: bool = False) -> None:
        if length < 0:
            raise ValueError("bitfield length must be >= 0")
        self.length = length
        nbytes = (length + 7) // 8
        if full and length:
            self._bits = bytearray(b"\xff" * nbytes)
            spare = nbytes * 8 - length
            if spare:
                self._bits[-1] &= (0xFF << spare) & 0xFF
            self._count = length
        else:
            self._bits = bytearray(nbytes)
            self._count = 0

    @classmethod
    def from_bytes(cls, data: bytes, length: int) -> Bitfield:
        """Parse a wire bitfield; ValueError on a wrong size or spare bits set."""
        nbytes = (length + 7) // 8
        if len(data) != nbytes:
            raise ValueError(f"bitfield of {len(data)} bytes for {length} pieces (expected {nbytes})")
        spare = nbytes * 8 - length
        if spare and data[-1] & ((1 << spare) - 1):
            raise ValueError("bitfield has spare bits set past the last piece")
        bf = cls(length)
        bf._bits[:] = data
        bf._count = sum(_POPCOUNT[b] for b in data)
        return bf

    @classmethod
    def from_indices(cls, length: int, indices: Iterable[int]) -> Bitfield:
        bf = cls(length)
        for i in indices:
            bf.add(i)
        return bf

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    def _check(self, index: int) -> None:
        if not 0 <= index < self.length:
            raise IndexError(f"piece index {index} out of range 0..{self.length - 1}")

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int) or not 0 <= index < self.length:
            return False
        return bool(self._bits[index >> 3] & (0x80 >> (index & 7)))

    def add(self, index: int) -> bool:
        """Set a bit; return True if it was not set before."""
        self._check(index)
        mask = 0x80 >> (index & 7)
        if self._bits[index >> 3] & mask:
            return False
        self._bits[index >> 3] |= mask
        self._count += 1
        return True

    def discard(self, index: int) -> bool:
        """Clear a bit; return True if it was set."""
        self._check(index)
        mask = 0x80 >> (index & 7)
        if not self._bits[index >> 3] & mask:
            return False
        self._bits[index >> 3] &= ~mask & 0xFF
        self._count -= 1
        return True

    def __len__(self) -> int:
        """Number of pieces present (not the capacity; see :attr:`length`)."""
        return self._count

    @property
    def complete(self) -> bool:
        return self._count == self.length

    def __iter__(self) -> Iterator[int]:
        bits = self._bits
        for byte_index, byte in enumerate(bits):
            if byte:
                base = byte_index * 8
                for bit in range(8):
                    if byte & (0x80 >> bit):
                        yield base + bit

    def missing(self) -> Iterator[int]:
        for i in range(self.length):
            if i not in self:
                yield i

    def copy(self) -> Bitfield:
        bf = Bitfield(self.length)
        bf._bits[:] = self._bits
        bf._count = self._count
        return bf

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bitfield) and self.length == other.length and self._bits == other._bits

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Bitfield({self._count}/{self.length})"
