"""The v1 (BEP 3) half of an info dict: ``pieces`` and the ``length`` / ``files`` layout.

BEP 47 pad files (``attr`` containing ``p``) are kept in the layout, marked ``pad``:
they take part in the piece space but are never written.  Several pad files may
share a path (``.pad/16384``), so only real files are checked for collisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pshare.config import MetainfoLimits
from p2pshare.core.metainfo.fields import get_field, validate_path
from p2pshare.core.metainfo.model import FileEntry
from p2pshare.errors import MetainfoError

__all__ = ["V1Layout", "parse_v1"]


@dataclass(frozen=True, slots=True)
class V1Layout:
    pieces: bytes
    files: tuple[FileEntry, ...]
    single_file: bool
    total_length: int


def parse_v1(d: dict[bytes, object], name: str, piece_length: int, limits: MetainfoLimits) -> V1Layout:
    """Validate ``pieces`` and the file layout of a v1 (or hybrid) info dict."""
    pieces = get_field(d, b"pieces", bytes, "info.pieces")
    assert isinstance(pieces, bytes)
    if len(pieces) % 20:
        raise MetainfoError(f"pieces is {len(pieces)} bytes, not a multiple of 20")
    has_length = b"length" in d
    has_files = b"files" in d
    if has_length == has_files:
        raise MetainfoError("info must have exactly one of 'length' (single file) or 'files'")
    entries: list[FileEntry] = []
    offset = 0
    if has_length:
        length = get_field(d, b"length", int, "info.length")
        assert isinstance(length, int)
        if length < 0:
            raise MetainfoError(f"file length must not be negative, got {length}")
        entries.append(FileEntry((name,), length, 0))
        offset = length
    else:
        files = get_field(d, b"files", list, "info.files")
        assert isinstance(files, list)
        if not files:
            raise MetainfoError("info.files is empty")
        if len(files) > limits.max_files:
            raise MetainfoError(f"{len(files)} files exceed the limit of {limits.max_files}")
        seen: set[tuple[str, ...]] = set()
        prefixes: set[tuple[str, ...]] = set()
        for i, entry in enumerate(files):
            if not isinstance(entry, dict):
                raise MetainfoError(f"info.files[{i}] must be a dictionary")
            length = get_field(entry, b"length", int, f"info.files[{i}].length")
            assert isinstance(length, int)
            if length < 0:
                raise MetainfoError(f"info.files[{i}].length must not be negative, got {length}")
            path_list = get_field(
                entry, b"path.utf-8", list, f"info.files[{i}].path.utf-8", required=False
            ) or get_field(entry, b"path", list, f"info.files[{i}].path")
            assert isinstance(path_list, list)
            path = validate_path(path_list, f"info.files[{i}].path", limits)
            attr = entry.get(b"attr")
            pad = isinstance(attr, bytes) and b"p" in attr
            if not pad:
                if path in seen or path in prefixes:
                    raise MetainfoError(f"info.files[{i}] path {'/'.join(path)!r} collides with another file")
                seen.add(path)
                for k in range(1, len(path)):
                    prefixes.add(path[:k])
            entries.append(FileEntry(path, length, offset, pad=pad))
            offset += length
        if any(p in prefixes for p in seen):
            raise MetainfoError("a file path is also used as a folder")
    expected = (offset + piece_length - 1) // piece_length
    if len(pieces) // 20 != expected:
        raise MetainfoError(
            f"pieces holds {len(pieces) // 20} hashes but {offset} bytes in pieces of "
            f"{piece_length} need {expected}"
        )
    return V1Layout(pieces, tuple(entries), has_length, offset)
