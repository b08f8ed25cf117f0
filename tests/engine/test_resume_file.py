"""The resume file round-trips through the event loop's aiofiles writer."""

from __future__ import annotations

from pathlib import Path

from p2pshare.core.bitfield import Bitfield
from p2pshare.engine.resume import load_resume, save_resume


async def test_a_saved_resume_file_loads_back_and_a_foreign_one_does_not(tmp_path: Path) -> None:
    """save_resume writes what load_resume reads; another info hash or bitfield length reads as None."""
    have = Bitfield(10)
    for i in (0, 3, 9):
        have.add(i)
    path = tmp_path / "r" / "x.resume"
    await save_resume(path, b"\x01" * 20, have, [(100, 7), None])
    loaded = load_resume(path, b"\x01" * 20, 10)
    assert loaded is not None
    assert sorted(loaded[0]) == [0, 3, 9] and loaded[1] == [(100, 7), None]
    assert load_resume(path, b"\x02" * 20, 10) is None
    assert load_resume(path, b"\x01" * 20, 17) is None  # a bitfield of another length
