"""Storage: pieces onto file spans, safe paths, sparse files, and the in-memory backend."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from p2pshare.core.geometry import Geometry
from p2pshare.core.metainfo import Info, build_info
from p2pshare.errors import StorageError
from p2pshare.io.storage import FileStorage, MemoryStorage, safe_join

PIECE = 16384


def _info(files: list[tuple[tuple[str, ...], int]], data: bytes, name: str = "t") -> Info:
    pieces = b"".join(hashlib.sha1(data[i : i + PIECE]).digest() for i in range(0, len(data), PIECE))
    return build_info(name, files, PIECE, pieces, single_file=False)


def _payload(n: int) -> bytes:
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


def test_safe_join_refuses_dot_dot(tmp_path: Path) -> None:
    """A path component '..' is refused."""
    with pytest.raises(StorageError):
        safe_join(tmp_path, ["a", "..", "..", "etc"])


def test_safe_join_refuses_absolute_and_separators(tmp_path: Path) -> None:
    """Absolute components and components holding a separator are refused."""
    for parts in (["/etc/passwd"], ["a/b"], ["a\\b"], [""], ["."], ["x\x00y"]):
        with pytest.raises(StorageError):
            safe_join(tmp_path, parts)


def test_safe_join_refuses_symlink_out_of_the_folder(tmp_path: Path) -> None:
    """A symlink placed in the download folder that points outside it is not followed."""
    root = tmp_path / "dl"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError):
        safe_join(root, ["evil", "file.bin"])


def test_safe_join_allows_symlink_inside_and_plain_paths(tmp_path: Path) -> None:
    """Ordinary nested paths, and a symlink that stays inside the folder, resolve under the root."""
    root = tmp_path / "dl"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert safe_join(root, ["a", "b.txt"]) == root.resolve() / "a" / "b.txt"
    assert safe_join(root, ["alias", "c"]).parent.name == "alias"


def test_write_pieces_across_files_and_read_back(tmp_path: Path) -> None:
    """Whole pieces written across file boundaries read back identical, and the files hold the right bytes."""
    sizes = [10_000, 0, 20_001, 3]
    data = _payload(sum(sizes))
    files = [(("d", f"f{i}"), n) for i, n in enumerate(sizes)]
    info = _info(files, data)
    st = FileStorage(info, tmp_path)
    g = info.geometry
    for p in reversed(range(g.num_pieces)):
        st.write_piece(p, data[p * PIECE : p * PIECE + g.piece_size(p)])
    st.ensure_files()
    for p in range(g.num_pieces):
        assert st.read_piece(p) == data[p * PIECE : p * PIECE + g.piece_size(p)]
    assert st.read(1, 100, 50) == data[PIECE + 100 : PIECE + 150]
    st.close()
    pos = 0
    for i, n in enumerate(sizes):
        assert (tmp_path / "t" / "d" / f"f{i}").read_bytes() == data[pos : pos + n]
        pos += n


def test_write_piece_refuses_a_partial_piece(tmp_path: Path) -> None:
    """Storage writes whole pieces only: a block-sized write of a full piece is refused."""
    data = _payload(3 * PIECE)
    st = FileStorage(_info([(("a",), len(data))], data), tmp_path)
    with pytest.raises(StorageError):
        st.write_piece(0, data[: PIECE // 2])
    st.close()


def test_files_are_created_sparse(tmp_path: Path) -> None:
    """Writing only the last piece of a large file allocates about one piece on disk, not the whole file."""
    size = 64 * 1024 * 1024
    g = Geometry(PIECE, [size])
    last = g.num_pieces - 1
    info = build_info("t", [(("big",), size)], PIECE, bytes(20) * g.num_pieces, single_file=False)
    st = FileStorage(info, tmp_path)
    st.write_piece(last, b"\x01" * g.piece_size(last))
    st.close()
    path = tmp_path / "t" / "big"
    assert path.stat().st_size == size
    assert path.stat().st_blocks * 512 < 4 * 1024 * 1024, "the file was not created sparse"


def test_missing_file_reads_as_missing_piece(tmp_path: Path) -> None:
    """read_piece returns None (not garbage) for a piece whose file does not exist yet."""
    data = _payload(2 * PIECE)
    st = FileStorage(_info([(("a",), PIECE), (("b",), PIECE)], data), tmp_path)
    st.write_piece(0, data[:PIECE])
    assert st.read_piece(0) == data[:PIECE]
    assert st.read_piece(1) is None
    st.close()


def test_manifest_paths_cannot_escape(tmp_path: Path) -> None:
    """A storage whose manifest names a path through a symlink out of the folder refuses to open."""
    data = _payload(PIECE)
    root = tmp_path / "dl"
    (root / "t").mkdir(parents=True)
    (root / "t" / "x").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(StorageError):
        FileStorage(_info([(("x", "owned"), PIECE)], data), root)
    assert not (tmp_path / "owned").exists()


def test_storage_error_when_folder_not_writable(tmp_path: Path) -> None:
    """Writing into a read-only folder raises a StorageError that says what to do."""
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    data = _payload(PIECE)
    st = FileStorage(_info([(("sub", "a"), PIECE)], data), root)
    with pytest.raises(StorageError):
        st.write_piece(0, data)
    root.chmod(0o700)


def test_memory_storage_round_trip() -> None:
    """MemoryStorage keeps whole pieces, reads ranges back, and refuses wrong sizes and ranges."""
    g = Geometry(PIECE, [PIECE * 2 + 5])
    st = MemoryStorage(g)
    data = _payload(g.total_length)
    for p in range(g.num_pieces):
        st.write_piece(p, data[p * PIECE : p * PIECE + g.piece_size(p)])
    assert bytes(st.data) == data
    assert st.read_piece(2) == data[2 * PIECE :]
    assert st.read(1, 10, 20) == data[PIECE + 10 : PIECE + 30]
    with pytest.raises(StorageError):
        st.write_piece(0, b"short")
    with pytest.raises(StorageError):
        st.read(2, 0, PIECE)
    with pytest.raises(StorageError):
        MemoryStorage(g, b"wrong length")


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_both_storages_verify_exactly_the_pieces_that_match(tmp_path: Path, kind: str) -> None:
    """verify_pieces names the stored pieces whose SHA-1 matches, on files and in memory alike."""
    data = _payload(3 * PIECE + 100)
    info = _info([(("a.bin",), 2 * PIECE), (("b.bin",), PIECE + 100)], data)
    storage = FileStorage(info, tmp_path) if kind == "file" else MemoryStorage(info.geometry)
    g = info.geometry
    for index in (0, 1, 3):
        piece = bytearray(data[index * PIECE : index * PIECE + g.piece_size(index)])
        if index == 1:
            piece[5] ^= 0xFF  # stored, but wrong
        storage.write_piece(index, piece)
    assert storage.verify_pieces(info.pieces, range(4), 2) == [0, 3]
    storage.ensure_files()
    assert [fp is not None for fp in storage.file_sizes_and_mtimes()] == [True, True]
    assert [fp[0] for fp in storage.file_sizes_and_mtimes() if fp] == [2 * PIECE, PIECE + 100]
    storage.close()
