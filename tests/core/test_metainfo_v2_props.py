"""Property tests: v2 and hybrid manifests built from random trees parse back, and pieces align."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pshare.core import bencode, merkle
from p2pshare.core.metainfo import encode_torrent, parse_torrent
from p2pshare.errors import MetainfoError
from tests.core.v2_helpers import Files, aligned_stream, build

NAMES = st.text(alphabet="abcdefgh.-_ é", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@st.composite
def trees(draw: st.DrawFn) -> Files:
    """Distinct paths of depth 1..3 (no file is also a folder), in tree order, some empty."""
    paths: set[tuple[str, ...]] = set()
    for _ in range(draw(st.integers(1, 6))):
        path = tuple(draw(st.lists(NAMES, min_size=1, max_size=3)))
        if any(p[: len(path)] == path or path[: len(p)] == p for p in paths):
            continue
        paths.add(path)
    ordered = sorted(paths, key=lambda p: [c.encode() for c in p])
    files = []
    for i, path in enumerate(ordered):
        size = draw(st.sampled_from([0, 1, 16383, 16384, 16385, 40000, 70000]))
        files.append((path, bytes((i * 31 + k) % 253 for k in range(size))))
    if not any(data for _, data in files):
        files[0] = (files[0][0], b"x")
    return files


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=trees(), shift=st.integers(0, 2), hybrid=st.booleans())
def test_build_parse_round_trip(files: Files, shift: int, hybrid: bool) -> None:
    """Built then encoded then parsed: same hashes, files, roots and piece layers."""
    piece_length = 16384 << shift
    info, layers = build(files, piece_length, hybrid=hybrid)
    m = parse_torrent(encode_torrent(info, piece_layers=layers, comment="c"))
    assert m.info.raw == info.raw
    assert m.info.info_hash_v2 == info.info_hash_v2
    assert m.info.format == ("hybrid" if hybrid else "v2")
    real = [f for f in m.info.files if not f.pad]
    assert [(f.path, f.length) for f in real] == [(p, len(d)) for p, d in files]
    for f, (_, data) in zip(real, files, strict=True):
        assert f.pieces_root == (merkle.MerkleTree.from_data(data).root if data else None)
        assert f.length == 0 or f.offset % piece_length == 0
    assert dict(m.piece_layers) == layers


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=trees(), shift=st.integers(0, 2))
def test_hybrid_v1_pieces_align_with_v2_pieces(files: Files, shift: int) -> None:
    """Every piece of a hybrid is one span of one file: its SHA-1 and its merkle hash cover the same bytes."""
    piece_length = 16384 << shift
    info, layers = build(files, piece_length, hybrid=True)
    m = parse_torrent(encode_torrent(info, piece_layers=layers))
    stream = aligned_stream(files, piece_length, pad_last=True)
    assert m.info.total_length == len(stream)
    for i in range(m.info.num_pieces):
        chunk = stream[i * piece_length : (i + 1) * piece_length]
        assert m.info.piece_hash(i) == hashlib.sha1(chunk).digest()
        file_index, k = m.info.v2_piece(i)
        entry = m.info.files[file_index]
        data = stream[
            entry.offset + k * piece_length : entry.offset + min(entry.length, (k + 1) * piece_length)
        ]
        assert chunk[: len(data)] == data and not any(chunk[len(data) :])
        assert m.v2_piece_hash(i) == merkle.piece_hash(data, piece_length, entry.length)


_FUZZ_FILES: Files = [(("a",), b"a" * 1000), (("d", "big"), bytes(range(256)) * 300), (("d", "e"), b"")]
_FUZZ_TORRENTS = [
    encode_torrent(info, piece_layers=layers)
    for info, layers in (build(_FUZZ_FILES), build(_FUZZ_FILES, hybrid=True))
]


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(0, 1),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 10**6),
)
def test_fuzzed_v2_torrents_fail_cleanly(which: int, edits: list[tuple[int, int]], cut: int) -> None:
    """Byte-flipped or truncated v2 and hybrid .torrents parse or raise MetainfoError, nothing else."""
    data = bytearray(_FUZZ_TORRENTS[which])
    for pos, value in edits:
        data[pos % len(data)] = value
    data = data[: max(1, cut % (len(data) + 1))]
    try:
        parse_torrent(bytes(data))
    except MetainfoError:
        pass


bvalues = st.recursive(
    st.integers(-3, 70000) | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.binary(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(which=st.integers(0, 1), path=st.lists(st.integers(0, 7), min_size=1, max_size=6), value=bvalues)
def test_structurally_mutated_v2_torrents_fail_cleanly(which: int, path: list[int], value: object) -> None:
    """Replacing any value deep in a v2/hybrid .torrent with random bencode never crashes the parser."""
    top = bencode.decode(_FUZZ_TORRENTS[which])
    node = top
    for step in path[:-1]:
        if isinstance(node, dict) and node:
            child = node[sorted(node)[step % len(node)]]
        elif isinstance(node, list) and node:
            child = node[step % len(node)]
        else:
            break
        if not isinstance(child, (dict, list)):
            break
        node = child
    if isinstance(node, dict) and node:
        node[sorted(node)[path[-1] % len(node)]] = value
    elif isinstance(node, list) and node:
        node[path[-1] % len(node)] = value
    try:
        parse_torrent(bencode.encode(top))
    except MetainfoError:
        pass
