"""Streaming one file while it downloads: ``get --select FILE --stdout``.

Theory of operation
-------------------
The torrent downloads sequentially (the picker's read-ahead window starts at the
first missing piece), so the file's pieces tend to arrive in order.  The streamer
walks the file's pieces in order; for each it waits until the piece is *verified*
(it is in the picker's ``have``), reads it back (through the upload read cache),
cuts out the bytes that belong to the file and hands them to the sink in chunks.
The sink may block (a pipe to a player that is not reading), so it is called on a
worker thread and the event loop, and uploads to others, go on meanwhile.  No byte
is ever written that a hash has not checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2pshare.config import StreamConfig
from p2pshare.errors import P2PShareError, StorageError, UsageError

if TYPE_CHECKING:
    from p2pshare.core.metainfo import Info
    from p2pshare.engine.torrent import Torrent

__all__ = ["StreamClosed", "StreamRequest", "pick_stream_file", "stream_file"]


class StreamClosed(P2PShareError):
    """The reader of the stream went away (a player quit): nothing more can be written."""


@dataclass(frozen=True)
class StreamRequest:
    """Which file to stream, and where its bytes go."""

    write: Callable[[bytes], None]  #: blocking sink (called on a worker thread), e.g. stdout's write
    file_index: int | None = None  #: None: the one file the selection chose


def pick_stream_file(info: Info, selected: tuple[bool, ...] | None, wanted: int | None) -> int:
    """The index of the file to stream: ``wanted``, else the only chosen (or only real) file."""
    if wanted is not None:
        if not 0 <= wanted < len(info.files) or info.files[wanted].pad:
            raise UsageError(f"--stdout: there is no file {wanted}; see get --list")
        return wanted
    if selected is None:
        candidates = [i for i, f in enumerate(info.files) if not f.pad]
    else:
        candidates = [i for i, chosen in enumerate(selected) if chosen]
    if len(candidates) != 1:
        raise UsageError(
            f"--stdout streams one file, but {len(candidates)} are chosen; pick one with --select"
        )
    return candidates[0]


async def stream_file(torrent: Torrent, request: StreamRequest, cfg: StreamConfig) -> int:
    """Write one file of ``torrent`` to ``request.write`` in order, each piece verified first.

    Returns the bytes written.  Raises UsageError when no single file is chosen,
    StreamClosed when the sink is closed, StorageError when a verified piece cannot be read.
    """
    await torrent.metadata_ready.wait()
    info, picker, pieces = torrent.info, torrent.picker, torrent.pieces
    assert info is not None and picker is not None and pieces is not None
    index = pick_stream_file(info, torrent.choice.selected, request.file_index)
    entry = info.files[index]
    start, end = entry.offset, entry.offset + entry.length
    g = info.geometry
    loop = asyncio.get_running_loop()
    written = 0
    for p in g.pieces_for_file(index):
        while p not in picker.have:
            if torrent.closed:
                raise StorageError("the torrent closed before the file was complete")
            await asyncio.sleep(cfg.stdout_poll)
        data = await pieces.read_piece(p)
        if data is None:
            raise StorageError(f"piece {p} was verified but cannot be read back")
        base = g.piece_offset(p)
        part = memoryview(data)[max(start, base) - base : min(end, base + len(data)) - base]
        for at in range(0, len(part), cfg.stdout_chunk):
            chunk = bytes(part[at : at + cfg.stdout_chunk])
            try:
                await loop.run_in_executor(None, request.write, chunk)
            except (BrokenPipeError, ValueError) as exc:  # ValueError: write to a closed file
                raise StreamClosed(f"the stream's reader closed it ({exc})") from None
            written += len(chunk)
    return written
