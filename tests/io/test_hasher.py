"""Piece hashing across file boundaries, on one or more workers, and verification."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from p2pshare.core.geometry import Geometry
from p2pshare.errors import StorageError
from p2pshare.io.files import collect_files
from p2pshare.io.hasher import hash_files, verify_files
from tests.helpers import make_tree, random_spec, reference_pieces

SPECS = {
    "single": {"one.bin": 100_000},
    "boundaries": {"a": 16384, "b": 1, "c": 0, "d": 16383, "e": 50_000, "f": 0},
    "tiny_files": {f"f{i:02d}": i * 37 for i in range(40)},
    "random": random_spec(7, files=10, max_size=60_000),
}


def share(tmp_path: Path, spec: dict[str, int], seed: int = 1) -> list[Path]:
    make_tree(tmp_path / "s", spec, seed)
    return [f.path for f in collect_files(tmp_path / "s").files]


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("piece_length", [16384, 32768])
def test_hash_files_matches_reference(tmp_path: Path, name: str, workers: int, piece_length: int) -> None:
    """The pieces string equals a plain join-and-SHA-1 loop, whatever the worker count."""
    paths = share(tmp_path, SPECS[name])
    g = Geometry(piece_length, [p.stat().st_size for p in paths])
    assert hash_files(paths, g, workers=workers) == reference_pieces(paths, piece_length)


def test_progress_reports_every_byte(tmp_path: Path) -> None:
    """The progress callback adds up to the total length exactly."""
    paths = share(tmp_path, SPECS["boundaries"])
    g = Geometry(16384, [p.stat().st_size for p in paths])
    seen: list[int] = []
    lock = threading.Lock()

    def progress(n: int) -> None:
        with lock:
            seen.append(n)

    hash_files(paths, g, workers=2, progress=progress)
    assert sum(seen) == g.total_length
    assert len(seen) == g.num_pieces


def test_short_file_is_an_error(tmp_path: Path) -> None:
    """A file shorter than the geometry says raises StorageError while hashing."""
    paths = share(tmp_path, {"a": 20000})
    g = Geometry(16384, [30000])
    with pytest.raises(StorageError, match="shorter"):
        hash_files(paths, g, workers=1)


def test_vanished_file_is_an_error(tmp_path: Path) -> None:
    """A file deleted before hashing raises StorageError."""
    paths = share(tmp_path, {"a": 100, "b": 100})
    g = Geometry(16384, [100, 100])
    paths[1].unlink()
    with pytest.raises(StorageError):
        hash_files(paths, g, workers=2)


@pytest.mark.parametrize("workers", [1, 2])
def test_verify_all_good(tmp_path: Path, workers: int) -> None:
    """verify_files reports every piece of untouched data as good."""
    paths = share(tmp_path, SPECS["random"])
    g = Geometry(16384, [p.stat().st_size for p in paths])
    expected = reference_pieces(paths, 16384)
    assert verify_files(paths, g, expected, workers=workers) == list(range(g.num_pieces))


@pytest.mark.parametrize("workers", [1, 2])
def test_verify_flags_corrupted_piece(tmp_path: Path, workers: int) -> None:
    """Flipping one byte makes exactly the piece that holds it fail."""
    paths = share(tmp_path, SPECS["boundaries"])
    g = Geometry(16384, [p.stat().st_size for p in paths])
    expected = reference_pieces(paths, 16384)
    target = paths[4]  # "e", 50000 bytes starting at offset 32768
    data = bytearray(target.read_bytes())
    data[20000] ^= 0xFF
    target.write_bytes(bytes(data))
    bad_piece = (sum(g.file_lengths[:4]) + 20000) // 16384
    good = verify_files(paths, g, expected, workers=workers)
    assert good == [i for i in range(g.num_pieces) if i != bad_piece]


def test_verify_missing_and_short_files(tmp_path: Path) -> None:
    """A missing file fails its pieces and a truncated file fails the pieces it no longer fills."""
    spec = {"a": 40000, "b": 40000, "c": 40000}
    paths = share(tmp_path, spec)
    g = Geometry(16384, [40000] * 3)
    expected = reference_pieces(paths, 16384)
    paths[1].unlink()
    with open(paths[2], "r+b") as f:
        f.truncate(39000)
    good = verify_files(paths, g, expected, workers=2)
    bad = set(g.pieces_for_file(1)) | {g.num_pieces - 1}
    assert good == [i for i in range(g.num_pieces) if i not in bad]


def test_verify_subset(tmp_path: Path) -> None:
    """verify_files checks only the pieces it is given."""
    paths = share(tmp_path, {"a": 100_000})
    g = Geometry(16384, [100_000])
    expected = reference_pieces(paths, 16384)
    wrong = bytearray(expected)
    wrong[20:40] = b"\x00" * 20
    assert verify_files(paths, g, bytes(wrong), [0, 1, 5]) == [0, 5]
