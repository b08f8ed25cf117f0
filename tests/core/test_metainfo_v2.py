"""BEP 52 manifests: every validation rule of the file tree, piece layers and hybrids."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from p2pshare.config import MetainfoLimits, V2Config
from p2pshare.core import bencode
from p2pshare.core.metainfo import Metainfo, parse_info, parse_torrent
from p2pshare.core.metainfo.v2 import check_piece_layers
from p2pshare.errors import MetainfoError
from tests.core.v2_helpers import aligned_stream, build, info_dict, torrent

PL = 16384
FILES = [
    (("a.txt",), b"A" * 1000),
    (("b", "big.bin"), bytes(range(256)) * 200),  # 51200 bytes: 4 pieces, a piece layer
    (("b", "empty"), b""),
    (("c",), b"C" * 16384),
]
V2_INFO, V2_LAYERS = build(FILES)
HY_INFO, HY_LAYERS = build(FILES, hybrid=True)
BIG_ROOT = V2_INFO.files[2].pieces_root  # files: a.txt, pad, big.bin, ...
assert BIG_ROOT is not None


def bad_info(mutate: Any, base: dict[bytes, Any] | None = None) -> bytes:
    d = copy.deepcopy(base if base is not None else info_dict(V2_INFO))
    mutate(d)
    return bencode.encode(d)


def expect(raw: bytes, match: str, limits: MetainfoLimits | None = None, cfg: V2Config | None = None) -> None:
    with pytest.raises(MetainfoError, match=match):
        parse_info(raw, limits or MetainfoLimits(), cfg or V2Config())


def test_v2_layout_and_hashes() -> None:
    """A v2 manifest lays files out in tree order with pads, and hashes its raw bytes with SHA-256."""
    info = V2_INFO
    assert info.format == "v2" and info.meta_version == 2 and not info.has_v1
    assert [(f.path, f.length, f.pad) for f in info.files] == [
        (("a.txt",), 1000, False),
        ((".pad", "15384"), 15384, True),
        (("b", "big.bin"), 51200, False),
        ((".pad", "14336"), 14336, True),
        (("b", "empty"), 0, False),
        (("c",), 16384, False),
    ]
    assert info.info_hash_v2 is not None
    assert info.info_hash_v2.value == hashlib.sha256(info.raw).digest()
    assert info.info_hash_v1 is None
    assert info.info_hash == info.info_hash_v2.truncated
    assert info.num_pieces == 1 + 4 + 1
    assert info.data_length == 1000 + 51200 + 16384
    with pytest.raises(MetainfoError, match="v2-only"):
        info.piece_hash(0)
    assert [info.v2_piece(i) for i in range(6)] == [(0, 0), (2, 0), (2, 1), (2, 2), (2, 3), (5, 0)]


def test_hybrid_hashes_both_ways() -> None:
    """A hybrid has a SHA-1 and a SHA-256 hash of the same raw bytes, and v1 piece hashes."""
    info = HY_INFO
    assert info.format == "hybrid"
    assert info.info_hash_v1 is not None and info.info_hash_v2 is not None
    assert info.info_hash_v1.value == hashlib.sha1(info.raw).digest()
    assert info.info_hash_v2.value == hashlib.sha256(info.raw).digest()
    assert info.info_hash == info.info_hash_v1
    assert [f.pieces_root for f in info.files] == [f.pieces_root for f in V2_INFO.files]
    assert len(info.piece_hash(5)) == 20


def test_newer_meta_version_is_reported_first() -> None:
    """meta version 3 says the manifest needs a newer client, before any other complaint."""
    expect(bad_info(lambda d: d.update({b"meta version": 3, b"piece length": 7})), "meta version 3")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update({b"meta version": b"2"}), "meta version must be an integer"),
        (lambda d: d.pop(b"meta version"), "no 'meta version' 2"),
        (lambda d: d.pop(b"file tree"), "no file tree"),
        (lambda d: d.update({b"piece length": 8192}), "power of two of at least 16 KiB"),
        (lambda d: d.update({b"piece length": 3 * 16384}), "power of two"),
        (lambda d: d.update({b"file tree": []}), "file tree must be a dictionary"),
        (lambda d: d.update({b"file tree": {}}), "file tree is empty"),
        (lambda d: d[b"file tree"].update({b"": {b"length": 1}}), "root of the file tree must not be a file"),
        (lambda d: d[b"file tree"][b"a.txt"].update({b"x": {}}), "entries beside"),
        (lambda d: d[b"file tree"][b"a.txt"].update({b"": 5}), "must be a dictionary"),
        (lambda d: d[b"file tree"][b"a.txt"][b""].pop(b"length"), "length of 'a.txt' is missing"),
        (lambda d: d[b"file tree"][b"a.txt"][b""].update({b"length": -1}), "must not be negative"),
        (lambda d: d[b"file tree"][b"a.txt"][b""].update({b"length": b"1"}), "must be an integer"),
        (lambda d: d[b"file tree"][b"a.txt"][b""].pop(b"pieces root"), "has no pieces root"),
        (lambda d: d[b"file tree"][b"a.txt"][b""].update({b"pieces root": b"x" * 31}), "not 32"),
        (lambda d: d[b"file tree"][b"a.txt"][b""].update({b"pieces root": 5}), "must be bytes"),
        (lambda d: d[b"file tree"][b"b"][b"empty"][b""].update({b"pieces root": b"x" * 32}), "empty file"),
        (lambda d: d[b"file tree"].update({b"d": {}}), "folder 'd' is empty"),
        (lambda d: d[b"file tree"].update({b"d": 5}), "'d' must be a dictionary"),
        (lambda d: d[b"file tree"].update({b"..": {b"": {b"length": 0}}}), "not allowed"),
        (lambda d: d[b"file tree"].update({b"x/y": {b"": {b"length": 0}}}), "contains"),
        (lambda d: d[b"file tree"][b"b"].update({b"C:": {b"": {b"length": 0}}}), "drive"),
        (lambda d: d.update({b"name": b".."}), "not allowed"),
    ],
)
def test_file_tree_rules(mutate: Any, match: str) -> None:
    """Each broken file tree rule is a MetainfoError that names what is wrong."""
    expect(bad_info(mutate), match)


def test_zero_total_length() -> None:
    """A tree of empty files holds no data and is refused."""
    expect(bad_info(lambda d: d.update({b"file tree": {b"e": {b"": {b"length": 0}}}})), "no data")


def test_depth_and_file_count_caps() -> None:
    """Trees deeper or larger than the configured caps are refused."""
    expect(V2_INFO.raw, "nested too deeply", cfg=V2Config(max_tree_depth=1))
    expect(V2_INFO.raw, "nested too deeply", limits=MetainfoLimits(max_path_components=1))
    expect(V2_INFO.raw, "more than 3 files", limits=MetainfoLimits(max_files=3))


def test_piece_count_cap() -> None:
    """A v2 manifest may not declare more pieces than configured (a bitfield must stay small)."""
    expect(V2_INFO.raw, "6 pieces exceed the limit of 5", cfg=V2Config(max_pieces=5))
    huge = bad_info(lambda d: d[b"file tree"][b"a.txt"][b""].update({b"length": 1 << 60}))
    expect(huge, "exceed the limit of 2097152")


def test_long_component_in_tree() -> None:
    """Over-long names in a file tree are refused as in v1."""
    expect(V2_INFO.raw, "longer than 3 bytes", limits=MetainfoLimits(max_component_bytes=3))


def test_single_file_v2() -> None:
    """A tree of one file named like the torrent is a single-file manifest."""
    info, _ = build([(("solo.bin",), b"z" * 40000)], name="solo.bin", single=True)
    assert info.single_file
    assert info.file_paths() == [("solo.bin",)]
    assert [f.pad for f in info.files] == [False]


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        (None, "piece layers are missing"),
        ([], "piece layers must be a dictionary"),
        ({}, "no entry for 'b/big.bin'"),
        ({BIG_ROOT: 5}, "must be a byte string"),
        ({BIG_ROOT: bytes(32 * 3)}, "96 bytes; 4 pieces need 128"),
        ({BIG_ROOT: bytes(32 * 4)}, "does not hash to its pieces root"),
    ],
)
def test_piece_layer_rules(layers: Any, match: str) -> None:
    """Missing, malformed or wrong piece layers make the .torrent invalid."""
    with pytest.raises(MetainfoError, match=match):
        parse_torrent(torrent(info_dict(V2_INFO), layers))


def test_piece_layers_count_cap() -> None:
    """More piece-layer entries than configured are refused before any hashing."""
    layers = {**V2_LAYERS, b"x" * 32: b"", b"y" * 32: b""}
    with pytest.raises(MetainfoError, match="more than 2 entries"):
        check_piece_layers(layers, V2_INFO.files, PL, V2Config(max_piece_layers=2))


def test_piece_layers_parsed_and_extra_ignored() -> None:
    """Valid layers are kept, unrelated extra entries are dropped, and every piece has its hash."""
    m = parse_torrent(torrent(info_dict(V2_INFO), {**V2_LAYERS, b"q" * 32: b"junk"}))
    assert dict(m.piece_layers) == V2_LAYERS
    assert m.info.info_hash_v2 == V2_INFO.info_hash_v2
    assert m.v2_piece_hash(0) == V2_INFO.files[0].pieces_root
    assert m.v2_piece_hash(2) == V2_LAYERS[BIG_ROOT][32:64]


def test_bare_v2_info_dict_needs_no_layers() -> None:
    """A bare info dict (as BEP 9 delivers it) parses without piece layers; they come from peers."""
    m = parse_torrent(V2_INFO.raw)
    assert m.info.info_hash_v2 == V2_INFO.info_hash_v2
    assert dict(m.piece_layers) == {}
    with pytest.raises(MetainfoError, match="fetch it from peers"):
        m.v2_piece_hash(1)


def _swap_v1_files(d: dict[bytes, Any]) -> None:
    files = d[b"files"]
    files[0], files[2] = files[2], files[0]


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d[b"files"][0].update({b"length": 999}), "does not match"),
        (lambda d: d[b"files"][2].update({b"path": [b"b", b"other.bin"]}), "does not match"),
        (_swap_v1_files, "does not match"),
        (lambda d: d[b"files"].pop(1), "piece boundary"),
        (lambda d: d[b"files"].pop(), "pieces holds 6 hashes"),
        (lambda d: d[b"files"].append({b"length": 0, b"path": [b"zz"]}), "lists 5 files but the file tree 4"),
        (lambda d: d[b"files"][1].update({b"length": 15384 + 16384}), "pieces"),
    ],
)
def test_hybrid_consistency_rules(mutate: Any, match: str) -> None:
    """The v1 half of a hybrid must list the same files, in order, on the same piece boundaries."""
    with pytest.raises(MetainfoError, match=match):
        parse_info(bad_info(mutate, info_dict(HY_INFO)))


def test_hybrid_single_vs_folder() -> None:
    """A hybrid whose v1 half is single-file but whose tree is a folder is refused."""
    info, _ = build([(("solo.bin",), b"z" * 100)], name="solo.bin", single=True, hybrid=True)
    d = info_dict(info)
    d[b"file tree"] = {b"dir": d[b"file tree"]}
    with pytest.raises(MetainfoError, match="does not match"):
        parse_info(bencode.encode(d))


def test_pad_files_may_share_a_path() -> None:
    """Several pad files called .pad/N are fine; two real files with one path are not."""
    files = [(("a",), b"1"), (("b",), b"2"), (("c",), b"3")]
    info, _ = build(files, hybrid=True)
    assert [f.path for f in info.files if f.pad] == [(".pad", "16383")] * 3
    d = info_dict(info)
    for entry in d[b"files"]:
        entry.pop(b"attr", None)
    with pytest.raises(MetainfoError, match="collides"):
        parse_info(bencode.encode(d))


def test_v1_torrent_with_pad_attr_marks_pads() -> None:
    """A plain v1 torrent's BEP 47 pad files are marked pad (and are still part of the pieces)."""
    d = info_dict(HY_INFO)
    for key in (b"file tree", b"meta version"):
        d.pop(key)
    info = parse_info(bencode.encode(d))
    assert info.format == "v1"
    assert [f.pad for f in info.files] == [f.pad for f in HY_INFO.files]
    assert info.num_pieces == HY_INFO.num_pieces


