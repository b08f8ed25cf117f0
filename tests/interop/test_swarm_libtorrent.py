"""p2pshare and libtorrent exchange torrents on loopback, in both directions."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pshare.engine.params import TorrentParams
from tests.engine.conftest import MakeSession, MakeShare, assert_same_files, seed, wait_complete, wait_until
from tests.interop.conftest import MakeLt
from tests.interop.ltpeer import add_magnet, add_torrent, lt_seed, save_path_of

pytestmark = pytest.mark.interop

SPEC = {"a/one.bin": 300_001, "a/two.bin": 65_536, "b/empty.txt": 0, "c.bin": 123_457}


@pytest.mark.parametrize("magnet", [False, True], ids=["torrent", "info-hash"])
async def test_libtorrent_seeds_p2pshare_downloads(
    make_share: MakeShare, sessions: MakeSession, lt_sessions: MakeLt, tmp_path: Path, magnet: bool
) -> None:
    """p2pshare downloads a multi-file torrent from a libtorrent seed, from the manifest or the hash alone."""
    share = make_share(SPEC, piece_length=32768)
    lt, lt_port = lt_sessions("127.0.0.2")
    lt_seed(lt, share.torrent, save_path_of(share.paths, share.info.file_paths()))
    us = await sessions("127.0.0.3")
    out = tmp_path / "out"
    t = await us.add_torrent(
        TorrentParams(share.info.info_hash, info=None if magnet else share.info, download_dir=out)
    )
    t.add_peers([("127.0.0.2", lt_port)], "test")
    await wait_complete(t, 20)
    assert_same_files(share, out)
    assert t.status().pieces_failed == 0


@pytest.mark.parametrize("magnet", [False, True], ids=["torrent", "magnet"])
async def test_p2pshare_seeds_libtorrent_downloads(
    make_share: MakeShare, sessions: MakeSession, lt_sessions: MakeLt, tmp_path: Path, magnet: bool
) -> None:
    """libtorrent downloads a torrent (or, from a magnet, its metadata first) from a p2pshare seed."""
    share = make_share(SPEC, piece_length=16384)
    us = await sessions("127.0.0.4")
    t = await seed(us, share)
    lt, _ = lt_sessions("127.0.0.5")
    out = tmp_path / "lt_out"
    h = add_magnet(lt, share.info.info_hash.hex, out) if magnet else add_torrent(lt, share.torrent, out)
    h.connect_peer(("127.0.0.4", us.port))
    await wait_until(lambda: bool(h.status().is_seeding), 20, "libtorrent to finish")
    assert_same_files(share, out)
    assert t.uploaded >= share.info.total_length


async def test_every_libtorrent_seeder_contributes(
    make_share: MakeShare, sessions: MakeSession, lt_sessions: MakeLt, tmp_path: Path
) -> None:
    """A p2pshare leecher with four libtorrent seeders fetches pieces from every one of them."""
    share = make_share({"big.bin": 12 * 1024 * 1024}, piece_length=32768)
    save = save_path_of(share.paths, share.info.file_paths())
    hosts = [f"127.0.0.{i}" for i in range(6, 10)]
    addrs = []
    for host in hosts:
        lt, port = lt_sessions(host)
        lt_seed(lt, share.torrent, save)
        addrs.append((host, port))
    us = await sessions("127.0.0.10")
    out = tmp_path / "out"
    t = await us.add_torrent(TorrentParams(share.info.info_hash, info=share.info, download_dir=out))
    t.add_peers(addrs, "test")
    await wait_complete(t, 30)
    assert_same_files(share, out)
    by_host = t.transfer_by_host()
    got = {h: by_host.get(h, (0, 0))[0] for h in hosts}
    assert all(n > 0 for n in got.values()), f"some seeders sent nothing: {got}"
    assert sum(got.values()) >= share.info.total_length
