"""v2 and hybrid swarms with libtorrent on loopback: downloads by v2 hash both ways."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from p2pshare.engine.create import CreatedTorrent, create_torrent
from p2pshare.engine.params import TorrentParams
from tests.engine.conftest import MakeSession, wait_complete, wait_until
from tests.helpers import make_tree
from tests.interop.conftest import MakeLt
from tests.interop.ltpeer import add_torrent, is_seeding, lt, wait_for

pytestmark = pytest.mark.interop

SPEC = {"a/one.bin": 300_001, "a/two.bin": 65_536, "b/empty.txt": 0, "c.bin": 123_457, "d.txt": 900}


def _share(tmp_path: Path, fmt: str, piece_length: int = 32768) -> CreatedTorrent:
    root = tmp_path / "src" / "share"
    make_tree(root, SPEC, seed=7)
    return create_torrent(root, piece_length=piece_length, format=fmt)  # type: ignore[arg-type]


def _same_files(share: CreatedTorrent, out: Path) -> None:
    """Every real file of ``share`` is under ``out`` with the same bytes; no pad file was written."""
    for f in share.selection.files:
        dst = out / share.selection.name / Path(*f.parts)
        assert dst.is_file(), f"{dst} was not created"
        assert filecmp.cmp(f.path, dst, shallow=False), f"{dst} differs"
    assert not list(out.rglob(".pad")), "a pad file was written to disk"


def _seed_params(share: CreatedTorrent) -> TorrentParams:
    return TorrentParams(
        share.info.info_hash,
        info=share.info,
        download_dir=share.selection.root,
        file_paths=share.paths,
        assume_complete=True,
        piece_layers=share.piece_layers,
    )



@pytest.mark.parametrize("fmt", ["v2", "hybrid"])
async def test_p2pshare_downloads_a_libtorrent_seed_by_btmh(
    sessions: MakeSession, lt_sessions: MakeLt, tmp_path: Path, fmt: str
) -> None:
    """p2pshare, knowing only the v2 hash, gets the manifest, piece layers and pieces from libtorrent."""
    share = _share(tmp_path, fmt)
    v2 = share.info.info_hash_v2
    assert v2 is not None
    ses, port = lt_sessions("127.0.0.21")
    handle = add_torrent(ses, share.torrent, share.selection.root.parent)
    wait_for(lambda: is_seeding(handle), 20, "libtorrent to check and seed")
    us = await sessions("127.0.0.22")
    out = tmp_path / "out"
    t = await us.add_torrent(TorrentParams(v2.truncated, info_hash_v2=v2, download_dir=out))
    t.add_peers([("127.0.0.21", port)], "test")
    await wait_complete(t, 30)
    _same_files(share, out)
    assert t.status().pieces_failed == 0
    assert t.hashes.metainfo is not None
    # joined by the v2 hash, v2-only and hybrid alike wait for every layer: each piece met the tree
    assert dict(t.hashes.metainfo.piece_layers) == share.piece_layers


@pytest.mark.parametrize("fmt", ["v2", "hybrid"])
async def test_libtorrent_downloads_our_share_from_a_btmh_magnet(
    sessions: MakeSession, lt_sessions: MakeLt, tmp_path: Path, fmt: str
) -> None:
    """libtorrent, given only a btmh magnet, fetches our manifest and piece layers and every piece."""
    share = _share(tmp_path, fmt)
    v2 = share.info.info_hash_v2
    assert v2 is not None
    us = await sessions("127.0.0.23")
    seed = await us.add_torrent(_seed_params(share))
    ses, _ = lt_sessions("127.0.0.24")
    params = lt.parse_magnet_uri(f"magnet:?xt=urn:btmh:1220{v2.hex}")
    out = tmp_path / "lt_out"
    params.save_path = str(out)
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    handle = ses.add_torrent(params)
    handle.connect_peer(("127.0.0.23", us.port))
    await wait_until(lambda: bool(handle.status().is_seeding), 30, "libtorrent to finish")
    _same_files(share, out)
    assert seed.uploaded >= share.info.data_length
