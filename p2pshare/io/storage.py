"""Where pieces live: a narrow Storage protocol with a file and an in-memory backend.

The engine only ever writes whole *verified* pieces (never 16 KiB blocks) and reads
ranges back for seeding.  :class:`FileStorage` maps a piece onto file spans across
a multi-file torrent, creates files sparsely as data arrives, and resolves every
path inside the download folder: nothing a manifest says can make it write
elsewhere (``..``, absolute paths and symlinks are refused).

All methods are blocking; the engine calls them through :func:`asyncio.to_thread`
(or a dedicated executor) so the event loop never waits on the disk.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from p2pshare.core.geometry import Geometry
from p2pshare.core.metainfo import Info
from p2pshare.errors import DiskFullError, NotWritableError, StorageError
from p2pshare.io.hasher import verify_files

__all__ = ["FileStorage", "MemoryStorage", "Storage", "safe_join"]


#: Each file's (size, mtime_ns), None when missing: what the resume file compares.
Fingerprint = list[tuple[int, int] | None]


class Storage(Protocol):
    """What the engine needs from a place to keep pieces (all calls block: run them off the loop)."""

    geometry: Geometry

    def write_piece(self, index: int, data: bytes | bytearray | memoryview) -> None: ...

    def read(self, index: int, begin: int, length: int) -> bytes: ...

    def read_piece(self, index: int) -> bytes | None:
        """The whole piece, or None if any file it spans is missing or short."""
        ...

    def verify_pieces(self, piece_hashes: bytes, pieces: Sequence[int], workers: int) -> list[int]:
        """The pieces among ``pieces`` whose stored data matches its SHA-1 in ``piece_hashes``."""
        ...

    def file_sizes_and_mtimes(self) -> Fingerprint:
        """Each file's (size, mtime_ns), None when missing: the resume file's fingerprint."""
        ...

    def ensure_files(self) -> None:
        """Create every file at its final size, empty ones included (the download is complete)."""
        ...

    def close(self) -> None: ...


def safe_join(root: Path, parts: Sequence[str]) -> Path:
    """Join validated path components under ``root`` and prove the result stays inside.

    Components were checked by the manifest parser already; this is the second wall:
    it rejects separators, ``..``, absolute parts, and any existing symlink on the way
    that points outside ``root``.
    """
    root = root.resolve()
    for part in parts:
        if (
            not part
            or part in (".", "..")
            or "/" in part
            or "\\" in part
            or "\x00" in part
            or os.path.isabs(part)
        ):
            raise StorageError(f"refusing unsafe path component {part!r}")
    path = root.joinpath(*parts)
    # Walk the existing prefix: a symlink placed in the folder must not lead out.
    probe = root
    for part in parts:
        probe = probe / part
        if probe.is_symlink():
            target = probe.resolve()
            if target != root and root not in target.parents:
                raise StorageError(f"refusing to follow symlink {probe} out of {root}")
    return path


def _os_error(exc: OSError, path: Path) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return DiskFullError(f"no space left on the device writing {path}; free some space and run again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return NotWritableError(f"cannot write {path}: {exc.strerror}; choose another folder with -o")
    return StorageError(f"{path}: {exc.strerror or exc}")


class FileStorage:
    """Pieces in the real files of a torrent, under ``root``.

    ``paths`` overrides where each file lives (used when seeding a folder in place).
    """

    def __init__(
        self,
        info: Info,
        root: Path,
        *,
        paths: Sequence[Path] | None = None,
        max_open_files: int = 64,
        writable: bool = True,
    ) -> None:
        self.info = info
        self.geometry = info.geometry
        self.root = Path(root)
        #: BEP 47 pad files (zeros that align v2 and hybrid pieces): never created, read as zeros
        self.pads = frozenset(i for i, f in enumerate(info.files) if f.pad)
        if paths is None:
            paths = [safe_join(self.root, parts) for parts in info.file_paths()]
        elif self.pads and len(paths) == len(info.files) - len(self.pads):
            real = iter(paths)  # one path per real file: pads get a placeholder that is never opened
            paths = [self.root / ".pad" if i in self.pads else next(real) for i in range(len(info.files))]
        if len(paths) != len(info.files):
            raise StorageError("one path per file of the torrent is needed")
        self.paths = list(paths)
        self.writable = writable
        self._max_open = max_open_files
        self._fds: OrderedDict[tuple[int, bool], int] = OrderedDict()
        self._lock = threading.Lock()

    # -- file handles ---------------------------------------------------------------

    def _fd(self, file_index: int, write: bool) -> int | None:
        key = (file_index, write)
        with self._lock:
            fd = self._fds.get(key)
            if fd is not None:
                self._fds.move_to_end(key)
                return fd
        path = self.paths[file_index]
        try:
            if write:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            else:
                fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            if write:
                raise _os_error(OSError(errno.ENOENT, "cannot create file"), path) from None
            return None
        except OSError as exc:
            raise _os_error(exc, path) from None
        with self._lock:
            self._fds[key] = fd
            while len(self._fds) > self._max_open:
                _, old = self._fds.popitem(last=False)
                os.close(old)
        return fd

    def ensure_files(self) -> None:
        """Create every file at its final size (sparse), including empty files."""
        for i, entry in enumerate(self.info.files):
            if i in self.pads:
                continue
            path = self.paths[i]
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    with open(path, "wb") as f:
                        if entry.length:
                            f.truncate(entry.length)
                elif path.stat().st_size > entry.length:
                    os.truncate(path, entry.length)
            except OSError as exc:
                raise _os_error(exc, path) from None

    # -- Storage --------------------------------------------------------------------

    def write_piece(self, index: int, data: bytes | bytearray | memoryview) -> None:
        if not self.writable:
            raise StorageError("storage is read-only")
        view = memoryview(data)
        if len(view) != self.geometry.piece_size(index):
            raise StorageError(
                f"piece {index} has {len(view)} bytes, expected {self.geometry.piece_size(index)}"
            )
        pos = 0
        for span in self.geometry.piece_spans(index):
            if span.file_index in self.pads:
                pos += span.length  # zeros of a pad file: checked by the hash, never written
                continue
            fd = self._fd(span.file_index, True)
            assert fd is not None
            chunk = view[pos : pos + span.length]
            try:
                written = 0
                while written < span.length:
                    written += os.pwrite(fd, chunk[written:], span.offset + written)
            except OSError as exc:
                raise _os_error(exc, self.paths[span.file_index]) from None
            pos += span.length

    def read(self, index: int, begin: int, length: int) -> bytes:
        if not self.geometry.is_valid_request(index, begin, length, max_length=self.geometry.piece_length):
            raise StorageError(f"read outside piece {index}: {begin}+{length}")
        offset = self.geometry.piece_offset(index) + begin
        out = bytearray(length)
        view = memoryview(out)
        pos = 0
        for span in self.geometry.spans(offset, length):
            if span.file_index in self.pads:
                pos += span.length  # ``out`` is zeros already
                continue
            fd = self._fd(span.file_index, False)
            if fd is None:
                raise StorageError(f"{self.paths[span.file_index]} is missing")
            got = os.preadv(fd, [view[pos : pos + span.length]], span.offset)
            if got != span.length:
                raise StorageError(f"{self.paths[span.file_index]} is shorter than the torrent says")
            pos += span.length
        return bytes(out)

    def read_piece(self, index: int) -> bytes | None:
        try:
            return self.read(index, 0, self.geometry.piece_size(index))
        except StorageError:
            return None

    def verify_pieces(self, piece_hashes: bytes, pieces: Sequence[int], workers: int) -> list[int]:
        if self.pads:  # pad files are not on disk: read each piece with its zeros
            good = []
            for index in pieces:
                data = self.read_piece(index)
                if (
                    data is not None
                    and hashlib.sha1(data).digest() == piece_hashes[index * 20 : index * 20 + 20]
                ):
                    good.append(index)
            return good
        return verify_files(self.paths, self.geometry, piece_hashes, pieces, workers=workers)

    def file_sizes_and_mtimes(self) -> Fingerprint:
        """(size, mtime_ns) of each file, None when missing: the resume file's fingerprint."""
        out: list[tuple[int, int] | None] = []
        for i, path in enumerate(self.paths):
            if i in self.pads:
                out.append((self.info.files[i].length, 0))
                continue
            try:
                st = path.stat()
            except OSError:
                out.append(None)
            else:
                out.append((st.st_size, st.st_mtime_ns))
        return out

    def flush(self) -> None:
        with self._lock:
            fds = [fd for (_, write), fd in self._fds.items() if write]
        for fd in fds:
            try:
                os.fsync(fd)
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            fds = list(self._fds.values())
            self._fds.clear()
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


