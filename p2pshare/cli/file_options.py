"""The options of ``get`` and ``share`` about trackers, choosing files and streaming.

``swarm_cmds`` declares them in its commands' signatures; the small helpers here turn
them into what the runner takes: tracker tiers, a :class:`FileSelection`, a
:class:`StreamRequest` over the real standard output, and the ``--list`` table.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Annotated

import typer
from rich.table import Table

from p2pshare.cli.common import out_console, print_json
from p2pshare.cli.views import human_size
from p2pshare.core.magnet import Magnet
from p2pshare.core.metainfo import Info, Metainfo
from p2pshare.core.selection import FileSelection, selected_length
from p2pshare.core.tracker.tiers import tiers_from
from p2pshare.engine.streamer import StreamRequest, pick_stream_file
from p2pshare.errors import UsageError

__all__ = [
    "ListOpt",
    "NoTrackersOpt",
    "SelectOpt",
    "SequentialOpt",
    "StdoutOpt",
    "TrackerOpt",
    "check_selection",
    "describe_choice",
    "print_file_list",
    "selection_for",
    "stdout_stream",
    "tiers_for",
]

NoTrackersOpt = Annotated[
    bool, typer.Option("--no-trackers", help="Do not announce to or ask any tracker (DHT and --peer only).")
]
TrackerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--tracker",
        metavar="URL",
        help="An http(s):// or udp:// tracker to write into the manifest and announce to (repeatable).",
        show_default=False,
    ),
]
ListOpt = Annotated[
    bool, typer.Option("--list", help="Print the files with their indices and exit (fetches the manifest).")
]
SelectOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        "-s",
        metavar="FILES",
        help="Download only these files: indices from --list (0,3-5) or globs ('*.mkv'); repeatable. "
        "Others are not created. Default: the magnet's so=, else all.",
        show_default=False,
    ),
]
SequentialOpt = Annotated[
    bool, typer.Option("--sequential", help="Download in file order (for watching while it downloads).")
]
StdoutOpt = Annotated[
    bool,
    typer.Option(
        "--stdout",
        help="Write the one selected file to standard output in order, each piece verified first "
        "(messages go to standard error): p2pshare get X --select movie.mkv --stdout | mpv -",
    ),
]


def tiers_for(metainfo: Metainfo | None, magnet: Magnet) -> list[list[str]]:
    """Tracker tiers: the manifest's (BEP 12), then each of the magnet's ``tr=``."""
    if metainfo is not None:
        return tiers_from(metainfo.announce, metainfo.announce_list, magnet.trackers)
    return tiers_from(None, (), magnet.trackers)


def selection_for(select: list[str] | None, magnet: Magnet) -> FileSelection | None:
    """``--select`` if given, else the magnet's ``so=`` (BEP 53), else None (every file)."""
    if select:
        return FileSelection.parse(select)
    if magnet.select_only:
        return FileSelection(magnet.select_only)
    return None


def check_selection(info: Info, selection: FileSelection | None, *, stdout: bool = False) -> None:
    """UsageError when a term chooses nothing, nothing at all is chosen, or --stdout has not one file."""
    if stdout:
        pick_stream_file(info, tuple(selection.resolve(info)) if selection is not None else None, None)
    if selection is None:
        return
    bad = selection.unmatched(info)
    if bad:
        raise UsageError(f"--select: no file matches {', '.join(bad)}; see the indices with --list")
    if not any(selection.resolve(info)):
        raise UsageError("--select chose no file; see the indices with --list")


def describe_choice(info: Info, selection: FileSelection) -> str:
    """One line for people: how many files are chosen and their size."""
    flags = selection.resolve(info)
    real = sum(1 for f in info.files if not f.pad)
    return f"chosen: {sum(flags)} of {real} file(s), {human_size(selected_length(info, flags))}"


def print_file_list(info: Info, json_output: bool) -> None:
    """The files of ``info`` with the indices --select and so= use (pad files left out)."""
    rows = [
        (i, "/".join(p), f.length)
        for i, (p, f) in enumerate(zip(info.file_paths(), info.files, strict=True))
        if not f.pad
    ]
    if json_output:
        print_json(
            {
                "event": "files",
                "name": info.name,
                "files": [{"index": i, "path": path, "length": n} for i, path, n in rows],
            }
        )
        return
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("index", justify="right")
    table.add_column("size", justify="right")
    table.add_column("file")
    for i, path, n in rows:
        table.add_row(str(i), human_size(n), path)
    out_console.print(table)


def _writer(fd: int) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    return write


@contextlib.contextmanager
def stdout_stream(enabled: bool) -> Iterator[StreamRequest | None]:
    """With ``enabled``: a StreamRequest onto the real standard output, everything else printed
    going to standard error meanwhile (fd 1 points at fd 2); restored on exit."""
    if not enabled:
        yield None
        return
    sys.stdout.flush()
    stream_fd = os.dup(1)
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield StreamRequest(_writer(stream_fd))
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(stream_fd)
