"""Manifest parsing and validation: every rule, the info hash, building and writing."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest

from p2pshare.config import MetainfoLimits
from p2pshare.core import bencode
from p2pshare.core.metainfo import (
    build_info,
    choose_piece_length,
    encode_torrent,
    parse_info,
    parse_torrent,
    validate_component,
)
from p2pshare.errors import MetainfoError

PL = 16384


def hashes(n: int) -> bytes:
    """``n`` distinct fake piece hashes."""
    return b"".join(hashlib.sha1(str(i).encode()).digest() for i in range(n))


def single(**overrides: Any) -> dict[bytes, Any]:
    """A valid single-file info dict of 40000 bytes (3 pieces), with overrides."""
    d: dict[bytes, Any] = {b"name": b"file.bin", b"piece length": PL, b"pieces": hashes(3), b"length": 40000}
    d.update({k.encode() if isinstance(k, str) else k: v for k, v in overrides.items()})
    return d


def multi(files: list[tuple[list[bytes], int]] | None = None, **overrides: Any) -> dict[bytes, Any]:
    """A valid multi-file info dict (with pieces to match the files), with overrides."""
    if files is None:
        files = [([b"a.txt"], 10000), ([b"sub", b"b.bin"], 30000), ([b"sub", b"empty"], 0)]
    total = sum(length for _, length in files)
    d: dict[bytes, Any] = {
        b"name": b"share",
        b"piece length": PL,
        b"pieces": hashes((total + PL - 1) // PL),
        b"files": [{b"length": length, b"path": path} for path, length in files],
    }
    d.update({k.encode(): v for k, v in overrides.items()})
    return d


def parse(d: dict[bytes, Any], limits: MetainfoLimits | None = None) -> Any:
    return parse_info(bencode.encode(d), limits or MetainfoLimits())


def test_parse_single_file() -> None:
    """A single-file info dict gives one file named after the torrent."""
    info = parse(single())
    assert info.name == "file.bin"
    assert info.single_file
    assert info.total_length == 40000
    assert info.num_pieces == 3
    assert [(f.path, f.length, f.offset) for f in info.files] == [(("file.bin",), 40000, 0)]
    assert info.file_paths() == [("file.bin",)]
    assert info.piece_hash(2) == hashes(3)[40:60]


def test_parse_multi_file() -> None:
    """A multi-file dict keeps order, path components and running offsets."""
    info = parse(multi())
    assert not info.single_file
    assert [(f.path, f.length, f.offset) for f in info.files] == [
        (("a.txt",), 10000, 0),
        (("sub", "b.bin"), 30000, 10000),
        (("sub", "empty"), 0, 40000),
    ]
    assert info.file_paths()[1] == ("share", "sub", "b.bin")
    assert info.files[1].display_path == "sub/b.bin"


def test_info_hash_is_sha1_of_raw_bytes() -> None:
    """The info hash is the SHA-1 of the info dict's bytes."""
    raw = bencode.encode(single())
    assert parse_info(raw).info_hash.value == hashlib.sha1(raw).digest()


def test_private_flag() -> None:
    """private=1 marks the torrent private; absent means public."""
    assert parse(single(private=1)).private
    assert not parse(single()).private


@pytest.mark.parametrize("extra", [1, 19, 21, 39])
def test_pieces_length_not_multiple_of_20(extra: int) -> None:
    """A pieces string whose length is not a multiple of 20 is rejected."""
    with pytest.raises(MetainfoError, match="multiple of 20"):
        parse(single(pieces=hashes(3) + b"x" * extra))


@pytest.mark.parametrize("count", [0, 2, 4, 10])
def test_pieces_count_must_match_total_length(count: int) -> None:
    """Too few or too many hashes for the total length is rejected."""
    with pytest.raises(MetainfoError, match="hashes"):
        parse(single(pieces=hashes(count)))


def test_pieces_count_checked_in_multi_file_mode() -> None:
    """In multi-file mode the total of all files decides the piece count."""
    with pytest.raises(MetainfoError, match="hashes"):
        parse(multi(pieces=hashes(2)))


