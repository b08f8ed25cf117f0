"""Fetching piece layers by hash request: what to ask, what to accept, and the layers that result."""

from __future__ import annotations

import pytest

from p2pshare.core import merkle
from p2pshare.core.metainfo import Info, Metainfo, parse_info
from p2pshare.core.metainfo.layers import PieceLayerFetch, check_piece_leaves, piece_leaf_request
from p2pshare.core.wire.hashes import Hashes, HashReject, HashRequest, encode, parse_frame
from p2pshare.errors import MetainfoError, RemoteProtocolError
from tests.core.v2_helpers import Files, aligned_stream, build

PL = 16384
FILES: Files = [
    (("big",), bytes((i * 13) % 251 for i in range(37 * PL + 5))),  # 38 pieces: a 64-wide layer
    (("mid",), bytes((i * 7) % 253 for i in range(3 * PL))),  # 3 pieces: a 4-wide layer
    (("same",), bytes((i * 7) % 253 for i in range(3 * PL))),  # same root as mid: fetched once
    (("small",), b"s" * 100),  # one piece: no layer
]
INFO, LAYERS = build(FILES, PL)


class Seeder:
    """A peer that holds the whole .torrent and answers hash requests from merkle trees."""

    def __init__(self, info: Info, layers: dict[bytes, bytes]) -> None:
        base = merkle.piece_layer_height(info.piece_length)
        self.trees = {
            e.pieces_root: merkle.MerkleTree(merkle.split_hashes(layers[e.pieces_root]), e.length, base)
            for e in info.files
            if e.pieces_root in layers
        }

    def answer(self, req: HashRequest) -> Hashes:
        hashes = self.trees[req.pieces_root].hashes_for(
            req.base_layer, req.index, req.length, req.proof_layers
        )
        assert hashes is not None, req
        return Hashes(req.pieces_root, req.base_layer, req.index, req.length, req.proof_layers, tuple(hashes))


def fresh() -> PieceLayerFetch:
    """A fetch for the info dict alone, as BEP 9 delivers it."""
    return PieceLayerFetch(parse_info(INFO.raw), max_count=16)


def test_requests_cover_each_layer_in_aligned_runs() -> None:
    """Requests ask each distinct big file's piece layer in aligned runs, with proofs up to the root."""
    reqs = fresh().requests()
    big_root = INFO.files[0].pieces_root
    assert [(r.pieces_root == big_root, r.index, r.length) for r in reqs] == [
        (True, 0, 16),
        (True, 16, 16),
        (True, 32, 16),
        (False, 0, 4),
    ]
    assert all(r.base_layer == 0 for r in reqs)
    assert reqs[0].proof_layers == 6 - 0 - 1  # 38 leaves -> 64-leaf tree of height 6


def test_fetch_from_a_seeder_through_the_wire() -> None:
    """Answers from a seeder, sent through the codec, complete the layers exactly as the .torrent has them."""
    fetch = fresh()
    seeder = Seeder(INFO, LAYERS)
    for req in fetch.requests():
        parsed = parse_frame(encode(seeder.answer(req)))
        assert parsed is not None and isinstance(parsed[0], Hashes)
        assert fetch.receive(parsed[0])
    assert fetch.complete and fetch.requests() == []
    assert fetch.layers() == LAYERS
    m = fetch.metainfo()
    stream = aligned_stream(FILES, PL)
    for i in range(INFO.num_pieces):
        size = INFO.geometry.piece_size(i)
        assert m.verify_piece(i, stream[i * PL : i * PL + size])


def test_duplicate_answers_are_harmless() -> None:
    """The same verified answer twice fills nothing the second time."""
    fetch = fresh()
    req = fetch.requests()[0]
    msg = Seeder(INFO, LAYERS).answer(req)
    assert fetch.receive(msg)
    assert not fetch.receive(msg)
    assert req not in fetch.requests()


def test_forged_hashes_are_the_peers_fault() -> None:
    """A changed hash or uncle makes the answer fail against the root: a RemoteProtocolError."""
    req = fresh().requests()[1]
    good = Seeder(INFO, LAYERS).answer(req)
    for i in range(len(good.hashes)):
        forged = list(good.hashes)
        forged[i] = bytes(32)
        fetch = fresh()
        with pytest.raises(RemoteProtocolError, match="do not verify"):
            fetch.receive(Hashes(req.pieces_root, 0, req.index, req.length, req.proof_layers, tuple(forged)))
        assert req in fetch.requests()


