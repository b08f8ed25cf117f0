"""SHA-1 of pieces, off the event loop and on every core.

``hashlib`` releases the GIL while it hashes a large buffer, and so does reading a
file, so plain threads give real parallelism.  Each worker takes a contiguous run
of pieces and streams it with ``os.preadv`` into one reused buffer of one piece:
memory is ``workers x piece_length`` whatever the size of the input, and nothing
is joined in memory.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from p2pshare.core.geometry import Geometry
from p2pshare.errors import StorageError

__all__ = ["hash_files", "sha1", "verify_files"]

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