@pytest.mark.parametrize("piece_length", [0, -1, -16384])
def test_piece_length_must_be_positive(piece_length: int) -> None:
    """A zero or negative piece length is rejected."""
    with pytest.raises(MetainfoError, match="positive"):
        parse(single(**{"piece length": piece_length}))


def test_piece_length_over_parse_cap() -> None:
    """A piece length above the parse cap is rejected."""
    limits = MetainfoLimits()
    with pytest.raises(MetainfoError, match="exceeds"):
        parse(single(**{"piece length": limits.max_parse_piece_length * 2, "pieces": hashes(1)}))


@pytest.mark.parametrize(("key", "value"), [("piece length", b"16384"), ("length", b"1"), ("pieces", 5)])
def test_field_types_checked(key: str, value: object) -> None:
    """A field of the wrong bencode type is rejected."""
    with pytest.raises(MetainfoError, match="must be"):
        parse(single(**{key: value}))


@pytest.mark.parametrize("key", ["name", "piece length", "pieces"])
def test_required_fields(key: str) -> None:
    """name, piece length and pieces are required."""
    d = single()
    del d[key.encode()]
    with pytest.raises(MetainfoError, match="missing"):
        parse(d)


def test_negative_single_length() -> None:
    """A negative length in single-file mode is rejected."""
    with pytest.raises(MetainfoError, match="negative"):
        parse(single(length=-1, pieces=b""))


def test_negative_file_length() -> None:
    """A negative file length in multi-file mode is rejected."""
    d = multi()
    d[b"files"][0][b"length"] = -5
    with pytest.raises(MetainfoError, match="negative"):
        parse(d)


def test_zero_total_length_rejected() -> None:
    """A torrent whose files are all empty holds no data and is rejected."""
    with pytest.raises(MetainfoError, match="no data"):
        parse(multi([([b"a"], 0), ([b"b"], 0)]))


def test_both_length_and_files() -> None:
    """Having both 'length' and 'files' is ambiguous and rejected."""
    with pytest.raises(MetainfoError, match="exactly one"):
        parse(multi(length=40000))


def test_neither_length_nor_files() -> None:
    """Having neither 'length' nor 'files' is rejected."""
    d = single()
    del d[b"length"]
    with pytest.raises(MetainfoError, match="exactly one"):
        parse(d)


BAD_COMPONENTS = [b"", b".", b"..", b"a/b", b"/etc", b"a\\b", b"\\x", b"a\x00b", b"C:", b"c:\\x", b"Z:evil"]


@pytest.mark.parametrize("component", BAD_COMPONENTS)
def test_bad_path_component_in_files(component: bytes) -> None:
    """Empty, dot, dot-dot, separators, NUL and drive letters are rejected in file paths."""
    with pytest.raises(MetainfoError):
        parse(multi([([b"ok", component], 100)]))


@pytest.mark.parametrize("component", BAD_COMPONENTS)
def test_bad_torrent_name(component: bytes) -> None:
    """The torrent name obeys the same rules as a path component."""
    with pytest.raises(MetainfoError):
        parse(single(name=component))


@pytest.mark.parametrize("component", [b"a", b"file.txt", b"...", b"..a", b"caf\xc3\xa9", b"x" * 255, b" "])
def test_good_path_components(component: bytes) -> None:
    """Ordinary names, including dots inside and UTF-8, are accepted."""
    assert validate_component(component) == component.decode()


def test_component_too_long() -> None:
    """A component longer than the limit is rejected."""
    with pytest.raises(MetainfoError, match="longer"):
        validate_component(b"x" * 256)


def test_empty_path_list() -> None:
    """A file entry with an empty path list is rejected."""
    with pytest.raises(MetainfoError, match="empty"):
        parse(multi([([], 100)]))


def test_too_many_path_components() -> None:
    """A path deeper than the limit is rejected."""
    limits = replace(MetainfoLimits(), max_path_components=3)
    parse(multi([([b"a", b"b", b"c"], 100)]), limits)
    with pytest.raises(MetainfoError, match="parts"):
        parse(multi([([b"a", b"b", b"c", b"d"], 100)]), limits)


def test_too_many_files() -> None:
    """More files than the limit is rejected."""
    limits = replace(MetainfoLimits(), max_files=2)
    with pytest.raises(MetainfoError, match="limit"):
        parse(multi(), limits)


