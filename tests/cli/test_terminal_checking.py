"""Checking files on disk before a run: counts, the resume state it leaves, and Ctrl-C between batches."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

import pytest

from p2pshare.config import DEFAULT_CONFIG
from p2pshare.core.metainfo import Info
from p2pshare.engine.checking import CheckStarted, check_files
from p2pshare.engine.create import create_torrent

PIECE = 16 * 1024
SMALL_BATCHES = replace(DEFAULT_CONFIG, terminal=replace(DEFAULT_CONFIG.terminal, check_batch_bytes=PIECE))


@pytest.fixture
def share(tmp_path: Path) -> tuple[Path, Info]:
    folder = tmp_path / "data" / "share"
    folder.mkdir(parents=True)
    (folder / "a.bin").write_bytes(os.urandom(40 * PIECE))
    (folder / "b.bin").write_bytes(os.urandom(24 * PIECE + 100))
    return tmp_path / "data", create_torrent(folder, piece_length=PIECE).info


async def test_a_complete_folder_checks_whole_and_counts_every_byte(share: tuple[Path, Info]) -> None:
    """Every piece of an intact folder is found; the bytes advanced add up to the size."""
    root, info = share
    seen: list[int] = []
    starts: list[CheckStarted] = []
    result = await check_files(info, root, DEFAULT_CONFIG, on_start=starts.append, advance=seen.append)
    assert result.complete and result.have_bytes == info.total_length
    assert sum(seen) == result.hashed_bytes == info.total_length == starts[0].to_hash
    assert not result.resumed


async def test_a_damaged_file_loses_its_pieces_and_the_resume_state_keeps_the_rest(
    share: tuple[Path, Info], tmp_path: Path
) -> None:
    """A cut file loses its pieces; a second check trusts the saved state and hashes only the changed file."""
    root, info = share
    b = root / "share" / "b.bin"
    b.write_bytes(b.read_bytes()[: 10 * PIECE])
    resume = tmp_path / "resume"
    first = await check_files(info, root, DEFAULT_CONFIG, resume_path=resume)
    assert first.have_pieces == 50 and not first.complete and resume.is_file()
    b.write_bytes(b.read_bytes() + b"x")  # changed again: only b's pieces are hashed
    second = await check_files(info, root, DEFAULT_CONFIG, resume_path=resume)
    assert second.resumed and second.have_pieces == 50  # a's 40 trusted, b's first 10 hashed again
    assert first.hashed_bytes == info.total_length
    assert second.hashed_bytes == 24 * PIECE + 100  # b's pieces only


async def test_cancelling_a_check_stops_its_thread_soon(share: tuple[Path, Info]) -> None:
    """Ctrl-C during a check stops it after the current batch, not at the end of the files."""
    root, info = share
    seen: list[int] = []
    first = asyncio.Event()
    loop = asyncio.get_running_loop()

    def advance(n: int) -> None:
        seen.append(n)
        loop.call_soon_threadsafe(first.set)

    task = asyncio.create_task(check_files(info, root, SMALL_BATCHES, advance=advance))
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    done = len(seen)
    await asyncio.sleep(0.2)
    assert len(seen) == done < 65  # nothing more after the cancel, and far from all 65 pieces