def _piece_data(m: Metainfo, index: int, stream: bytes) -> bytes:
    size = m.info.geometry.piece_size(index)
    return stream[index * PL : index * PL + size]


@pytest.mark.parametrize("hybrid", [False, True])
def test_verify_piece_checks_every_known_hash(hybrid: bool) -> None:
    """verify_piece accepts each true piece and refuses a flipped byte, a dirty pad or a wrong size."""
    info, layers = (HY_INFO, HY_LAYERS) if hybrid else (V2_INFO, V2_LAYERS)
    m = Metainfo(info, piece_layers=layers)
    stream = aligned_stream(FILES, PL, pad_last=hybrid)
    for i in range(info.num_pieces):
        data = _piece_data(m, i, stream)
        assert m.verify_piece(i, data)
        assert not m.verify_piece(i, bytes([data[0] ^ 1]) + data[1:])
        assert not m.verify_piece(i, data + b"\x00")
    dirty = bytearray(_piece_data(m, 0, stream))
    dirty[-1] = 1  # piece 0 is a.txt (1000 bytes) and then its pad
    assert not m.verify_piece(0, bytes(dirty))


def test_verify_piece_without_layers() -> None:
    """Without piece layers a v2 piece of a big file cannot be checked; a hybrid still has SHA-1."""
    stream = aligned_stream(FILES, PL, pad_last=True)
    v2 = Metainfo(V2_INFO)
    assert not v2.has_v2_piece_hash(1) and v2.has_v2_piece_hash(0)
    with pytest.raises(MetainfoError, match="fetch the piece layer"):
        v2.verify_piece(1, _piece_data(v2, 1, stream))
    hybrid = Metainfo(HY_INFO)
    assert hybrid.verify_piece(1, _piece_data(hybrid, 1, stream))
