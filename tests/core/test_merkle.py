"""BEP 52 merkle trees: vectors from libtorrent, a naive reference, proofs and hash requests."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.core import merkle
from p2pshare.core.merkle import (
    LEAF_SIZE,
    MerkleTree,
    pad_hash,
    piece_hash,
    proof_hash_count,
    root_from_piece_layer,
    root_of,
    verify_block,
    verify_hashes,
)


def data_of(n: int) -> bytes:
    """The deterministic payload the libtorrent vectors below were computed over."""
    return bytes((i * 7 + i // 251) % 256 for i in range(n))


#: (file length, pieces root) from libtorrent 2.1 (lt.create_torrent with v2_only over data_of(n)).
LIBTORRENT_ROOTS = [
    (1, "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    (16383, "50746bbdb527488824fc110794cab39be1e361d0ff108bb77fb3396a69acb34e"),
    (16384, "15345b8bcf83c9acd70121ebacc0aae2b90b2995b90a5143382a4f29fd125083"),
    (16385, "4f06ab5d81301a6be8740291d8491edb35843daecf491a50c4d22d92eaf9acbc"),
    (49152, "96c2e87d63edd32ff0d095deeb22c80b0b5dea5853a35c8e8ecec7ab918a8658"),
    (100000, "26ce98d1c2ad96891be47b6d01b8a5a8d5a91866997522ee3a57ae0ba846bba9"),
    (300000, "f56fd0565190e15dc8cefcc21a4a4b0bb191ae142c000a5b148bf2fd5ceb4e2c"),
]
#: (file length, piece length, first 16 hex of SHA-256 over the piece layer) from the same runs.
LIBTORRENT_LAYERS = [
    (49152, 16384, "98d4a781dbc263c8"),
    (100000, 16384, "b0405866a46070c4"),
    (100000, 65536, "26ce98d1c2ad9689"),
    (300000, 16384, "d470dd9642143f71"),
    (300000, 65536, "b32fe77df8b91871"),
]


def naive_root(data: bytes) -> bytes:
    """The spec read literally: leaf hashes, zero leaves up to a power of two, hash pairs to one."""
    leaves = [hashlib.sha256(data[i : i + LEAF_SIZE]).digest() for i in range(0, len(data), LEAF_SIZE)]
    width = 1
    while width < len(leaves):
        width *= 2
    layer = leaves + [bytes(32)] * (width - len(leaves))
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
    return layer[0]


def layer_of(data: bytes, piece_length: int) -> list[bytes]:
    return [
        piece_hash(data[i : i + piece_length], piece_length, len(data))
        for i in range(0, len(data), piece_length)
    ]


def file_root(data: bytes, piece_length: int) -> bytes:
    if len(data) <= piece_length:
        return piece_hash(data, piece_length, len(data))
    return root_from_piece_layer(layer_of(data, piece_length), piece_length, len(data))


def test_pad_hashes_are_roots_of_zero_leaves() -> None:
    """Padding above the leaves is the root of a subtree of zero leaves, not a zero hash."""
    assert pad_hash(0) == bytes(32)
    assert pad_hash(1) == hashlib.sha256(bytes(64)).digest()
    two = hashlib.sha256(bytes(64)).digest()
    assert pad_hash(2) == hashlib.sha256(two + two).digest()


@pytest.mark.parametrize(("length", "root"), LIBTORRENT_ROOTS)
@pytest.mark.parametrize("piece_length", [16384, 65536, 1 << 20])
def test_roots_match_libtorrent(length: int, root: str, piece_length: int) -> None:
    """The pieces root is the same as libtorrent's, whatever the piece length."""
    data = data_of(length)
    assert file_root(data, piece_length).hex() == root
    assert MerkleTree.from_data(data).root.hex() == root


