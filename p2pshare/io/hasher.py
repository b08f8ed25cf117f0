"""SHA-1 of pieces (v1) and SHA-256 merkle piece hashes (v2), off the event loop and on every core.

``hashlib`` releases the GIL while it hashes a large buffer, and so does reading a
file, so plain threads give real parallelism.  Each worker takes a contiguous run
of pieces and streams it with ``os.preadv`` into one reused buffer of one piece:
memory is ``workers x piece_length`` whatever the size of the input, and nothing
is joined in memory.

For v2 and hybrid (:func:`hash_files_v2`) every file starts on a piece of its own,
so each piece is read from one file; a worker computes the piece's merkle hash (its
16 KiB leaf hashes release the GIL too) and, for hybrid, the SHA-1 of the same bytes
padded with zeros to the piece boundary, as the v1 half's pad files make them.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from p2pshare.core import merkle
from p2pshare.core.geometry import Geometry
from p2pshare.errors import StorageError

__all__ = ["V2Hashes", "hash_files", "hash_files_v2", "sha1", "verify_files"]

ProgressCallback = Callable[[int], None]


def sha1(data: bytes | bytearray | memoryview) -> bytes:
    return hashlib.sha1(data).digest()


class _FileSet:
    """Open file descriptors for one worker, opened lazily."""

    def __init__(self, paths: Sequence[Path], missing_ok: bool) -> None:
        self.paths = paths
        self.missing_ok = missing_ok
        self.fds: dict[int, int | None] = {}

    def fd(self, index: int) -> int | None:
        if index not in self.fds:
            try:
                self.fds[index] = os.open(self.paths[index], os.O_RDONLY)
            except FileNotFoundError:
                if not self.missing_ok:
                    raise StorageError(f"file vanished while hashing: {self.paths[index]}") from None
                self.fds[index] = None
            except OSError as exc:
                raise StorageError(f"cannot read {self.paths[index]}: {exc.strerror}") from None
        return self.fds[index]

    def close(self) -> None:
        for fd in self.fds.values():
            if fd is not None:
                os.close(fd)
        self.fds.clear()


def _pread_full(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` from ``offset``, retrying short reads; return the bytes read (less only at EOF)."""
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:]], offset + got)
        if n <= 0:
            break
        got += n
    return got


def _hash_run(
    paths: Sequence[Path],
    geometry: Geometry,
    pieces: Sequence[int],
    out: list[bytes | None],
    progress: ProgressCallback | None,
    missing_ok: bool,
    cancel: threading.Event,
) -> None:
    buf = bytearray(geometry.piece_length)
    view = memoryview(buf)
    files = _FileSet(paths, missing_ok)
    try:
        for index in pieces:
            if cancel.is_set():
                return
            size = geometry.piece_size(index)
            filled = 0
            ok = True
            for span in geometry.piece_spans(index):
                fd = files.fd(span.file_index)
                got = 0
                if fd is not None:
                    got = _pread_full(fd, view[filled : filled + span.length], span.offset)
                if got != span.length:
                    if not missing_ok:
                        raise StorageError(f"{paths[span.file_index]} is shorter than expected")
                    ok = False
                    break
                filled += span.length
            out[index] = hashlib.sha1(view[:size]).digest() if ok else None
            if progress is not None:
                progress(size)
    finally:
        files.close()


def _run_parallel(
    paths: Sequence[Path],
    geometry: Geometry,
    pieces: Sequence[int],
    workers: int,
    progress: ProgressCallback | None,
    missing_ok: bool,
) -> list[bytes | None]:
    out: list[bytes | None] = [None] * geometry.num_pieces
    workers = max(1, min(workers, len(pieces)))
    chunk = (len(pieces) + workers - 1) // workers if pieces else 0
    runs = [pieces[i : i + chunk] for i in range(0, len(pieces), chunk)] if chunk else []
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, len(runs)), thread_name_prefix="p2pshare-hash") as pool:
        futures = [
            pool.submit(_hash_run, paths, geometry, run, out, progress, missing_ok, cancel) for run in runs
        ]
        try:
            for f in futures:
                f.result()
        except BaseException:
            cancel.set()
            raise
    return out


