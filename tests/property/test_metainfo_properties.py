"""Hypothesis properties of manifests: built dicts parse back, hostile mutations are refused cleanly."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from p2pshare.config import MetainfoLimits
from p2pshare.core import bencode
from p2pshare.core.metainfo import build_info, choose_piece_length, parse_info, parse_torrent
from p2pshare.errors import MetainfoError

component = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="/\\\x00:"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))


@st.composite
def file_lists(draw: st.DrawFn) -> list[tuple[tuple[str, ...], int]]:
    """Distinct file paths (no file is also a folder) with lengths, sorted like collect_files."""
    n = draw(st.integers(1, 6))
    paths: list[tuple[str, ...]] = []
    for i in range(n):
        folders = draw(st.lists(component, max_size=2))
        # A file name that cannot be a folder name drawn above: prefix it with its index.
        paths.append((*(f"d{f}" for f in folders), f"f{i}{draw(component)}"))
    lengths = draw(st.lists(st.integers(0, 70_000), min_size=n, max_size=n))
    if sum(lengths) == 0:
        lengths[0] = 1
    return sorted(zip(paths, lengths, strict=True))


@given(file_lists(), st.sampled_from([16384, 32768, 65536]))
def test_built_info_parses_back(files: list[tuple[tuple[str, ...], int]], piece_length: int) -> None:
    """Whatever build_info makes, parse_info accepts with the same files and offsets."""
    total = sum(length for _, length in files)
    pieces = b"\x00" * 20 * ((total + piece_length - 1) // piece_length)
    info = build_info("share", files, piece_length, pieces, single_file=False)
    again = parse_info(info.raw)
    assert [(f.path, f.length) for f in again.files] == files
    offsets = [f.offset for f in again.files]
    assert offsets == [sum(length for _, length in files[:i]) for i in range(len(files))]
    assert again.info_hash.value == hashlib.sha1(info.raw).digest()
    assert again.geometry.num_pieces == again.num_pieces


@given(st.binary(max_size=300))
def test_garbage_torrents_raise_only_metainfo_error(data: bytes) -> None:
    """Random bytes never escape parse_torrent as anything but MetainfoError."""
    try:
        parse_torrent(data)
    except MetainfoError:
        pass


@given(file_lists(), st.data())
def test_mutated_info_raises_only_metainfo_error(
    files: list[tuple[tuple[str, ...], int]], data: st.DataObject
) -> None:
    """Corrupting a valid info dict byte by byte gives a valid Info or a MetainfoError."""
    total = sum(length for _, length in files)
    info = build_info("share", files, 16384, b"\x00" * 20 * ((total + 16383) // 16384), single_file=False)
    raw = bytearray(info.raw)
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        parsed = parse_info(bytes(raw))
    except MetainfoError:
        return
    assert parsed.num_pieces * 20 == len(parsed.pieces)
    for f in parsed.files:
        assert all(c not in ("", ".", "..") and "/" not in c and "\x00" not in c for c in f.path)


@given(st.integers(1, 2**50))
def test_choose_piece_length_property(total: int) -> None:
    """The chosen piece length is a power of two in range and gives at most 2000 pieces unless capped."""
    limits = MetainfoLimits()
    length = choose_piece_length(total, limits)
    assert length & (length - 1) == 0
    assert limits.min_piece_length <= length <= limits.max_piece_length
    count = -(-total // length)
    if length < limits.max_piece_length:
        assert count <= limits.target_pieces_high
    if length > limits.min_piece_length:
        assert count >= limits.target_pieces_low


@given(st.binary(min_size=1, max_size=64))
def test_parse_info_accepts_received_bytes_verbatim(name: bytes) -> None:
    """Info bytes with unsorted keys keep their own hash."""
    raw = (
        b"d4:name"
        + str(len(name)).encode()
        + b":"
        + name
        + b"6:lengthi1e12:piece lengthi16384e6:pieces20:"
        + b"\x07" * 20
        + b"e"
    )
    try:
        info = parse_info(raw)
    except MetainfoError:
        return  # the name itself may be refused (e.g. '..' or a '/')
    assert info.info_hash.value == hashlib.sha1(raw).digest()
    assert info.raw == raw
    assert bencode.encode(bencode.decode(raw)) != raw
