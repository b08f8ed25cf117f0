"""File storage for a download of some files only: unselected files are never created.

A piece that straddles a selected and an unselected file is downloaded whole (it is
hashed whole); its selected part goes into the selected file as usual, and the rest
into one hidden *parts file* beside the download, as libtorrent does.  The parts file
has one slot of ``piece_length`` bytes per straddling piece, in piece order; a byte of
the piece lives in its slot at its offset within the piece (sparse, so only the
unselected bytes take room).  Pieces wholly inside unselected files are not stored:
writing one is ignored and reading one fails, so it is never verified nor uploaded.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from p2pshare.core.geometry import FileSpan
from p2pshare.core.metainfo import Info
from p2pshare.errors import StorageError
from p2pshare.io.storage import FileStorage, Fingerprint, _os_error

__all__ = ["PartsStorage"]


class PartsStorage(FileStorage):
    """:class:`FileStorage` that writes only ``selected`` files, the rest of straddling pieces aside."""

    def __init__(
        self,
        info: Info,
        root: Path,
        selected: Sequence[bool],
        parts_path: Path,
        *,
        paths: Sequence[Path] | None = None,
        max_open_files: int = 64,
    ) -> None:
        super().__init__(info, root, paths=paths, max_open_files=max_open_files)
        if len(selected) != len(info.files):
            raise StorageError("one selection flag per file of the torrent is needed")
        self.selected = list(selected)
        self.parts_path = Path(parts_path)
        g = self.geometry
        self.slots: dict[int, int] = {}  #: straddling piece -> its slot in the parts file
        for p in range(g.num_pieces):
            chosen = {self.selected[s.file_index] for s in g.piece_spans(p)}
            if chosen == {True, False}:
                self.slots[p] = len(self.slots)
        self._parts_fd: int | None = None
        self._parts_lock = threading.Lock()

    def is_stored(self, index: int) -> bool:
        """Whether piece ``index`` has a place here (it touches a selected file)."""
        return any(self.selected[s.file_index] for s in self.geometry.piece_spans(index))

    # -- the parts file -------------------------------------------------------------------

    def _parts(self, write: bool) -> int | None:
        with self._parts_lock:
            if self._parts_fd is None:
                try:
                    if write:
                        self.parts_path.parent.mkdir(parents=True, exist_ok=True)
                        self._parts_fd = os.open(self.parts_path, os.O_RDWR | os.O_CREAT, 0o644)
                    elif self.parts_path.exists():
                        self._parts_fd = os.open(self.parts_path, os.O_RDWR)
                except OSError as exc:
                    raise _os_error(exc, self.parts_path) from None
            return self._parts_fd

    def _walk(self, index: int, begin: int, length: int) -> list[tuple[FileSpan, int]]:
        """The spans of ``length`` bytes at ``begin`` of piece ``index``, each with its piece offset."""
        out: list[tuple[FileSpan, int]] = []
        pos = begin
        for span in self.geometry.spans(self.geometry.piece_offset(index) + begin, length):
            out.append((span, pos))
            pos += span.length
        return out

    # -- Storage --------------------------------------------------------------------------

    def write_piece(self, index: int, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        size = self.geometry.piece_size(index)
        if len(view) != size:
            raise StorageError(f"piece {index} has {len(view)} bytes, expected {size}")
        if not self.is_stored(index):
            return
        slot = self.slots.get(index)
        for span, at in self._walk(index, 0, size):
            chunk = view[at : at + span.length]
            if self.selected[span.file_index]:
                fd = self._fd(span.file_index, True)
                where, path = span.offset, self.paths[span.file_index]
            else:
                assert slot is not None
                fd = self._parts(True)
                where, path = slot * self.geometry.piece_length + at, self.parts_path
            assert fd is not None
            try:
                done = 0
                while done < span.length:
                    done += os.pwrite(fd, chunk[done:], where + done)
            except OSError as exc:
                raise _os_error(exc, path) from None

    def read(self, index: int, begin: int, length: int) -> bytes:
        g = self.geometry
        if not g.is_valid_request(index, begin, length, max_length=g.piece_length):
            raise StorageError(f"read outside piece {index}: {begin}+{length}")
        if not self.is_stored(index):
            raise StorageError(f"piece {index} lies only in files that were not selected")
        slot = self.slots.get(index)
        out = bytearray(length)
        view = memoryview(out)
        for span, at in self._walk(index, begin, length):
            if self.selected[span.file_index]:
                fd, where, path = self._fd(span.file_index, False), span.offset, self.paths[span.file_index]
            else:
                assert slot is not None
                fd, where, path = self._parts(False), slot * g.piece_length + at, self.parts_path
            if fd is None:
                raise StorageError(f"{path} is missing")
            got = os.preadv(fd, [view[at - begin : at - begin + span.length]], where)
            if got != span.length:
                raise StorageError(f"{path} is shorter than the torrent says")
        return bytes(out)

    def verify_pieces(self, piece_hashes: bytes, pieces: Sequence[int], workers: int) -> list[int]:
        good: list[int] = []
        for index in pieces:
            data = self.read_piece(index)
            if data is not None and hashlib.sha1(data).digest() == piece_hashes[index * 20 : index * 20 + 20]:
                good.append(index)
        return good

    def file_sizes_and_mtimes(self) -> Fingerprint:
        """Selected files as they are; an unselected file shows the parts file (None when absent)."""
        own = super().file_sizes_and_mtimes()
        try:
            st = self.parts_path.stat()
            parts: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            parts = None
        return [fp if chosen else parts for fp, chosen in zip(own, self.selected, strict=True)]

    def ensure_files(self) -> None:
        """Create the selected files at their final size; unselected ones are left alone."""
        for i, entry in enumerate(self.info.files):
            if not self.selected[i]:
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

    def flush(self) -> None:
        super().flush()
        with self._parts_lock:
            fd = self._parts_fd
        if fd is not None:
            try:
                os.fsync(fd)
            except OSError:
                pass

    def close(self) -> None:
        super().close()
        with self._parts_lock:
            fd, self._parts_fd = self._parts_fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