def test_empty_files_list() -> None:
    """An empty files list is rejected."""
    with pytest.raises(MetainfoError, match="empty"):
        parse(multi(files=[], pieces=b""))


def test_file_entry_not_a_dict() -> None:
    """A files entry that is not a dictionary is rejected."""
    d = multi()
    d[b"files"][1] = b"oops"
    with pytest.raises(MetainfoError, match="dictionary"):
        parse(d)


def test_duplicate_paths() -> None:
    """Two files with the same path are rejected."""
    with pytest.raises(MetainfoError, match="collides"):
        parse(multi([([b"a"], 100), ([b"a"], 200)]))


@pytest.mark.parametrize(
    "files",
    [
        [([b"a"], 100), ([b"a", b"b"], 200)],  # file first, then used as a folder
        [([b"a", b"b"], 200), ([b"a"], 100)],  # folder first, then a file of that name
        [([b"x", b"a"], 1), ([b"x", b"a", b"b", b"c"], 2)],
    ],
)
def test_file_used_as_folder(files: list[tuple[list[bytes], int]]) -> None:
    """A path that is both a file and a folder is rejected, in either order."""
    with pytest.raises(MetainfoError):
        parse(multi(files))


def test_name_utf8_preferred() -> None:
    """name.utf-8 wins over name when both are present."""
    info = parse(single(**{"name": b"caf\xe9", "name.utf-8": "café".encode()}))
    assert info.name == "café"


def test_path_utf8_preferred() -> None:
    """path.utf-8 wins over path in a file entry."""
    d = multi([([b"old"], 100)])
    d[b"files"][0][b"path.utf-8"] = ["new ☕".encode()]
    assert parse(d).files[0].path == ("new ☕",)


def test_bad_name_utf8_still_validated() -> None:
    """A hostile name.utf-8 is rejected even when the plain name is fine."""
    with pytest.raises(MetainfoError):
        parse(single(**{"name.utf-8": b".."}))


def test_metadata_over_cap_rejected() -> None:
    """An info dict larger than the metadata cap is rejected before decoding."""
    raw = bencode.encode(single())
    limits = replace(MetainfoLimits(), max_metadata_size=len(raw) - 1)
    with pytest.raises(MetainfoError, match="metadata cap"):
        parse_info(raw, limits)
    assert parse_info(raw, replace(limits, max_metadata_size=len(raw))).name == "file.bin"


def test_torrent_file_over_cap_rejected() -> None:
    """A whole .torrent larger than its cap is rejected."""
    data = b"d4:info" + bencode.encode(single()) + b"e"
    with pytest.raises(MetainfoError, match="cap"):
        parse_torrent(data, replace(MetainfoLimits(), max_torrent_file=len(data) - 1))


@pytest.mark.parametrize("data", [b"", b"garbage", b"i1e", b"d1:ai1ee", b"d4:infoi1ee", b"d4:info"])
def test_invalid_torrents(data: bytes) -> None:
    """Not bencode, not a dict, no info, or an info that is not a dict: MetainfoError."""
    with pytest.raises(MetainfoError):
        parse_torrent(data)


def test_info_not_a_dict() -> None:
    """parse_info refuses a bencoded value that is not a dictionary."""
    with pytest.raises(MetainfoError, match="dictionary"):
        parse_info(b"li1ee")


def test_parse_torrent_hashes_received_bytes() -> None:
    """With unsorted keys in info, the info hash is of the received bytes, not a re-encoding."""
    d = single()
    sorted_raw = bencode.encode(d)
    # Same dict, keys deliberately out of order.
    unsorted_raw = b"d4:name8:file.bin6:lengthi40000e12:piece lengthi16384e6:pieces60:" + hashes(3) + b"e"
    assert bencode.decode(unsorted_raw) == d
    meta = parse_torrent(b"d4:info" + unsorted_raw + b"e")
    assert meta.info.raw == unsorted_raw
    assert meta.info_hash.value == hashlib.sha1(unsorted_raw).digest()
    assert meta.info_hash.value != hashlib.sha1(sorted_raw).digest()