def hash_files(
    paths: Sequence[Path],
    geometry: Geometry,
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> bytes:
    """Hash every piece of the files (concatenated in order); return the ``pieces`` string."""
    workers = workers or min(4, os.cpu_count() or 1)
    digests = _run_parallel(paths, geometry, range(geometry.num_pieces), workers, progress, missing_ok=False)
    return b"".join(d for d in digests if d is not None)


@dataclass(frozen=True, slots=True)
class V2Hashes:
    """What :func:`hash_files_v2` returns: per-file merkle piece hashes, and v1 pieces for hybrid."""

    piece_hashes: list[list[bytes]]  #: per file, one merkle piece hash per piece (none when empty)
    v1_pieces: bytes | None  #: SHA-1 of the pad-aligned pieces (hybrid only)


def _hash_run_v2(
    paths: Sequence[Path],
    lengths: Sequence[int],
    piece_length: int,
    items: Sequence[tuple[int, int, int]],
    out_v2: list[bytes],
    out_v1: list[bytes] | None,
    pad_last: bool,
    progress: ProgressCallback | None,
    cancel: threading.Event,
) -> None:
    buf = bytearray(piece_length)
    view = memoryview(buf)
    zeros = bytes(piece_length)
    last_file = len(lengths) - 1
    files = _FileSet(paths, missing_ok=False)
    try:
        for slot, file_index, k in items:
            if cancel.is_set():
                return
            length = lengths[file_index]
            size = min(piece_length, length - k * piece_length)
            fd = files.fd(file_index)
            assert fd is not None
            if _pread_full(fd, view[:size], k * piece_length) != size:
                raise StorageError(f"{paths[file_index]} is shorter than expected")
            out_v2[slot] = merkle.piece_hash(view[:size], piece_length, length)
            if out_v1 is not None:
                h = hashlib.sha1(view[:size])
                if size < piece_length and (pad_last or file_index != last_file):
                    h.update(zeros[: piece_length - size])
                out_v1[slot] = h.digest()
            if progress is not None:
                progress(size)
    finally:
        files.close()


def hash_files_v2(
    paths: Sequence[Path],
    lengths: Sequence[int],
    piece_length: int,
    *,
    v1: bool = False,
    v1_pad_last: bool = True,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> V2Hashes:
    """Merkle piece hashes of every file (in order), and with ``v1`` the hybrid's SHA-1 pieces.

    The SHA-1 pieces cover each file padded with zeros to a piece boundary; the last
    file too when ``v1_pad_last`` (a folder; a single file has no pad file).
    """
    merkle.piece_layer_height(piece_length)  # a power of two of at least 16 KiB
    workers = workers or min(4, os.cpu_count() or 1)
    items: list[tuple[int, int, int]] = []
    for file_index, length in enumerate(lengths):
        for k in range((length + piece_length - 1) // piece_length):
            items.append((len(items), file_index, k))
    out_v2: list[bytes] = [b""] * len(items)
    out_v1: list[bytes] | None = [b""] * len(items) if v1 else None
    workers = max(1, min(workers, len(items)))
    chunk = (len(items) + workers - 1) // workers if items else 0
    runs = [items[i : i + chunk] for i in range(0, len(items), chunk)] if chunk else []
    cancel = threading.Event()
    with ThreadPoolExecutor(max_workers=max(1, len(runs)), thread_name_prefix="p2pshare-hash") as pool:
        futures = [
            pool.submit(
                _hash_run_v2, paths, lengths, piece_length, run, out_v2, out_v1, v1_pad_last, progress, cancel
            )
            for run in runs
        ]
        try:
            for f in futures:
                f.result()
        except BaseException:
            cancel.set()
            raise
    per_file: list[list[bytes]] = [[] for _ in lengths]
    for slot, file_index, _ in items:
        per_file[file_index].append(out_v2[slot])
    return V2Hashes(per_file, b"".join(out_v1) if out_v1 is not None else None)


def verify_files(
    paths: Sequence[Path],
    geometry: Geometry,
    expected: bytes,
    pieces: Iterable[int] | None = None,
    *,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> list[int]:
    """Return the indices (among ``pieces``, default all) whose data on disk matches ``expected``.

    Missing or short files simply make their pieces fail.
    """
    workers = workers or min(4, os.cpu_count() or 1)
    todo = list(range(geometry.num_pieces) if pieces is None else pieces)
    digests = _run_parallel(paths, geometry, todo, workers, progress, missing_ok=True)
    return [i for i in todo if digests[i] == expected[i * 20 : i * 20 + 20]]
