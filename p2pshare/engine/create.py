"""Build a manifest from files on disk: walk, choose the piece size, hash, assemble."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from p2pshare import __version__
from p2pshare.config import MetainfoLimits
from p2pshare.core.geometry import Geometry
from p2pshare.core.metainfo import Info, build_info, choose_piece_length, encode_torrent
from p2pshare.core.tracker import UnsupportedTracker, parse_tracker_url
from p2pshare.errors import UsageError
from p2pshare.io.files import Selection, collect_files
from p2pshare.io.hasher import ProgressCallback, hash_files

__all__ = ["CreatedTorrent", "create_torrent", "parse_size"]

CREATED_BY = f"p2pshare/{__version__}"


@dataclass(frozen=True)
class CreatedTorrent:
    """A manifest built from a selection of files, ready to write or to seed."""

    selection: Selection
    info: Info
    torrent: bytes  #: the whole .torrent file
    trackers: tuple[str, ...] = ()  #: announce URLs written into it, in tier order

    @property
    def paths(self) -> list[Path]:
        return [f.path for f in self.selection.files]


def parse_size(text: str) -> int:
    """``16384``, ``256k``, ``1MiB``, ``4m`` -> bytes; UsageError if malformed."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = 1
    if t and t[-1] in "kmgt":
        factor = 1024 ** ("kmgt".index(t[-1]) + 1)
        t = t[:-1]
    try:
        value = float(t)
    except ValueError:
        raise UsageError(f"not a size: {text!r} (examples: 262144, 256KiB, 4MiB)") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"not a size: {text!r} (examples: 262144, 256KiB, 4MiB)")
    if value < 0:
        raise UsageError(f"a size cannot be negative: {text!r}")
    return int(value * factor)


def create_torrent(
    path: Path,
    *,
    piece_length: int | None = None,
    comment: str | None = None,
    include_hidden: bool = False,
    include_symlinks: bool = False,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    limits: MetainfoLimits | None = None,
    trackers: Sequence[str] = (),
) -> CreatedTorrent:
    """Walk ``path``, hash its pieces on every core and build the .torrent.

    ``trackers`` (http, https or udp URLs) go into ``announce`` (the first) and, when there
    are several, into ``announce-list`` with one tier each, tried in the order given (BEP 12).
    Blocking (it hashes); call it from a thread when an event loop is running.
    """
    limits = limits or MetainfoLimits()
    urls = _check_trackers(trackers)
    selection = collect_files(Path(path), include_hidden=include_hidden, include_symlinks=include_symlinks)
    total = selection.total_length
    if piece_length is None:
        piece_length = choose_piece_length(total, limits)
    elif piece_length < limits.min_piece_length or piece_length & (piece_length - 1):
        raise UsageError(
            "piece size must be a power of two of at least "
            f"{limits.min_piece_length} bytes, got {piece_length}"
        )
    elif piece_length > limits.max_parse_piece_length:
        raise UsageError(f"piece size {piece_length} is larger than {limits.max_parse_piece_length}")
    geometry = Geometry(piece_length, [f.length for f in selection.files])
    pieces = hash_files([f.path for f in selection.files], geometry, workers=workers, progress=progress)
    listed: list[tuple[tuple[str, ...], int]]
    if selection.single_file:
        listed = [((selection.name,), selection.files[0].length)]
    else:
        listed = [(f.parts, f.length) for f in selection.files]
    info = build_info(selection.name, listed, piece_length, pieces, single_file=selection.single_file)
    torrent = encode_torrent(
        info,
        announce=urls[0] if urls else None,
        announce_list=[[url] for url in urls] if len(urls) > 1 else (),
        comment=comment,
        created_by=CREATED_BY,
        creation_date=int(time.time()),
    )
    return CreatedTorrent(selection, info, torrent, tuple(urls))


def _check_trackers(trackers: Sequence[str]) -> list[str]:
    """Validated tracker URLs, duplicates dropped, order kept; UsageError names a bad one."""
    urls: list[str] = []
    for raw in trackers:
        url = raw.strip()
        try:
            parse_tracker_url(url)
        except UnsupportedTracker as exc:
            raise UsageError(f"--tracker: {exc}") from None
        if url not in urls:
            urls.append(url)
    return urls
