"""The resume file: which pieces were verified, and the files as they were then.

A bitfield plus each file's (size, mtime) fingerprint.  On start, pieces of files
whose fingerprint is unchanged are trusted without reading them; only pieces that
touch a changed file are hashed again.  Written atomically (temp file, fsync, rename)
through ``aiofiles``, so the event loop never waits on the disk, and a SIGKILL at any
moment leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

from pathlib import Path

from p2pshare.core import bencode
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import Geometry
from p2pshare.errors import BencodeError
from p2pshare.io.files import atomic_write_async

__all__ = ["load_resume", "pieces_to_recheck", "save_resume"]

Fingerprint = list[tuple[int, int] | None]


async def save_resume(path: Path, info_hash: bytes, have: Bitfield, fingerprint: Fingerprint) -> None:
    doc = {
        b"info hash": info_hash,
        b"pieces": have.to_bytes(),
        b"files": [[fp[0], fp[1]] if fp else [] for fp in fingerprint],
    }
    await atomic_write_async(path, bencode.encode(doc))


def load_resume(path: Path, info_hash: bytes, num_pieces: int) -> tuple[Bitfield, Fingerprint] | None:
    """The saved bitfield and fingerprint, or None if absent, foreign or damaged."""
    try:
        doc = bencode.decode(path.read_bytes())
        if not isinstance(doc, dict) or doc.get(b"info hash") != info_hash:
            return None
        have = Bitfield.from_bytes(doc[b"pieces"], num_pieces)
        files: Fingerprint = []
        for entry in doc[b"files"]:
            files.append((int(entry[0]), int(entry[1])) if entry else None)
        return have, files
    except (OSError, BencodeError, ValueError, KeyError, TypeError, IndexError):
        return None


def pieces_to_recheck(
    geometry: Geometry, saved: Bitfield, saved_fp: Fingerprint, current_fp: Fingerprint
) -> tuple[Bitfield, set[int]]:
    """Split the saved state into pieces still trusted and pieces to hash again.

    A piece is trusted when the resume file had it and every file it touches is
    unchanged; it is rechecked when it touches a changed file (whatever the resume
    file said: a changed file may hold pieces written after the last save).
    """
    changed = {
        i
        for i, (old, new) in enumerate(zip(saved_fp, current_fp, strict=False))
        if old != new and geometry.file_lengths[i] > 0
    }
    if len(saved_fp) != len(current_fp):
        changed = set(range(len(current_fp)))
    recheck: set[int] = set()
    for f in changed:
        recheck.update(geometry.pieces_for_file(f))
    trusted = Bitfield(geometry.num_pieces)
    for index in saved:
        if index not in recheck:
            trusted.add(index)
    return trusted, recheck
