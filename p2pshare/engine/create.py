"""Build a manifest from files on disk: walk, choose the piece size, hash, assemble.

Three formats (``--format``): ``v1`` (BEP 3, SHA-1 pieces), ``v2`` (BEP 52, a SHA-256
merkle tree per file) and ``hybrid`` (both halves over the same pad-aligned pieces,
so v1 and v2 clients share one swarm each and the same files on disk).

The default is ``v1`` (:attr:`p2pshare.config.V2Config.default_format`): v1-only
clients still in wide use (aria2 1.36, Transmission 3) do not understand BEP 47 pad
files and write a hybrid's ``.pad/N`` entries to disk as ordinary files, and until
the engine downloads and serves by v2 hash a hybrid would only add that clutter and
twice the hashing.  ``hybrid`` is the choice once v2 peers are the goal.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from p2pshare import __version__
from p2pshare.config import MetainfoLimits, V2Config
from p2pshare.core.geometry import Geometry
from p2pshare.core.metainfo import (
    Format,
    Info,
    build_info,
    build_info_v2,
    choose_piece_length,
    encode_torrent,
)
from p2pshare.core.tracker import UnsupportedTracker, parse_tracker_url
from p2pshare.errors import UsageError
from p2pshare.io.files import Selection, collect_files
from p2pshare.io.hasher import ProgressCallback, hash_files, hash_files_v2

__all__ = ["DEFAULT_FORMAT", "FORMATS", "CreatedTorrent", "create_torrent", "parse_format", "parse_size"]

CREATED_BY = f"p2pshare/{__version__}"
FORMATS: tuple[Format, ...] = ("v1", "v2", "hybrid")
DEFAULT_FORMAT: Format = "v1"


def parse_format(text: str | None) -> Format:
    """``v1`` / ``v2`` / ``hybrid`` (any case); None gives the configured default."""
    if text is None:
        text = V2Config().default_format
    t = text.strip().lower()
    for f in FORMATS:
        if t == f:
            return f
    raise UsageError(f"unknown format {text!r}: choose v1, v2 or hybrid")


@dataclass(frozen=True)
class CreatedTorrent:
    """A manifest built from a selection of files, ready to write or to seed."""

    selection: Selection
    info: Info
    torrent: bytes  #: the whole .torrent file
    piece_layers: dict[bytes, bytes] = field(default_factory=dict)  #: v2/hybrid: root -> layer
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
    format: Format = DEFAULT_FORMAT,
    trackers: Sequence[str] = (),
) -> CreatedTorrent:
    """Walk ``path``, hash its pieces on every core and build the .torrent in ``format``.

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
    listed: list[tuple[tuple[str, ...], int]]
    if selection.single_file:
        listed = [((selection.name,), selection.files[0].length)]
    else:
        listed = [(f.parts, f.length) for f in selection.files]
    paths = [f.path for f in selection.files]
    layers: dict[bytes, bytes] = {}
    if format == "v1":
        geometry = Geometry(piece_length, [f.length for f in selection.files])
        pieces = hash_files(paths, geometry, workers=workers, progress=progress)
        info = build_info(selection.name, listed, piece_length, pieces, single_file=selection.single_file)
    elif format in ("v2", "hybrid"):
        lengths = [f.length for f in selection.files]
        hashes = hash_files_v2(
            paths,
            lengths,
            piece_length,
            v1=format == "hybrid",
            v1_pad_last=not selection.single_file,
            workers=workers,
            progress=progress,
        )
        info, layers = build_info_v2(
            selection.name,
            listed,
            piece_length,
            hashes.piece_hashes,
            single_file=selection.single_file,
            v1_pieces=hashes.v1_pieces,
        )
    else:
        raise UsageError(f"unknown format {format!r}: choose v1, v2 or hybrid")
    torrent = encode_torrent(
        info,
        announce=urls[0] if urls else None,
        announce_list=[[url] for url in urls] if len(urls) > 1 else (),
        comment=comment,
        created_by=CREATED_BY,
        creation_date=int(time.time()),
        piece_layers=layers,
    )
    return CreatedTorrent(selection, info, torrent, layers, tuple(urls))


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
