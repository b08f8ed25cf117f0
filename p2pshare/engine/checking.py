"""Checking files already on disk before a torrent starts: what ``seed`` and ``get`` show as a bar.

The torrent checks its files itself when it starts, but silently.  The runner checks
first, here, with progress the view can draw (its own bar, its own rate), then saves
the result as the resume state, so the torrent trusts it and hashes nothing twice.
A resume file whose files are unchanged is trusted here too: only pieces touching
changed files are hashed, and the result says how much was kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from p2pshare.config import Config
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.metainfo import Info
from p2pshare.engine.resume import load_resume, pieces_to_recheck, save_resume
from p2pshare.io.hasher import verify_files
from p2pshare.io.storage import FileStorage

__all__ = ["CheckCancelled", "CheckResult", "CheckStarted", "check_files"]


class CheckCancelled(Exception):
    """The check was stopped (Ctrl-C) between two batches."""


@dataclass(frozen=True, slots=True)
class CheckStarted:
    """Checking begins: ``to_hash`` bytes will be read; ``resumed`` when a resume file was found."""

    total_size: int
    num_pieces: int
    to_hash: int
    resumed: bool


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What was found on disk."""

    have: Bitfield
    have_bytes: int
    total_size: int
    hashed_bytes: int
    elapsed: float
    resumed: bool  #: a resume file from an earlier run was used

    @property
    def have_pieces(self) -> int:
        return len(self.have)

    @property
    def complete(self) -> bool:
        return self.have.complete

    @property
    def rate(self) -> float:
        return self.hashed_bytes / self.elapsed if self.elapsed > 0 else 0.0


def _bytes_of(info: Info, have: Bitfield) -> int:
    g = info.geometry
    return sum(g.piece_size(i) for i in have)


def _check(
    info: Info,
    storage: FileStorage,
    resume_path: Path | None,
    workers: int,
    on_start: Callable[[CheckStarted], None],
    advance: Callable[[int], None],
    cancel: threading.Event,
    batch: int,
) -> CheckResult:
    started = time.monotonic()
    g = info.geometry
    current = storage.file_sizes_and_mtimes()
    saved = load_resume(resume_path, info.info_hash.value, g.num_pieces) if resume_path else None
    if saved is not None:
        trusted, recheck = pieces_to_recheck(g, saved[0], saved[1], current)
    else:
        trusted = Bitfield(g.num_pieces)
        recheck = {p for f, fp in enumerate(current) if fp is not None for p in g.pieces_for_file(f)}
    missing = {p for f, fp in enumerate(current) if fp is None for p in g.pieces_for_file(f)}
    todo = sorted(recheck - missing - set(trusted))
    to_hash = sum(g.piece_size(i) for i in todo)
    on_start(CheckStarted(info.total_length, g.num_pieces, to_hash, saved is not None))
    for start in range(0, len(todo), batch):  # in batches, so that a cancel stops it soon
        if cancel.is_set():
            raise CheckCancelled
        chunk = todo[start : start + batch]
        for p in verify_files(storage.paths, g, info.pieces, chunk, workers=workers, progress=advance):
            trusted.add(p)
    for p in missing:
        trusted.discard(p)
    return CheckResult(
        have=trusted,
        have_bytes=_bytes_of(info, trusted),
        total_size=info.total_length,
        hashed_bytes=to_hash,
        elapsed=time.monotonic() - started,
        resumed=saved is not None,
    )


async def check_files(
    info: Info,
    folder: Path,
    config: Config,
    *,
    resume_path: Path | None = None,
    on_start: Callable[[CheckStarted], None] = lambda _: None,
    advance: Callable[[int], None] = lambda _: None,
) -> CheckResult:
    """Hash what ``folder`` holds of ``info`` (in a thread); save it as the resume state.

    ``advance(n)`` is called from the hashing threads with each piece's size as it is
    read; ``on_start`` once, before hashing, from a thread too.
    """
    storage = FileStorage(info, folder, writable=False, max_open_files=config.storage.max_open_files)
    cancel = threading.Event()
    batch = max(1, config.terminal.check_batch_bytes // info.piece_length)
    workers = config.storage.hash_workers
    job = asyncio.ensure_future(
        asyncio.to_thread(_check, info, storage, resume_path, workers, on_start, advance, cancel, batch)
    )
    try:
        try:
            result = await asyncio.shield(job)
        except asyncio.CancelledError:
            cancel.set()  # the thread stops after its batch; wait for it so the files close
            with contextlib.suppress(CheckCancelled):
                await job
            raise
        if resume_path is not None and result.have_pieces:
            await save_resume(resume_path, info.info_hash.value, result.have, storage.file_sizes_and_mtimes())
    finally:
        storage.close()
    return result