class MemoryStorage:
    """Pieces in memory: for tests and simulations."""

    def __init__(self, geometry: Geometry, data: bytes | None = None) -> None:
        self.geometry = geometry
        self.data = bytearray(data) if data is not None else bytearray(geometry.total_length)
        if len(self.data) != geometry.total_length:
            raise StorageError("data length does not match the torrent")

    def write_piece(self, index: int, data: bytes | bytearray | memoryview) -> None:
        if len(data) != self.geometry.piece_size(index):
            raise StorageError(f"piece {index} has the wrong size")
        off = self.geometry.piece_offset(index)
        self.data[off : off + len(data)] = data

    def read(self, index: int, begin: int, length: int) -> bytes:
        if not self.geometry.is_valid_request(index, begin, length, max_length=self.geometry.piece_length):
            raise StorageError(f"read outside piece {index}: {begin}+{length}")
        off = self.geometry.piece_offset(index) + begin
        return bytes(self.data[off : off + length])

    def read_piece(self, index: int) -> bytes | None:
        return self.read(index, 0, self.geometry.piece_size(index))

    def verify_pieces(self, piece_hashes: bytes, pieces: Sequence[int], workers: int) -> list[int]:
        good = []
        for index in pieces:
            data = self.read(index, 0, self.geometry.piece_size(index))
            if hashlib.sha1(data).digest() == piece_hashes[index * 20 : index * 20 + 20]:
                good.append(index)
        return good

    def file_sizes_and_mtimes(self) -> Fingerprint:
        """Every file present at its full size; the time never changes (nothing else writes here)."""
        return [(length, 0) for length in self.geometry.file_lengths]

    def ensure_files(self) -> None:
        pass

    def close(self) -> None:
        pass