def test_parse_bare_info_dict() -> None:
    """parse_torrent accepts a bare info dict (as fetched by ut_metadata)."""
    raw = bencode.encode(multi())
    meta = parse_torrent(raw)
    assert meta.info.raw == raw
    assert meta.info.name == "share"


def test_parse_torrent_optional_fields() -> None:
    """announce, comment, created by and creation date are read when present."""
    top = {
        b"announce": b"http://127.0.0.1/announce",
        b"comment": "hé".encode(),
        b"created by": b"someone/1.0",
        b"creation date": 1700000000,
        b"info": single(),
    }
    meta = parse_torrent(bencode.encode(top))
    assert meta.announce == "http://127.0.0.1/announce"
    assert meta.comment == "hé"
    assert meta.created_by == "someone/1.0"
    assert meta.creation_date == 1700000000


def test_encode_torrent_round_trip() -> None:
    """encode_torrent keeps the info bytes (and hash) and the optional fields."""
    info = parse(multi())
    data = encode_torrent(info, comment="a comment", created_by="p2pshare/test", creation_date=1234)
    meta = parse_torrent(data)
    assert meta.info.raw == info.raw
    assert meta.info_hash == info.info_hash
    assert (meta.comment, meta.created_by, meta.creation_date) == ("a comment", "p2pshare/test", 1234)
    assert bencode.decode(data)[b"info"] == bencode.decode(info.raw)


def test_encode_torrent_minimal() -> None:
    """Without optional fields the .torrent is just the info dict."""
    info = parse(single())
    assert encode_torrent(info) == b"d4:info" + info.raw + b"e"


def test_build_info_multi() -> None:
    """build_info assembles a valid multi-file dict in the order given."""
    files = [(("a",), 5), (("d", "b"), 0), (("d", "c"), 20000)]
    info = build_info("share", files, PL, hashes(2), single_file=False)
    assert [f.path for f in info.files] == [("a",), ("d", "b"), ("d", "c")]
    assert info.total_length == 20005
    assert parse_info(info.raw) == info


def test_build_info_single() -> None:
    """build_info makes a single-file dict with 'length', and refuses two files for it."""
    info = build_info("x.bin", [(("x.bin",), 100)], PL, hashes(1), single_file=True)
    assert info.single_file and b"length" in bencode.decode(info.raw)
    with pytest.raises(MetainfoError):
        build_info("x.bin", [(("a",), 1), (("b",), 1)], PL, hashes(1), single_file=True)


def test_build_info_validates() -> None:
    """build_info refuses what parsing refuses (here a '..' component)."""
    with pytest.raises(MetainfoError):
        build_info("share", [(("..", "etc"), 10)], PL, hashes(1), single_file=False)


def test_build_info_private() -> None:
    """build_info can set the private flag."""
    assert build_info("x", [(("x",), 1)], PL, hashes(1), single_file=True, private=True).private


@pytest.mark.parametrize(
    "total",
    [1, 1000, 16 * 1024 * 1000, 16 * 1024 * 2000, 16 * 1024 * 2001, 10**9, 2 * 1024**3, 3 * 10**10, 10**13],
)
def test_choose_piece_length(total: int) -> None:
    """Automatic piece length: a power of two in 16 KiB..16 MiB giving 1000..2000 pieces when possible."""
    limits = MetainfoLimits()
    length = choose_piece_length(total, limits)
    assert length & (length - 1) == 0
    assert limits.min_piece_length <= length <= limits.max_piece_length
    count = (total + length - 1) // length
    if length == limits.min_piece_length:
        assert count <= limits.target_pieces_high
    elif length == limits.max_piece_length:
        assert count > limits.target_pieces_high // 2
    else:
        assert limits.target_pieces_low <= count <= limits.target_pieces_high


def test_choose_piece_length_examples() -> None:
    """Small payloads get 16 KiB, 2 GiB gets 2 MiB (1024 pieces), huge ones are capped at 16 MiB."""
    assert choose_piece_length(1) == 16 * 1024
    assert choose_piece_length(2 * 1024**3) == 2 * 1024**2
    assert choose_piece_length(10**14) == 16 * 1024**2