@pytest.mark.parametrize(
    "msg",
    [
        Hashes(b"x" * 32, 0, 0, 16, 5, (bytes(32),) * 17),
        Hashes(INFO.files[0].pieces_root or b"", 1, 0, 16, 5, (bytes(32),) * 17),
        Hashes(INFO.files[0].pieces_root or b"", 0, 0, 8, 5, (bytes(32),) * 11),
        Hashes(INFO.files[0].pieces_root or b"", 0, 48, 16, 5, (bytes(32),) * 18),
    ],
)
def test_unrequested_hashes_are_refused(msg: Hashes) -> None:
    """Hashes for an unknown root, another layer, another run size or past the end are refused."""
    with pytest.raises(RemoteProtocolError):
        fresh().receive(msg)


def test_incomplete_layers_are_not_handed_out() -> None:
    """Until every run is verified, the layers are not available."""
    with pytest.raises(MetainfoError, match="not complete"):
        fresh().layers()


def test_a_reject_gives_the_request_back() -> None:
    """A hash reject turns back into the same request, to ask another peer."""
    req = fresh().requests()[0]
    reject = HashReject(req.pieces_root, req.base_layer, req.index, req.length, req.proof_layers)
    assert fresh().rejected(reject) == req


def test_layers_only_for_v2() -> None:
    """A v1 manifest has nothing to fetch, and run sizes must be powers of two."""
    v1 = Metainfo(INFO).info
    with pytest.raises(ValueError):
        PieceLayerFetch(v1, max_count=3)
    from p2pshare.core.metainfo import build_info

    plain = build_info("x", [(("x",), 5)], PL, b"\x00" * 20, single_file=True)
    with pytest.raises(MetainfoError):
        PieceLayerFetch(plain)


def test_default_runs_are_512() -> None:
    """By default a run is at most 512 hashes (BEP 52's SHOULD), or the layer's whole width."""
    reqs = PieceLayerFetch(INFO).requests()
    assert sorted(r.length for r in reqs) == [4, 64]


INFO64, LAYERS64 = build(FILES, 4 * PL)  # 4 leaves per piece


def leaf_seeder_answer(req: HashRequest) -> Hashes:
    """A seeder with every file's full tree answers a leaf request."""
    data = {e.pieces_root: d for e, (_, d) in zip([f for f in INFO64.files if not f.pad], FILES, strict=True)}
    tree = merkle.MerkleTree.from_data(data[req.pieces_root])
    hashes = tree.hashes_for(req.base_layer, req.index, req.length, req.proof_layers)
    assert hashes is not None
    return Hashes(req.pieces_root, req.base_layer, req.index, req.length, req.proof_layers, tuple(hashes))


def test_block_leaves_check_every_block() -> None:
    """Leaf hashes fetched for each piece verify against its piece hash and match every block."""
    m = Metainfo(INFO64, piece_layers=LAYERS64)
    stream = aligned_stream(FILES, 4 * PL)
    for i in range(INFO64.num_pieces):
        req = piece_leaf_request(m, i)
        file_index, k = INFO64.v2_piece(i)
        length = INFO64.files[file_index].length
        real = min(4 * PL, length - k * 4 * PL)
        piece = stream[i * 4 * PL : i * 4 * PL + real]
        blocks = [piece[b : b + merkle.LEAF_SIZE] for b in range(0, len(piece), merkle.LEAF_SIZE)]
        if req is None:  # "small": 100 bytes, one leaf, which is its root
            assert length <= merkle.LEAF_SIZE and merkle.leaf_hashes(piece) == [m.v2_piece_hash(i)]
            continue
        leaves = check_piece_leaves(m, i, leaf_seeder_answer(req))
        assert [merkle.leaf_hashes(b)[0] for b in blocks] == leaves


def test_forged_leaves_are_refused() -> None:
    """Leaves that do not hash to the piece hash, or answer another request, are the peer's fault."""
    m = Metainfo(INFO64, piece_layers=LAYERS64)
    req = piece_leaf_request(m, 2)
    assert req is not None
    good = leaf_seeder_answer(req)
    forged = Hashes(good.pieces_root, 0, good.index, good.length, 0, (bytes(32), *good.hashes[1:]))
    with pytest.raises(RemoteProtocolError, match="do not hash"):
        check_piece_leaves(m, 2, forged)
    with pytest.raises(RemoteProtocolError, match="do not answer"):
        check_piece_leaves(m, 3, good)
    small = INFO64.num_pieces - 1
    with pytest.raises(RemoteProtocolError, match="single leaf"):
        check_piece_leaves(m, small, good)


def test_no_leaf_requests_with_one_block_pieces() -> None:
    """With 16 KiB pieces the piece layer is the leaf layer: nothing more to ask."""
    m = Metainfo(INFO, piece_layers=LAYERS)
    assert all(piece_leaf_request(m, i) is None for i in range(INFO.num_pieces))
