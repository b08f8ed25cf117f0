"""Choosing files on a real swarm: only chosen files appear, straddling pieces whole, done counts them."""

from __future__ import annotations

import filecmp
from pathlib import Path

from p2pshare.core.selection import FileSelection
from p2pshare.engine import events as ev
from p2pshare.engine.params import TorrentParams
from tests.engine.conftest import EventLog, MakeSession, MakeShare, seed, wait_complete, wait_until

#: sizes chosen so every file boundary falls inside a 16 KiB piece
SPEC = {"a.bin": 10_000, "b/movie.mkv": 50_000, "b/subs.srt": 3_000, "c.bin": 40_000}


async def test_selected_files_arrive_and_no_other_file_appears(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """Choosing two files across piece boundaries gives them byte for byte, and nothing else in the folder."""
    share = make_share(SPEC, piece_length=16384)
    s1 = await sessions("127.0.7.1")
    await seed(s1, share)
    s2 = await sessions("127.0.7.2")
    out = tmp_path / "out"
    log = EventLog()
    select = FileSelection.parse(["*.srt", "0"])
    params = TorrentParams(share.info.info_hash, info=share.info, download_dir=out, select=select)
    t = await s2.add_torrent(params, on_event=log)
    t.add_peers([("127.0.7.1", s1.port)], "test")
    await wait_complete(t, 15)
    chosen = {"a.bin", "b/subs.srt"}
    for src, parts in zip(share.paths, share.info.file_paths(), strict=True):
        dst = out.joinpath(*parts)
        rel = "/".join(parts[1:])
        if rel in chosen:
            assert filecmp.cmp(src, dst, shallow=False), f"{rel} differs"
        else:
            assert not dst.exists(), f"{rel} was created though not chosen"
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert hidden == [f".{share.info.info_hash.hex}.parts"]
    st = t.status()
    assert st.total_size == st.verified_bytes == 13_000
    assert st.have_pieces < st.num_pieces
    assert log.of(ev.Completed)[0].total_size == 13_000


async def test_selection_after_the_manifest_arrives(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """With only the info hash, the choice applies once the manifest is fetched from the peer."""
    share = make_share(SPEC, piece_length=16384)
    s1 = await sessions("127.0.7.3")
    await seed(s1, share)
    s2 = await sessions("127.0.7.4")
    out = tmp_path / "out"
    params = TorrentParams(share.info.info_hash, download_dir=out, select=FileSelection.parse(["c.bin"]))
    t = await s2.add_torrent(params)
    t.add_peers([("127.0.7.3", s1.port)], "test")
    await wait_complete(t, 15)
    assert (out / "share" / "c.bin").read_bytes() == share.paths[3].read_bytes()
    assert sorted(p.name for p in (out / "share").iterdir()) == ["c.bin"]


async def test_a_second_run_resumes_a_selection(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """A finished selection found again on disk (straddling pieces via the parts file) is complete at once."""
    share = make_share(SPEC, piece_length=16384)
    s1 = await sessions("127.0.7.5")
    await seed(s1, share)
    out = tmp_path / "out"
    select = FileSelection.parse(["b/movie.mkv"])
    s2 = await sessions("127.0.7.6")
    t = await s2.add_torrent(
        TorrentParams(share.info.info_hash, info=share.info, download_dir=out, select=select)
    )
    t.add_peers([("127.0.7.5", s1.port)], "test")
    await wait_complete(t, 15)
    await t.close()
    s3 = await sessions("127.0.7.7")
    again = await s3.add_torrent(
        TorrentParams(share.info.info_hash, info=share.info, download_dir=out, select=select)
    )
    await wait_until(lambda: again.completed.is_set(), 10, "the re-check of the selection")
    assert again.downloaded == 0
