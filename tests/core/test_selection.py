"""Choosing files: --select terms, BEP 53 so= in magnets, and the pieces a choice needs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pshare.core.geometry import Geometry
from p2pshare.core.magnet import parse_magnet
from p2pshare.core.metainfo.build import build_info
from p2pshare.core.metainfo.model import Info
from p2pshare.core.selection import FileSelection, parse_index_ranges, selected_length, wanted_pieces
from p2pshare.errors import TargetError, UsageError

HASH = "c" * 40


def info_of(files: list[tuple[tuple[str, ...], int]], piece_length: int = 16384) -> Info:
    total = sum(length for _, length in files)
    n = max(1, -(-total // piece_length))
    return build_info("pack", files, piece_length, hashlib.sha1(b"x").digest() * n, single_file=False)


FILES = [(("a.txt",), 100), (("movie", "b.mkv"), 40000), (("movie", "c.srt"), 10), (("d.bin",), 30000)]


def test_index_ranges_parse_whole() -> None:
    """Indices and inclusive ranges are read in order, blanks ignored."""
    assert parse_index_ranges("0, 2,4-6,,", max_terms=10) == ((0, 0), (2, 2), (4, 6))


@pytest.mark.parametrize("bad", ["x", "1-", "-1", "3-1", "1.5", "1-2-3", "9999999999", "\u0663"])
def test_bad_index_ranges_are_usage_errors(bad: str) -> None:
    """Anything but digits and ranges that run forwards is refused with the term named."""
    with pytest.raises(UsageError):
        parse_index_ranges(bad, max_terms=10)


def test_too_many_terms_are_refused() -> None:
    """A list longer than the limit is refused, not expanded."""
    with pytest.raises(UsageError, match="too many"):
        parse_index_ranges(",".join(["1"] * 11), max_terms=10)


def test_select_mixes_indices_and_globs() -> None:
    """Digits name indices, other terms are globs over paths and bare names."""
    info = info_of(FILES)
    assert FileSelection.parse(["0,3"]).resolve(info) == [True, False, False, True]
    assert FileSelection.parse(["*.mkv"]).resolve(info) == [False, True, False, False]
    assert FileSelection.parse(["movie/*"]).resolve(info) == [False, True, True, False]
    assert FileSelection.parse(["pack/d.*", "1-2"]).resolve(info) == [False, True, True, True]
    assert FileSelection().resolve(info) == [False] * 4


def test_unmatched_terms_are_named() -> None:
    """Indices past the end and globs matching nothing are reported, matching ones are not."""
    info = info_of(FILES)
    assert FileSelection.parse(["1,7-9", "*.iso", "*.srt"]).unmatched(info) == ["7-9", "*.iso"]


def test_selection_union() -> None:
    """Two selections together choose what either chooses."""
    info = info_of(FILES)
    both = FileSelection.parse(["0"]) | FileSelection.parse(["*.srt"])
    assert both.resolve(info) == [True, False, True, False]


def test_wanted_pieces_cover_straddling_pieces() -> None:
    """A file's pieces include those it shares with its neighbours; sizes add up per file."""
    info = info_of(FILES)
    g: Geometry = info.geometry  # 16 KiB pieces: a 0-0, b 0-2, c 2, d 2-4
    assert list(wanted_pieces(g, [False, False, True, False])) == [2]
    assert list(wanted_pieces(g, [True, False, False, False])) == [0]
    assert list(wanted_pieces(g, [False, False, False, True])) == [2, 3, 4]
    assert selected_length(info, [True, False, True, False]) == 110


def test_magnet_so_is_parsed() -> None:
    """BEP 53 so= gives index ranges beside the other fields."""
    m = parse_magnet(f"magnet:?xt=urn:btih:{HASH}&so=0,2,4-6&dn=x")
    assert m.select_only == ((0, 0), (2, 2), (4, 6))
    assert m.name == "x"


def test_magnet_bad_so_is_a_target_error() -> None:
    """A malformed so= makes the link invalid, with BEP 53 named."""
    with pytest.raises(TargetError, match="BEP 53"):
        parse_magnet(f"magnet:?xt=urn:btih:{HASH}&so=a-b")


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 50)), max_size=20))
def test_index_ranges_round_trip(ranges: list[tuple[int, int]]) -> None:
    """Any list of ranges written as so= text parses back to itself."""
    want = tuple((lo, lo + span) for lo, span in ranges)
    text = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in want)
    assert parse_index_ranges(text, max_terms=20) == want


@given(st.text(max_size=40))
def test_index_ranges_never_crash(text: str) -> None:
    """Arbitrary text either parses to forward ranges or is a UsageError, nothing else."""
    try:
        got = parse_index_ranges(text, max_terms=10)
    except UsageError:
        return
    assert all(0 <= lo <= hi for lo, hi in got)
