"""PartsStorage: only selected files are created; straddling pieces keep their rest in the parts file."""

from __future__ import annotations

import hashlib
import itertools
import random
from pathlib import Path

import pytest

from p2pshare.core.metainfo.build import build_info
from p2pshare.core.metainfo.model import Info
from p2pshare.core.selection import wanted_pieces
from p2pshare.errors import StorageError
from p2pshare.io.parts_storage import PartsStorage

PIECE = 16384
#: lengths chosen so files start and end inside pieces, with an empty file in the middle
LENGTHS = [5000, 20000, 0, 30000, 100, 9000]


def make(tmp_path: Path) -> tuple[Info, bytes]:
    rng = random.Random(7)
    payload = rng.randbytes(sum(LENGTHS))
    pieces = b"".join(hashlib.sha1(payload[i : i + PIECE]).digest() for i in range(0, len(payload), PIECE))
    files = [((f"f{i}.bin",), n) for i, n in enumerate(LENGTHS)]
    return build_info("pack", files, PIECE, pieces, single_file=False), payload


def file_bytes(payload: bytes, i: int) -> bytes:
    start = sum(LENGTHS[:i])
    return payload[start : start + LENGTHS[i]]


def fill(store: PartsStorage, info: Info, payload: bytes, selected: list[bool]) -> list[int]:
    wanted = list(wanted_pieces(info.geometry, selected))
    for p in wanted:
        off = info.geometry.piece_offset(p)
        store.write_piece(p, payload[off : off + info.geometry.piece_size(p)])
    return wanted


@pytest.mark.parametrize("selected", [list(s) for s in itertools.product([False, True], repeat=len(LENGTHS))])
def test_every_selection_across_piece_boundaries(tmp_path: Path, selected: list[bool]) -> None:
    """For every choice of files: selected files are exact, no other file appears, wanted pieces read back."""
    if all(selected) or not any(selected):
        return  # no parts storage is made for these (all: plain files; none: nothing to store)
    info, payload = make(tmp_path)
    parts = tmp_path / ".hash.parts"
    store = PartsStorage(info, tmp_path, selected, parts)
    wanted = fill(store, info, payload, selected)
    store.ensure_files()
    for i, chosen in enumerate(selected):
        path = tmp_path / "pack" / f"f{i}.bin"
        assert path.exists() == chosen, f"file {i}"
        if chosen:
            assert path.read_bytes() == file_bytes(payload, i)
    assert store.verify_pieces(info.pieces, range(info.num_pieces), 1) == wanted
    store.close()
    again = PartsStorage(info, tmp_path, selected, parts)  # a later run finds the straddling pieces whole
    assert again.verify_pieces(info.pieces, wanted, 1) == wanted
    again.close()


def test_parts_file_holds_only_straddling_rest(tmp_path: Path) -> None:
    """Choosing only the second file puts the rest of its two edge pieces, and nothing else, aside."""
    info, payload = make(tmp_path)
    selected = [False, True, False, False, False, False]  # f1: bytes 5000..25000, pieces 0 and 1
    store = PartsStorage(info, tmp_path, selected, tmp_path / "p.parts")
    assert store.slots == {0: 0, 1: 1}
    fill(store, info, payload, selected)
    store.close()
    data = (tmp_path / "p.parts").read_bytes()
    assert data[:5000] == payload[:5000]  # piece 0's unselected head, in slot 0
    assert data[PIECE + 25000 - PIECE : 2 * PIECE] == payload[25000 : 2 * PIECE]  # piece 1's tail, slot 1


def test_unselected_only_pieces_are_not_stored(tmp_path: Path) -> None:
    """A piece inside unselected files is ignored on write and cannot be read or verified."""
    info, payload = make(tmp_path)
    selected = [True, False, False, False, False, False]
    store = PartsStorage(info, tmp_path, selected, tmp_path / "p.parts")
    store.write_piece(3, payload[3 * PIECE : 4 * PIECE])
    with pytest.raises(StorageError, match="not selected"):
        store.read(3, 0, 100)
    assert store.read_piece(3) is None
    assert store.verify_pieces(info.pieces, [3], 1) == []
    assert not (tmp_path / "pack" / "f3.bin").exists()


def test_reads_inside_a_straddling_piece(tmp_path: Path) -> None:
    """Any block of a straddling piece reads back from files and parts file together."""
    info, payload = make(tmp_path)
    selected = [False, True, False, True, False, False]
    store = PartsStorage(info, tmp_path, selected, tmp_path / "p.parts")
    fill(store, info, payload, selected)
    for p in (0, 1, 3):
        base = info.geometry.piece_offset(p)
        size = info.geometry.piece_size(p)
        for begin in range(0, size, 4000):
            length = min(4000, size - begin)
            assert store.read(p, begin, length) == payload[base + begin : base + begin + length]


def test_fingerprint_shows_the_parts_file_for_unselected_files(tmp_path: Path) -> None:
    """Resume compares the parts file in place of unselected files; absent before the first write."""
    info, payload = make(tmp_path)
    selected = [True, False, False, False, False, False]
    store = PartsStorage(info, tmp_path, selected, tmp_path / "p.parts")
    assert store.file_sizes_and_mtimes() == [None] * len(LENGTHS)
    fill(store, info, payload, selected)
    prints = store.file_sizes_and_mtimes()
    assert prints[0] is not None and prints[0][0] == LENGTHS[0]
    assert prints[1] == prints[5] and prints[1] is not None


def test_selection_length_must_match(tmp_path: Path) -> None:
    """One flag per file is required."""
    info, _ = make(tmp_path)
    with pytest.raises(StorageError, match="one selection flag"):
        PartsStorage(info, tmp_path, [True], tmp_path / "p.parts")
