"""Whole sessions over uTP against libtorrent with TCP switched off, both directions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.transports import Transport
from p2pshare.io.peer_link import PeerLink
from p2pshare.io.utp_socket import UtpLink
from tests.engine.conftest import MakeSession, MakeShare, assert_same_files, seed, wait_complete, wait_until
from tests.interop.conftest import MakeLt
from tests.interop.ltpeer import add_torrent, lt_seed, save_path_of, wait_for

lt = pytest.importorskip("libtorrent")

pytestmark = pytest.mark.interop

UTP_ONLY: dict[str, Any] = {
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
}
SPEC = {"a/one.bin": 1_500_001, "a/two.bin": 65_536, "c.bin": 123_457}


def _mode(mode: str) -> Config:
    return replace(DEFAULT_CONFIG, transport=replace(DEFAULT_CONFIG.transport, mode=mode))


async def test_a_tcp_less_libtorrent_leecher_downloads_from_our_session(
    make_share: MakeShare, sessions: MakeSession, lt_sessions: MakeLt, tmp_path: Path
) -> None:
    """libtorrent with TCP off downloads a multi-file torrent from a p2pshare session over uTP."""
    share = make_share(SPEC, piece_length=32768)
    us = await sessions("127.0.3.1", _mode("utp"))
    t = await seed(us, share)
    ses, _ = lt_sessions("127.0.3.2", **UTP_ONLY, out_enc_policy=int(lt.enc_policy.disabled))
    out = tmp_path / "lt_out"
    h = add_torrent(ses, share.torrent, out)
    h.connect_peer(("127.0.3.1", us.port))
    await wait_until(lambda: bool(h.status().is_seeding), 60, "libtorrent to finish over uTP")
    await wait_until(lambda: _same(share, out), 10, "libtorrent's disk writes")
    assert us.utp.incoming.accepted >= 1
    assert t.uploaded >= share.info.total_length


def _same(share: Any, out: Path) -> bool:
    try:
        assert_same_files(share, out)
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize("mode", ["utp", "both"])
async def test_our_session_downloads_from_a_tcp_less_libtorrent_seeder(
    make_share: MakeShare, sessions: MakeSession, lt_sessions: MakeLt, tmp_path: Path, mode: str
) -> None:
    """p2pshare downloads from a uTP-only libtorrent seed; with both, TCP fails first and uTP follows."""
    share = make_share(SPEC, piece_length=32768)
    ses, port = lt_sessions("127.0.3.3", **UTP_ONLY)
    handle = lt_seed(ses, share.torrent, save_path_of(share.paths, share.info.file_paths()))
    wait_for(lambda: handle.status().state == lt.torrent_status.seeding, 20, "libtorrent to be ready")
    cfg = _mode(mode)
    cfg = replace(cfg, swarm=replace(cfg.swarm, connect_timeout=3.0))
    us = await sessions("127.0.3.4", cfg)
    out = tmp_path / "out"
    t = await us.add_torrent(TorrentParams(share.info.info_hash, info=share.info, download_dir=out))
    kinds: list[type] = []
    real_attach = t.attach

    def attach(link: Any, **kw: Any) -> None:
        kinds.append(type(link))
        real_attach(link, **kw)

    t.attach = attach  # type: ignore[method-assign]
    t.add_peers([("127.0.3.3", port)], "test")
    await wait_complete(t, 60)
    assert_same_files(share, out)
    if mode == "both":  # libtorrent accepts TCP and closes it at once; the next dial is uTP
        assert kinds[0] is PeerLink and kinds[-1] is UtpLink
        assert us.transports.order(("127.0.3.3", port)) == [Transport.UTP, Transport.TCP]
    else:
        assert kinds and all(k is UtpLink for k in kinds)
    assert us.transports.stats.dials[Transport.UTP.value] >= 1
