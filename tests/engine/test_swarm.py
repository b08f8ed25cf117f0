"""p2pshare swarms on loopback: many peers, multi-file layouts, bad peers, clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from p2pshare.config import DEFAULT_CONFIG
from p2pshare.engine import events as ev
from p2pshare.engine.params import TorrentParams
from p2pshare.errors import Violation
from p2pshare.io.storage import FileStorage
from tests.engine.conftest import (
    EventLog,
    MakeSession,
    MakeShare,
    assert_same_files,
    seed,
    seed_params,
    wait_complete,
    wait_until,
)


@pytest.mark.parametrize("super_seed", [False, True], ids=["plain", "super-seed"])
async def test_seeder_and_five_leechers_share_the_load(
    make_share: MakeShare,
    sessions: MakeSession,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    super_seed: bool,
) -> None:
    """With a seed and five leechers all finish, leechers feed each other, and the seed sends < 4 copies."""
    share = make_share({"payload.bin": 8 * 1024 * 1024}, piece_length=32768)
    total = share.info.total_length
    config = replace(DEFAULT_CONFIG, swarm=replace(DEFAULT_CONFIG.swarm, super_seed=super_seed))
    seed_s = await sessions("127.0.1.1", config)
    seeder = await seed(seed_s, share)
    leech_hosts = [f"127.0.1.{i}" for i in range(2, 7)]
    leechers = []
    for host in leech_hosts:
        s = await sessions(host)
        t = await s.add_torrent(
            TorrentParams(share.info.info_hash, info=share.info, download_dir=tmp_path / host)
        )
        leechers.append((s, t))
    addresses = [("127.0.1.1", seed_s.port)] + [
        (h, s.port) for h, (s, _) in zip(leech_hosts, leechers, strict=True)
    ]
    for host, (_, t) in zip(leech_hosts, leechers, strict=True):
        t.add_peers([a for a in addresses if a[0] != host], "test")
    async with asyncio.timeout(40):
        for _, t in leechers:
            await wait_complete(t, 40)
    for host, _ in zip(leech_hosts, leechers, strict=True):
        assert_same_files(share, tmp_path / host)
    leech_up = sum(t.uploaded for _, t in leechers)
    assert leech_up > 0
    for host, (_, t) in zip(leech_hosts, leechers, strict=True):
        from_others = sum(d for h, (d, _) in t.transfer_by_host().items() if h != "127.0.1.1")
        assert from_others > 0, f"leecher {host} got nothing from other leechers"
    ratio = seeder.uploaded / total
    with capsys.disabled():
        print(
            f"\n[swarm 1+5 {'super-seed' if super_seed else 'plain'}] seed sent {ratio:.2f} copies; "
            f"leechers uploaded {leech_up / total:.2f} copies"
        )
    assert seeder.uploaded < 4 * total, f"the seed sent {ratio:.2f} copies"


async def test_multi_file_odd_sizes_and_empty_files(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """Files whose sizes are not multiples of the piece size, and empty files, arrive identical."""
    spec = {
        "empty-first.txt": 0,
        "a/x.bin": 16385,
        "a/y.bin": 1,
        "a/deep/empty.dat": 0,
        "b.bin": 3 * 16384 - 7,
        "c/z.bin": 100_003,
        "zz-empty-last": 0,
    }
    share = make_share(spec, piece_length=16384)
    s1 = await sessions("127.0.2.1")
    await seed(s1, share)
    s2 = await sessions("127.0.2.2")
    out = tmp_path / "out"
    t = await s2.add_torrent(TorrentParams(share.info.info_hash, info=share.info, download_dir=out))
    t.add_peers([("127.0.2.1", s1.port)], "test")
    await wait_complete(t, 15)
    assert_same_files(share, out)
    assert (out / "share" / "a" / "deep" / "empty.dat").stat().st_size == 0


async def test_magnet_between_p2pshare_peers(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """A p2pshare peer with only the info hash gets the manifest and the files from another p2pshare peer."""
    share = make_share({"m/a.bin": 70_000, "m/b.bin": 5}, piece_length=16384)
    s1 = await sessions("127.0.2.3")
    await seed(s1, share)
    s2 = await sessions("127.0.2.4")
    out = tmp_path / "out"
    log = EventLog()
    t = await s2.add_torrent(TorrentParams(share.info.info_hash, info=None, download_dir=out), on_event=log)
    t.add_peers([("127.0.2.3", s1.port)], "test")
    await wait_complete(t, 15)
    assert_same_files(share, out)
    assert log.of(ev.MetadataReceived)


async def test_corrupting_peer_is_banned_and_files_complete(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """A peer whose pieces fail their hash check is banned, and the download completes from an honest peer."""
    share = make_share({"data.bin": 1024 * 1024}, piece_length=16384)
    bad_s = await sessions("127.0.3.66")

    class CorruptingStorage(FileStorage):
        def read_piece(self, index: int) -> bytes | None:
            data = super().read_piece(index)
            return None if data is None else bytes([data[0] ^ 0xFF]) + data[1:]

    await bad_s.add_torrent(
        seed_params(share),
        storage=lambda info: CorruptingStorage(info, share.paths[0].parent, paths=share.paths),
    )

    good_s = await sessions("127.0.3.1")
    await seed(good_s, share)
    me = await sessions("127.0.3.2")
    out = tmp_path / "out"
    log = EventLog()
    t = await me.add_torrent(
        TorrentParams(share.info.info_hash, info=share.info, download_dir=out), on_event=log
    )
    t.add_peers([("127.0.3.66", bad_s.port)], "test")
    await wait_until(lambda: bool(log.of(ev.PeerBanned)), 10, "the corrupting peer to be banned")
    banned = log.of(ev.PeerBanned)
    assert banned[0].address.startswith("127.0.3.66:")
    assert "hash" in banned[0].reason
    assert banned[0].kind is Violation.BAD_PIECE
    t.add_peers([("127.0.3.66", bad_s.port + 1), ("127.0.3.1", good_s.port)], "test")
    await wait_complete(t, 15)
    assert_same_files(share, out)
    status = t.status()
    assert status.pieces_failed >= 1
    assert not any(p.address.startswith("127.0.3.66:") for p in status.peers)


async def test_close_leaves_no_tasks_or_open_sockets(
    make_share: MakeShare, tmp_path: Path, no_resource_warnings: list[object]
) -> None:
    """After Session.close() no task of the engine is left and no socket or file stays open."""
    from p2pshare.engine.session import Session

    share = make_share({"l/a.bin": 400_000, "l/b.bin": 3}, piece_length=16384)
    before = set(asyncio.all_tasks())
    s1 = Session(listen_host="127.0.4.1")
    s2 = Session(listen_host="127.0.4.2")
    await s1.start()
    await s2.start()
    await seed(s1, share)
    t = await s2.add_torrent(
        TorrentParams(share.info.info_hash, info=share.info, download_dir=tmp_path / "out")
    )
    t.add_peers([("127.0.4.1", s1.port)], "test")
    # Close in the middle of the transfer, while blocks and verifications are in flight.
    await wait_until(lambda: t.status().have_pieces > 2, 10, "a few pieces")
    async with asyncio.timeout(10):
        await s2.close()
        await s1.close()
    await asyncio.sleep(0)
    left = [task for task in asyncio.all_tasks() - before if not task.done()]
    assert not left, f"tasks left: {left}"
    gc.collect()
    assert all(p.closed for p in t.peers.values())


async def test_dropped_peer_reason_is_logged(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When a peer is dropped the log says which peer and why."""
    share = make_share({"r/a.bin": 20_000, "r/b.bin": 1}, piece_length=16384)
    s1 = await sessions("127.0.4.3")
    await seed(s1, share)
    s2 = await sessions("127.0.4.4")
    t = await s2.add_torrent(
        TorrentParams(share.info.info_hash, info=share.info, download_dir=tmp_path / "o")
    )
    caplog.set_level(logging.INFO, logger="p2pshare.torrent")
    t.add_peers([("127.0.4.3", s1.port)], "test")
    await wait_complete(t, 10)
    await wait_until(lambda: "both sides are seeds" in caplog.text, 5, "the seed-to-seed drop to be logged")
    assert "127.0.4.3:" in caplog.text


async def test_pieces_larger_than_the_in_flight_budget_still_download(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """With pieces bigger than the whole piece-buffer budget, one piece at a time is still fetched."""
    config = replace(
        DEFAULT_CONFIG, storage=replace(DEFAULT_CONFIG.storage, max_pieces_in_flight_bytes=16384)
    )
    share = make_share({"big/a.bin": 5 * 65536 + 17}, piece_length=65536)
    s1 = await sessions("127.0.2.7")
    await seed(s1, share)
    s2 = await sessions("127.0.2.8", config)
    out = tmp_path / "out"
    t = await s2.add_torrent(TorrentParams(share.info.info_hash, info=share.info, download_dir=out))
    t.add_peers([("127.0.2.7", s1.port)], "test")
    await wait_complete(t, 15)
    assert_same_files(share, out)
