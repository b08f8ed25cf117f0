"""Streaming and sequential downloads through the runner: in-order output, first bytes before the end."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from p2pshare.config import DEFAULT_CONFIG
from p2pshare.core.metainfo.build import build_info
from p2pshare.core.selection import FileSelection
from p2pshare.core.types import PeerAddress
from p2pshare.engine import runner
from p2pshare.engine.create import create_torrent
from p2pshare.engine.streamer import StreamRequest, pick_stream_file
from p2pshare.errors import UsageError
from tests.engine.conftest import wait_until
from tests.helpers import make_tree

#: a window of 8 pieces (not 8 MiB), so the order is visible in a 3 MB download
STREAM = replace(
    DEFAULT_CONFIG.stream, stdout_poll=0.002, stdout_chunk=10_000, read_ahead_pieces=8, read_ahead_bytes=0
)
CONFIG = replace(DEFAULT_CONFIG, stream=STREAM)


def options(host: str) -> runner.SwarmOptions:
    return runner.SwarmOptions(config=CONFIG, host=host, port=0, bootstrap=None, state=None)


class Sink:
    """Collects streamed bytes and notes how much of the download was verified at the first write."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.pieces_at_first_write: int | None = None
        self.swarm: runner.Swarm | None = None
        self.lock = threading.Lock()

    def write(self, chunk: bytes) -> None:
        with self.lock:
            if self.pieces_at_first_write is None and self.swarm is not None:
                self.pieces_at_first_write = self.swarm.status().have_pieces
            self.data += chunk


async def seeding(created: object, host: str) -> tuple[asyncio.Task[None], runner.Swarm]:
    swarms: list[runner.Swarm] = []
    task = asyncio.create_task(runner.seed(created, options(host), on_swarm=swarms.append))  # type: ignore[arg-type]
    await wait_until(lambda: bool(swarms), 10, "the seeder")
    return task, swarms[0]


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_stream_is_identical_and_starts_before_the_download_ends(tmp_path: Path) -> None:
    """The chosen file comes out byte for byte, and its first bytes come while pieces are still missing."""
    files = make_tree(tmp_path / "src" / "show", {"a-intro.txt": 7_000, "movie.mkv": 6_000_000, "z.srt": 900})
    created = create_torrent(tmp_path / "src" / "show", piece_length=16384)
    task, seed = await seeding(created, "127.0.9.1")
    try:
        sink = Sink()

        def attach(swarm: runner.Swarm) -> None:
            sink.swarm = swarm

        result = await asyncio.wait_for(
            runner.download(
                created.info.info_hash,
                options("127.0.9.2"),
                out_dir=tmp_path / "out",
                info=created.info,
                peers=[PeerAddress("127.0.9.1", seed.port)],
                select=FileSelection.parse(["movie.mkv"]),
                stream=StreamRequest(sink.write),
                on_swarm=attach,
                timeout=30,
            ),
            40,
        )
    finally:
        await stop(task)
    assert bytes(sink.data) == files["movie.mkv"].read_bytes()
    assert sink.pieces_at_first_write is not None
    assert sink.pieces_at_first_write < result.num_pieces // 2, "the stream waited for the whole download"
    assert not (tmp_path / "out" / "show" / "a-intro.txt").exists()


async def test_sequential_download_verifies_pieces_in_order(tmp_path: Path) -> None:
    """With --sequential the verified pieces form a prefix of the file, give or take the read-ahead window."""
    make_tree(tmp_path / "src" / "seq", {"big.bin": 3_000_000})
    created = create_torrent(tmp_path / "src" / "seq" / "big.bin", piece_length=16384)
    task, seed = await seeding(created, "127.0.9.3")
    gaps: list[int] = []
    try:
        swarms: list[runner.Swarm] = []

        async def watch() -> None:
            while not swarms or swarms[0].torrent.picker is None:
                await asyncio.sleep(0.001)
            picker = swarms[0].torrent.picker
            while not picker.complete:
                have = picker.have
                if len(have):
                    gaps.append(max(have) + 1 - picker.first_missing - (len(have) - picker.first_missing))
                await asyncio.sleep(0.001)

        watching = asyncio.create_task(watch())
        await asyncio.wait_for(
            runner.download(
                created.info.info_hash,
                options("127.0.9.4"),
                out_dir=tmp_path / "out",
                info=created.info,
                peers=[PeerAddress("127.0.9.3", seed.port)],
                sequential=True,
                on_swarm=swarms.append,
                timeout=30,
            ),
            40,
        )
        watching.cancel()
    finally:
        await stop(task)
    assert gaps, "no progress was observed"
    # missing pieces below the highest verified one stay within the read-ahead window
    assert max(gaps) <= CONFIG.stream.read_ahead_pieces


def test_stream_file_choice() -> None:
    """The streamed file is the one asked for, else the only chosen one; anything else is a usage error."""
    info = build_info("p", [(("a",), 10), (("b",), 10)], 16384, b"\0" * 20, single_file=False)
    assert pick_stream_file(info, (False, True), None) == 1
    assert pick_stream_file(info, None, 0) == 0
    with pytest.raises(UsageError, match="2 are chosen"):
        pick_stream_file(info, None, None)
    with pytest.raises(UsageError, match="no file 5"):
        pick_stream_file(info, None, 5)
