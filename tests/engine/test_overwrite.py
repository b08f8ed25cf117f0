"""Never destroy data p2pshare did not write: each case of the check of existing files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from p2pshare.cli.app import app
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.metainfo import build_info
from p2pshare.engine.create import CreatedTorrent
from p2pshare.engine.overwrite import files_at_risk
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.resume import save_resume
from p2pshare.errors import ExistingFileError, ExitCode
from p2pshare.io.storage import FileStorage
from tests.engine.conftest import MakeSession, MakeShare, seed, wait_complete

PIECE = 32768
USER_TEXT = b"my own notes, not a download\n" * 50


def _share(make_share: MakeShare) -> CreatedTorrent:
    return make_share({"notes.txt": 8 * PIECE, "other.bin": 3 * PIECE}, piece_length=PIECE)


async def _get(sessions: MakeSession, share: CreatedTorrent, out: Path, **kw: object):  # type: ignore[no-untyped-def]
    s = await sessions("127.0.40.2")
    return await s.add_torrent(TorrentParams(share.info.info_hash, info=share.info, download_dir=out, **kw))  # type: ignore[arg-type]


def _target(share: CreatedTorrent, out: Path, name: str = "notes.txt") -> Path:
    return out / share.info.name / name


async def test_a_users_file_of_the_same_name_stops_the_download_before_anything_is_written(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """No resume record and no verifying piece: ExistingFileError naming the file; nothing written."""
    share = _share(make_share)
    out = tmp_path / "out"
    target = _target(share, out)
    target.parent.mkdir(parents=True)
    target.write_bytes(USER_TEXT)
    with pytest.raises(ExistingFileError, match=r"notes\.txt") as err:
        await _get(sessions, share, out)
    assert err.value.exit_code == ExitCode.EXISTING_FILE
    assert target.read_bytes() == USER_TEXT
    assert sorted(p.name for p in target.parent.iterdir()) == ["notes.txt"]


async def test_overwrite_allows_it_and_the_download_replaces_the_file(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """With --overwrite (params.overwrite) the same situation downloads and the file gets the shared bytes."""
    share = _share(make_share)
    seed_s = await sessions("127.0.40.1")
    await seed(seed_s, share)
    out = tmp_path / "out"
    target = _target(share, out)
    target.parent.mkdir(parents=True)
    target.write_bytes(USER_TEXT)
    t = await _get(sessions, share, out, overwrite=True)
    t.add_peers([("127.0.40.1", seed_s.port)], "test")
    await wait_complete(t, 20)
    assert target.read_bytes() == share.paths[0].read_bytes()


async def test_another_clients_partial_file_is_resumed_and_kept(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """A file whose first pieces verify (a different, shorter size) is kept: those pieces count as had."""
    share = _share(make_share)
    out = tmp_path / "out"
    target = _target(share, out)
    target.parent.mkdir(parents=True)
    target.write_bytes(share.paths[0].read_bytes()[: 3 * PIECE + 100])
    t = await _get(sessions, share, out)
    assert t.picker is not None and {0, 1, 2} <= set(t.picker.have)
    assert target.read_bytes()[: 3 * PIECE] == share.paths[0].read_bytes()[: 3 * PIECE]


async def test_a_different_size_without_any_verifying_piece_stops(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """A larger file of other bytes (no piece verifies) is not ours: the download stops."""
    share = _share(make_share)
    out = tmp_path / "out"
    target = _target(share, out, "other.bin")
    target.parent.mkdir(parents=True)
    target.write_bytes(os.urandom(5 * PIECE))
    with pytest.raises(ExistingFileError, match=r"other\.bin"):
        await _get(sessions, share, out)
    assert target.stat().st_size == 5 * PIECE


async def test_with_our_resume_record_the_files_are_ours(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """A resume record of ours for this download means the files are ours, verifying or not."""
    share = _share(make_share)
    out = tmp_path / "out"
    target = _target(share, out)
    target.parent.mkdir(parents=True)
    target.write_bytes(USER_TEXT)
    resume = tmp_path / "state" / "x.resume"
    storage = FileStorage(share.info, out)
    await save_resume(
        resume, share.info.info_hash.value, Bitfield(share.info.num_pieces), storage.file_sizes_and_mtimes()
    )
    t = await _get(sessions, share, out, resume_path=resume)
    assert t.picker is not None and len(t.picker.have) == 0


async def test_an_empty_existing_file_holds_nothing_to_lose(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """An existing empty file does not stop the download."""
    share = _share(make_share)
    out = tmp_path / "out"
    target = _target(share, out)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    t = await _get(sessions, share, out)
    assert t.picker is not None


def test_files_at_risk_are_the_non_empty_existing_ones_without_a_verifying_piece() -> None:
    """Only files that exist, are not empty and have no piece in ``have`` are at risk."""
    info = build_info(
        "t",
        [(("a",), 2 * PIECE), (("b",), 2 * PIECE), (("c",), PIECE), (("d",), PIECE)],
        PIECE,
        bytes(20 * 6),
        single_file=False,
    )
    have = Bitfield(6)
    have.add(1)
    fps = [(5, 0), (7, 0), (0, 0), None]
    assert files_at_risk(info.geometry, fps, have) == [1]


def test_the_cli_exits_with_the_existing_file_code_and_one_line_naming_the_file(
    make_share: MakeShare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`get` into a folder holding a user's file of the same name exits 12 with one error line naming it."""
    share = _share(make_share)
    torrent = tmp_path / "t.torrent"
    torrent.write_bytes(share.torrent)
    out = tmp_path / "out"
    target = _target(share, out)
    target.parent.mkdir(parents=True)
    target.write_bytes(USER_TEXT)
    monkeypatch.setenv("P2PSHARE_STATE_DIR", str(tmp_path / "state"))
    result = CliRunner().invoke(
        app, ["get", str(torrent), "-o", str(out), "--no-dht", "--peer", "127.0.0.1:9", "--timeout", "5"]
    )
    assert result.exit_code == ExitCode.EXISTING_FILE, result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "notes.txt" in errors[0] and "--overwrite" in errors[0]
    assert target.read_bytes() == USER_TEXT
