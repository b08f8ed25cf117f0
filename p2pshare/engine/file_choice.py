"""Which files a torrent downloads, and in what order: the engine's side of ``--select``/``--sequential``.

The torrent asks this room once the manifest is known: :func:`choose` resolves the
:class:`~p2pshare.core.selection.FileSelection` of its params into one flag per file
and the pieces those files need, for the picker's wanted set; :func:`selected_progress`
turns verified pieces into the bytes done and the bytes wanted, counting only chosen files
(so ``done`` means the selection is complete).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

from p2pshare.config import StreamConfig
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.metainfo import Info
from p2pshare.core.selection import FileSelection, wanted_pieces

__all__ = ["FileChoice", "choose", "read_ahead_window", "selected_progress"]


@dataclass(frozen=True, slots=True)
class FileChoice:
    """The files chosen from one manifest, and the pieces they need (None: every file)."""

    selected: tuple[bool, ...] | None
    wanted: Bitfield | None

    @property
    def partial(self) -> bool:
        return self.selected is not None


def choose(info: Info, selection: FileSelection | None) -> FileChoice:
    """The choice ``selection`` makes in ``info`` (None, or one that takes every real file: all)."""
    if selection is None:
        return FileChoice(None, None)
    flags = selection.resolve(info)
    if all(flag or f.pad for flag, f in zip(flags, info.files, strict=True)):
        return FileChoice(None, None)
    return FileChoice(tuple(flags), wanted_pieces(info.geometry, flags))


def read_ahead_window(cfg: StreamConfig, piece_length: int) -> int:
    """Pieces in the sequential read-ahead window for pieces of ``piece_length`` bytes."""
    return max(cfg.read_ahead_pieces, cfg.read_ahead_bytes // piece_length)


def selected_progress(info: Info, selected: Sequence[bool] | None, have: Container[int]) -> tuple[int, int]:
    """``(verified bytes, total bytes)`` of the chosen files (of every file when ``selected`` is None)."""
    done = info.geometry.file_progress(have)
    if selected is None:
        selected = [True] * len(info.files)
    pairs = [(d, f.length) for d, f, chosen in zip(done, info.files, selected, strict=True) if chosen]
    return sum(d for d, _ in pairs), sum(n for _, n in pairs)
