"""Choosing files: ``--select 0,3-5``, ``--select '*.mkv'`` and a magnet's ``so=`` (BEP 53).

A :class:`FileSelection` is what the user asked for, before the manifest is known
(a magnet gives the file list only later).  :meth:`FileSelection.resolve` turns it
into one flag per file of a manifest; :func:`wanted_pieces` turns those flags into
the pieces to download (every piece that touches a selected file, so a piece that
straddles a selected and an unselected file is wanted whole).

File indices are 0-based positions in the manifest's file list, as in BEP 53 and as
``get --list`` prints them; BEP 47 pad files keep their index but are never selected.
A term of digits (``3``) or a range (``3-5``) names indices; any other term is a glob
matched against the file's path inside the torrent and against its bare name.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2pshare.core.bitfield import Bitfield
from p2pshare.errors import UsageError

if TYPE_CHECKING:
    from p2pshare.core.geometry import Geometry
    from p2pshare.core.metainfo import Info

__all__ = ["MAX_SELECT_TERMS", "FileSelection", "parse_index_ranges", "selected_length", "wanted_pieces"]

#: Terms accepted in one ``so=`` or ``--select`` (a link or command line is not a file list).
MAX_SELECT_TERMS = 256

_RANGE = re.compile(r"^([0-9]{1,9})(?:-([0-9]{1,9}))?$")  # ASCII digits only


def parse_index_ranges(text: str, *, max_terms: int) -> tuple[tuple[int, int], ...]:
    """``"0,2,4-6"`` as inclusive ranges; UsageError on anything else (BEP 53's ``so=`` syntax)."""
    terms = [t.strip() for t in text.split(",") if t.strip()]
    if len(terms) > max_terms:
        raise UsageError(f"too many file indices ({len(terms)} terms, at most {max_terms})")
    out: list[tuple[int, int]] = []
    for term in terms:
        m = _RANGE.match(term)
        if m is None:
            raise UsageError(f"{term!r} is not a file index or range like 3 or 3-5")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise UsageError(f"file range {term!r} runs backwards")
        out.append((lo, hi))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FileSelection:
    """Files asked for by index ranges (inclusive) and by glob; empty means none."""

    ranges: tuple[tuple[int, int], ...] = ()
    globs: tuple[str, ...] = ()

    @classmethod
    def parse(cls, values: Iterable[str], *, max_terms: int = MAX_SELECT_TERMS) -> FileSelection:
        """``--select`` values: each a comma-separated list of indices, ranges or globs."""
        ranges: list[tuple[int, int]] = []
        globs: list[str] = []
        count = 0
        for value in values:
            for term in (t.strip() for t in value.split(",")):
                if not term:
                    continue
                count += 1
                if count > max_terms:
                    raise UsageError(f"--select: more than {max_terms} terms")
                if _RANGE.match(term):
                    ranges.extend(parse_index_ranges(term, max_terms=1))
                else:
                    globs.append(term)
        return cls(tuple(ranges), tuple(globs))

    def __or__(self, other: FileSelection) -> FileSelection:
        return FileSelection(self.ranges + other.ranges, self.globs + other.globs)

    def resolve(self, info: Info) -> list[bool]:
        """One flag per file of ``info`` (pad files: always False); indices past the end are ignored."""
        paths = ["/".join(p) for p in info.file_paths()]
        inner = [f.display_path if not info.single_file else info.name for f in info.files]
        out: list[bool] = []
        for i, entry in enumerate(info.files):
            if entry.pad:
                out.append(False)
                continue
            hit = any(lo <= i <= hi for lo, hi in self.ranges) or any(
                fnmatch.fnmatchcase(paths[i], g)
                or fnmatch.fnmatchcase(inner[i], g)
                or fnmatch.fnmatchcase(entry.path[-1] if entry.path else info.name, g)
                for g in self.globs
            )
            out.append(hit)
        return out

    def unmatched(self, info: Info) -> list[str]:
        """Terms that choose no file of ``info`` (for a clear error before downloading)."""
        n = len(info.files)
        bad = [f"{lo}-{hi}" if hi != lo else str(lo) for lo, hi in self.ranges if lo >= n]
        for g in self.globs:
            if not any(FileSelection((), (g,)).resolve(info)):
                bad.append(g)
        return bad


def wanted_pieces(geometry: Geometry, selected: Sequence[bool]) -> Bitfield:
    """Every piece that holds at least one byte of a selected file."""
    wanted = Bitfield(geometry.num_pieces)
    for f, chosen in enumerate(selected):
        if chosen:
            for p in geometry.pieces_for_file(f):
                wanted.add(p)
    return wanted


def selected_length(info: Info, selected: Sequence[bool]) -> int:
    """Bytes of the selected files."""
    return sum(f.length for f, chosen in zip(info.files, selected, strict=True) if chosen)