@pytest.mark.parametrize(("length", "piece_length", "digest"), LIBTORRENT_LAYERS)
def test_piece_layers_match_libtorrent(length: int, piece_length: int, digest: str) -> None:
    """The piece layer is byte for byte libtorrent's."""
    layer = b"".join(layer_of(data_of(length), piece_length))
    assert len(layer) == 32 * -(-length // piece_length)
    assert hashlib.sha256(layer).hexdigest()[:16] == digest


@settings(max_examples=60, deadline=None)
@given(length=st.integers(1, 9 * LEAF_SIZE + 5), shift=st.integers(0, 3), seed=st.integers(0, 255))
def test_root_matches_naive_reference(length: int, shift: int, seed: int) -> None:
    """Root via piece layers equals the literal spec construction for any length and piece size."""
    data = bytes((i + seed) % 251 for i in range(length))
    assert file_root(data, LEAF_SIZE << shift) == naive_root(data)


def test_root_of_rejects_bad_widths() -> None:
    """A width that is not a power of two, or too narrow for the hashes, is refused."""
    with pytest.raises(ValueError):
        root_of([bytes(32)], 3)
    with pytest.raises(ValueError):
        root_of([bytes(32)] * 3, 2)


def test_root_of_nothing_is_a_pad() -> None:
    """An empty layer of width 4 at level 1 hashes to the pad of height 3."""
    assert root_of([], 4, 1) == pad_hash(3)


@pytest.mark.parametrize("bad", [0, 8192, 24576, 16383])
def test_piece_layer_height_needs_power_of_two(bad: int) -> None:
    """Piece lengths below 16 KiB or not a power of two have no layer."""
    with pytest.raises(ValueError):
        merkle.piece_layer_height(bad)


def test_proof_hash_count_follows_libtorrent() -> None:
    """The first log2(length) - 1 proof layers are omitted; the rest are counted."""
    assert proof_hash_count(2, 3) == 3
    assert proof_hash_count(512, 10) == 2
    assert proof_hash_count(512, 5) == 0
    assert proof_hash_count(1, 2) == 3


DATA = data_of(21 * LEAF_SIZE + 100)  # 22 leaves -> 32-leaf tree of height 5
TREE = MerkleTree.from_data(DATA)


def valid_requests() -> list[tuple[int, int, int, int]]:
    out = []
    for base in range(TREE.height):
        width = 1 << (TREE.height - base)
        count = 1
        while count <= width:
            for index in range(0, width, count):
                for proof in range(TREE.height - base):
                    out.append((base, index, count, proof))
            count *= 2
    return out


def test_every_full_proof_verifies() -> None:
    """Each answer with proof layers up to the root verifies against the root."""
    checked = 0
    for base, index, count, proof in valid_requests():
        answer = TREE.hashes_for(base, index, count, proof)
        assert answer is not None
        hashes, uncles = answer[:count], answer[count:]
        assert len(uncles) == proof_hash_count(count, proof)
        reaches_root = base + count.bit_length() - 1 + len(uncles) == TREE.height
        assert verify_hashes(TREE.root, len(DATA), base, index, count, hashes, uncles) == reaches_root
        checked += reaches_root
    assert checked > 50


def test_tampered_proofs_fail() -> None:
    """Flipping any hash of a full proof makes it fail."""
    base, index, count = 0, 8, 4
    answer = TREE.hashes_for(base, index, count, TREE.height - base - 1)
    assert answer is not None
    for i in range(len(answer)):
        bad = list(answer)
        bad[i] = bytes(32) if bad[i] != bytes(32) else b"\x01" * 32
        assert not verify_hashes(TREE.root, len(DATA), base, index, count, bad[:count], bad[count:])


@pytest.mark.parametrize(
    ("base", "index", "count", "proof"),
    [(0, 0, 3, 0), (0, 1, 2, 0), (5, 0, 1, 0), (0, 32, 1, 0), (0, 0, 64, 0), (0, 0, 2, 5), (-1, 0, 2, 0)],
)
def test_requests_outside_the_tree_are_refused(base: int, index: int, count: int, proof: int) -> None:
    """A request that does not fit the tree gets no answer (the peer is sent a reject)."""
    assert TREE.hashes_for(base, index, count, proof) is None


def test_verify_hashes_rejects_shape_errors() -> None:
    """Wrong counts, misaligned indices and proofs that overshoot the root are not accepted."""
    leaves = TREE.layer(0)
    assert not verify_hashes(TREE.root, len(DATA), 0, 0, 2, leaves[:3], [])
    assert not verify_hashes(TREE.root, len(DATA), 0, 1, 2, leaves[1:3], TREE.uncles(1, 0, 4))
    assert not verify_hashes(TREE.root, len(DATA), 0, -2, 2, leaves[:2], TREE.uncles(1, 0, 4))
    assert not verify_hashes(TREE.root, len(DATA), 0, 32, 2, leaves[:2], TREE.uncles(1, 0, 4))
    assert not verify_hashes(TREE.root, len(DATA), 0, 0, 2, leaves[:2], [*TREE.uncles(1, 0, 4), bytes(32)])


def test_every_block_verifies_with_its_uncles() -> None:
    """Each 16 KiB block verifies against the root with its uncle hashes; a changed byte does not."""
    for b in range(merkle.blocks_in(len(DATA))):
        block = DATA[b * LEAF_SIZE : (b + 1) * LEAF_SIZE]
        uncles = TREE.uncles(0, b, TREE.height)
        assert verify_block(TREE.root, len(DATA), b, block, uncles)
        assert not verify_block(TREE.root, len(DATA), b, bytes([block[0] ^ 1]) + block[1:], uncles)
    assert not verify_block(TREE.root, len(DATA), 22, b"x", TREE.uncles(0, 22, TREE.height))
    assert not verify_block(TREE.root, len(DATA), 0, DATA[:LEAF_SIZE], TREE.uncles(0, 0, 2))


def test_tree_from_piece_layer_serves_piece_hashes() -> None:
    """A tree built from a .torrent's piece layer has the same root and serves that layer."""
    piece_length = 4 * LEAF_SIZE
    layer = layer_of(DATA, piece_length)
    tree = MerkleTree(layer, len(DATA), base_height=2)
    assert tree.root == TREE.root
    assert tree.layer(2) == TREE.layer(2)
    assert tree.hashes_for(0, 0, 2, 0) is None  # leaves are not held
    answer = tree.hashes_for(2, 0, 8, 2)
    assert answer is not None and answer == layer + [pad_hash(2)] * 2
    with pytest.raises(ValueError):
        tree.layer(1)
    with pytest.raises(ValueError):
        MerkleTree(layer * 3, len(DATA), base_height=2)
