"""Walk a file or folder to share: which files, in which order, under which names.

Also the one way small state files are written: :func:`atomic_write` (blocking,
for code that runs before or outside the event loop) and
:func:`atomic_write_async` (through ``aiofiles``, so the event loop never waits
on a slow disk).  Both write a temp file in the same folder, fsync it and rename
it over the target.  The data path (pieces) has its own threads instead:
``aiofiles`` adds a thread hop per call, which is too slow per block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import aiofiles
import aiofiles.os

from p2pshare.errors import MetainfoError, PathNotFoundError

__all__ = ["SharedFile", "Selection", "atomic_write", "atomic_write_async", "collect_files"]


@dataclass(frozen=True, slots=True)
class SharedFile:
    """A file on disk and its path components inside the torrent."""

    path: Path
    parts: tuple[str, ...]
    length: int


@dataclass(frozen=True, slots=True)
class Selection:
    """The files of one share, sorted by their path in the torrent."""

    root: Path
    name: str
    single_file: bool
    files: tuple[SharedFile, ...]
    skipped_hidden: int = 0
    skipped_symlinks: int = 0

    @property
    def total_length(self) -> int:
        return sum(f.length for f in self.files)


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: a reader, or a restart after a crash, sees
    the old file or the new one, never a torn one (temp file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


async def atomic_write_async(path: Path, data: bytes) -> None:
    """:func:`atomic_write` through ``aiofiles``: every blocking step runs off the event loop."""
    await aiofiles.os.makedirs(path.parent, exist_ok=True)
    tmp = _temp_path(path)
    async with aiofiles.open(tmp, "wb") as f:
        await f.write(data)
        await f.flush()
        await aiofiles.os.wrap(os.fsync)(f.fileno())
    await aiofiles.os.replace(tmp, path)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve(strict=True).relative_to(root)
    except (ValueError, OSError):
        return False
    return True


def collect_files(path: Path, *, include_hidden: bool = False, include_symlinks: bool = False) -> Selection:
    """List the regular files to share under ``path`` (or ``path`` itself).

    Hidden entries (a name starting with ``.``) and symbolic links are skipped
    unless asked for; an included symlink is followed only when its target lies
    inside the shared folder, so a link never leaks a file from elsewhere.
    Order is by path components (bytewise on the UTF-8 names), which is
    deterministic on every platform.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise PathNotFoundError(f"no such file or folder: {path}")
    if not os.access(path, os.R_OK):
        raise PathNotFoundError(f"cannot read {path}: permission denied")
    name = path.resolve().name if path.name in ("", ".", "..") else path.name
    if path.is_file():
        size = path.stat().st_size
        if size == 0:
            raise MetainfoError(f"{path} is empty: there is nothing to share")
        return Selection(path.parent, name, True, (SharedFile(path, (name,), size),))
    if not path.is_dir():
        raise MetainfoError(f"{path} is neither a regular file nor a folder")
    root = path.resolve()
    files: list[SharedFile] = []
    hidden = links = 0
    # Folders on the current walk path: a link back to one of them is a loop.  (Not
    # every folder seen so far: that would drop a real folder already reached
    # through a symlink to it.)
    ancestors: set[tuple[int, int]] = set()

    def walk(folder: Path, parts: tuple[str, ...]) -> None:
        try:
            st = folder.stat()
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        if key in ancestors:  # a symlink loop inside the folder
            return
        ancestors.add(key)
        try:
            walk_entries(folder, parts)
        finally:
            ancestors.discard(key)

    def walk_entries(folder: Path, parts: tuple[str, ...]) -> None:
        nonlocal hidden, links
        try:
            entries = sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name))
        except PermissionError as exc:
            raise PathNotFoundError(f"cannot read folder {folder}: permission denied") from exc
        for entry in entries:
            if entry.name.startswith(".") and not include_hidden:
                hidden += 1
                continue
            entry_path = Path(entry.path)
            if entry.is_symlink() and (not include_symlinks or not _inside(entry_path, root)):
                links += 1
                continue
            if entry.is_dir(follow_symlinks=True):
                walk(entry_path, (*parts, entry.name))
            elif entry.is_file(follow_symlinks=True):
                files.append(
                    SharedFile(entry_path, (*parts, entry.name), entry.stat(follow_symlinks=True).st_size)
                )

    walk(path, ())
    if not files:
        raise MetainfoError(
            f"{path} holds no files to share (hidden files and symlinks are skipped by default)"
        )
    if sum(f.length for f in files) == 0:
        raise MetainfoError(f"every file under {path} is empty: there is nothing to share")
    return Selection(path, name, False, tuple(files), hidden, links)
