"""BEP 52 merkle trees: SHA-256 over 16 KiB leaves, one tree per file.

Shape of a file's tree: one leaf per 16 KiB block (the last block may be short and
is hashed as it is), the leaf layer padded with zero hashes to a power of two, and
each parent the SHA-256 of its two children.  A padding node higher up is therefore
the root of a subtree of zero leaves (:func:`pad_hash`).  Layers are numbered from
the leaves (0) upwards; the piece layer is ``log2(piece_length / 16 KiB)``.

* :func:`piece_hash` is what a creator and a downloader compute for one piece of
  data: the piece-layer hash of the piece, or the file's root when the whole file
  fits in one piece (such a file has no piece layer).
* :func:`root_from_piece_layer` turns a file's piece layer into its ``pieces root``.
* :class:`MerkleTree` holds the layers of one file from some layer upwards; it
  answers BEP 52 hash requests (:meth:`MerkleTree.hashes_for`).
* :func:`verify_hashes` checks a received ``hashes`` message against a root, and
  :func:`verify_block` checks one block and its uncle hashes.

Pure computation: no I/O.  ``hashlib`` is the only dependency.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

from p2pshare.config import BLOCK_SIZE

__all__ = [
    "HASH_SIZE",
    "LEAF_SIZE",
    "MerkleTree",
    "blocks_in",
    "leaf_hashes",
    "num_leaves",
    "pad_hash",
    "parent_layer",
    "proof_hash_count",
    "piece_hash",
    "piece_hash_from_leaves",
    "piece_leaf_width",
    "piece_layer_height",
    "root_from_piece_layer",
    "root_of",
    "split_hashes",
    "verify_block",
    "verify_hashes",
]

LEAF_SIZE = BLOCK_SIZE
HASH_SIZE = 32

_sha256 = hashlib.sha256


@lru_cache(maxsize=128)
def pad_hash(height: int) -> bytes:
    """Root of a subtree of ``2**height`` zero leaves (height 0: 32 zero bytes)."""
    if height < 0:
        raise ValueError("height must not be negative")
    if height == 0:
        return bytes(HASH_SIZE)
    below = pad_hash(height - 1)
    return _sha256(below + below).digest()


def blocks_in(length: int) -> int:
    """How many 16 KiB leaves ``length`` bytes need (0 for an empty file)."""
    return (length + LEAF_SIZE - 1) // LEAF_SIZE


def num_leaves(blocks: int) -> int:
    """Width of the leaf layer: the smallest power of two >= ``blocks`` (at least 1)."""
    return 1 << max(0, blocks - 1).bit_length()


def piece_layer_height(piece_length: int) -> int:
    """Layer of the piece hashes: 0 for 16 KiB pieces, 3 for 128 KiB, ..."""
    if piece_length < LEAF_SIZE or piece_length & (piece_length - 1):
        raise ValueError(f"piece length must be a power of two of at least {LEAF_SIZE}, got {piece_length}")
    return (piece_length // LEAF_SIZE).bit_length() - 1


def leaf_hashes(data: bytes | bytearray | memoryview) -> list[bytes]:
    """SHA-256 of each 16 KiB block of ``data`` (the last one may be short)."""
    view = memoryview(data)
    return [_sha256(view[i : i + LEAF_SIZE]).digest() for i in range(0, len(view), LEAF_SIZE)]


def parent_layer(layer: Sequence[bytes], pad: bytes) -> list[bytes]:
    """The layer above ``layer``; an odd last node is paired with ``pad``."""
    joined = b"".join(layer)
    if len(layer) % 2:
        joined += pad
    return [_sha256(joined[i : i + 2 * HASH_SIZE]).digest() for i in range(0, len(joined), 2 * HASH_SIZE)]


def root_of(hashes: Sequence[bytes], width: int, level: int = 0) -> bytes:
    """Root over ``hashes`` at layer ``level``, padded to ``width`` (a power of two) nodes."""
    if width < 1 or width & (width - 1):
        raise ValueError(f"width must be a power of two, got {width}")
    if len(hashes) > width:
        raise ValueError(f"{len(hashes)} hashes do not fit in a layer of width {width}")
    layer = list(hashes)
    if not layer:
        return pad_hash(level + width.bit_length() - 1)
    while width > 1:
        layer = parent_layer(layer, pad_hash(level))
        width //= 2
        level += 1
    return layer[0]


def piece_hash(data: bytes | bytearray | memoryview, piece_length: int, file_length: int) -> bytes:
    """The hash that covers one piece of a file's ``data``.

    For a file longer than one piece: the piece-layer hash (the piece's leaves
    padded with zero leaves to a whole piece).  For a file of at most one piece:
    the file's ``pieces root`` (its leaves padded only to a power of two).
    """
    return piece_hash_from_leaves(leaf_hashes(data), piece_length, file_length)


def piece_leaf_width(piece_length: int, file_length: int) -> int:
    """Leaves under one piece's hash: a whole piece's worth, or for a file of at most one
    piece its leaf layer (a power of two, possibly less than a piece)."""
    if file_length <= piece_length:
        return num_leaves(blocks_in(file_length))
    return piece_length // LEAF_SIZE


def piece_hash_from_leaves(leaves: Sequence[bytes], piece_length: int, file_length: int) -> bytes:
    """:func:`piece_hash` from the piece's leaf hashes (one per block it holds)."""
    if file_length <= piece_length:
        return root_of(leaves, num_leaves(len(leaves)))
    return root_of(leaves, piece_length // LEAF_SIZE)


def root_from_piece_layer(layer: Sequence[bytes], piece_length: int, file_length: int) -> bytes:
    """The ``pieces root`` of a file longer than one piece, from its piece layer."""
    height = piece_layer_height(piece_length)
    width = num_leaves(blocks_in(file_length)) >> height
    return root_of(layer, max(1, width), height)


def split_hashes(data: bytes) -> list[bytes]:
    """Cut a concatenation of 32-byte hashes into a list."""
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def _climb(node: bytes, index: int, uncles: Sequence[bytes]) -> bytes:
    for uncle in uncles:
        pair = node + uncle if index % 2 == 0 else uncle + node
        node = _sha256(pair).digest()
        index //= 2
    return node


def proof_hash_count(count: int, proof_layers: int) -> int:
    """Uncle hashes a ``hashes`` message carries after ``count`` base hashes (as libtorrent counts).

    The first ``log2(count) - 1`` proof layers lie inside the requested range and are
    omitted; ``proof_layers = tree height - base - 1`` always reaches the root.
    """
    return max(0, proof_layers - (count.bit_length() - 2))


def verify_hashes(
    root: bytes,
    file_length: int,
    base: int,
    index: int,
    count: int,
    hashes: Sequence[bytes],
    uncles: Sequence[bytes],
) -> bool:
    """True when ``count`` hashes of layer ``base`` from ``index``, with their uncle hashes
    (nearest first), hash up to ``root``: the check on a BEP 52 ``hashes`` message.

    The uncles must reach the root exactly (a proof that stops below it proves nothing
    on its own).
    """
    if count < 1 or count & (count - 1) or len(hashes) != count or index < 0 or index % count:
        return False
    height = num_leaves(blocks_in(file_length)).bit_length() - 1
    sub = count.bit_length() - 1
    if base < 0 or base + sub + len(uncles) != height:
        return False
    if index + count > (1 << (height - base)):
        return False
    node = root_of(hashes, count, base)
    return _climb(node, index // count, uncles) == root


def verify_block(
    root: bytes, file_length: int, block_index: int, data: bytes, uncles: Sequence[bytes]
) -> bool:
    """True when block ``block_index`` of a file hashes, with its uncle hashes, to ``root``."""
    height = num_leaves(blocks_in(file_length)).bit_length() - 1
    if not 0 <= block_index < blocks_in(file_length) or len(uncles) != height or len(data) > LEAF_SIZE:
        return False
    return _climb(_sha256(data).digest(), block_index, uncles) == root


class MerkleTree:
    """The layers of one file's tree, from ``base_height`` (0: the leaves) up to the root.

    Layers are stored padded to their full width.  Build one from leaf hashes
    (a seeder that read the file) or from a piece layer (a .torrent's ``piece layers``).
    """

    def __init__(self, layer: Sequence[bytes], file_length: int, base_height: int = 0) -> None:
        self.file_length = file_length
        self.height = num_leaves(blocks_in(file_length)).bit_length() - 1
        if not 0 <= base_height <= self.height:
            raise ValueError(f"layer {base_height} is not in a tree of height {self.height}")
        self.base_height = base_height
        width = 1 << (self.height - base_height)
        if len(layer) > width:
            raise ValueError(f"{len(layer)} hashes do not fit in a layer of width {width}")
        current = list(layer) + [pad_hash(base_height)] * (width - len(layer))
        self._layers: list[list[bytes]] = [current]
        level = base_height
        while len(current) > 1:
            current = parent_layer(current, pad_hash(level))
            level += 1
            self._layers.append(current)

    @classmethod
    def from_data(cls, data: bytes | bytearray | memoryview) -> MerkleTree:
        return cls(leaf_hashes(data), len(data))

    @property
    def root(self) -> bytes:
        return self._layers[-1][0]

    def layer(self, height: int) -> list[bytes]:
        """All nodes of layer ``height`` (padding included)."""
        if not self.base_height <= height <= self.height:
            raise ValueError(f"layer {height} is not held (held: {self.base_height}..{self.height})")
        return list(self._layers[height - self.base_height])

    def uncles(self, height: int, index: int, count: int) -> list[bytes]:
        """Sibling hashes from layer ``height`` up to just below the root, nearest first."""
        out = []
        for h in range(height, self.height):
            out.append(self._layers[h - self.base_height][index ^ 1])
            index //= 2
        return out[:count]

    def hashes_for(self, base: int, index: int, count: int, proof_layers: int) -> list[bytes] | None:
        """Answer a hash request: ``count`` hashes of layer ``base`` from ``index``, then the
        uncle hashes; ``None`` when the request does not fit this tree (send a reject)."""
        if count < 1 or count & (count - 1) or index < 0 or index % count or proof_layers < 0:
            return None
        if not self.base_height <= base < self.height:
            return None
        if index + count > (1 << (self.height - base)) or proof_layers >= self.height - base:
            return None
        sub = count.bit_length() - 1
        start = self._layers[base - self.base_height][index : index + count]
        uncles = self.uncles(base + sub, index // count, proof_hash_count(count, proof_layers))
        return start + uncles
