"""PEX (BEP 11) with libtorrent, both ways: each learns a third peer only from the other's ut_pex."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pshare.core.types import PeerAddress
from p2pshare.engine import events as ev
from p2pshare.engine.params import TorrentParams
from tests.engine.conftest import EventLog, MakeSession, MakeShare, wait_until
from tests.interop.conftest import MakeLt
from tests.interop.ltpeer import add_torrent, lt

pytestmark = pytest.mark.interop

# Nobody seeds: every connection stays (no one finishes), and PEX is all that is tested.
SPEC = {"payload.bin": 4 * 1024 * 1024}


async def test_p2pshare_learns_a_peer_from_libtorrents_ut_pex(
    make_share: MakeShare, sessions: MakeSession, lt_sessions: MakeLt, tmp_path: Path
) -> None:
    """We dial only libtorrent A; A's ut_pex names libtorrent B; we add B from source pex and connect."""
    share = make_share(SPEC, piece_length=65536)
    a, a_port = lt_sessions("127.0.0.50")
    b, b_port = lt_sessions("127.0.0.51")
    ha = add_torrent(a, share.torrent, tmp_path / "a")
    add_torrent(b, share.torrent, tmp_path / "b").connect_peer(("127.0.0.50", a_port))
    await wait_until(lambda: ha.status().num_peers >= 1, 15, "libtorrent B to connect to A")
    us = await sessions("127.0.0.52")
    log = EventLog()
    t = await us.add_torrent(
        TorrentParams(share.info.info_hash, info=share.info, download_dir=tmp_path / "us"), on_event=log
    )
    t.add_peers([("127.0.0.50", a_port)], "test")
    b_addr = PeerAddress("127.0.0.51", b_port)
    await wait_until(lambda: any(p.address[0] == "127.0.0.51" for p in t.peers.values()), 90, "a link to B")
    assert t.pex.received >= 1
    assert any(e.source == "pex" for e in log.of(ev.PeersFound))
    assert b_addr in t.book.known and t.book.known[b_addr].source == "pex"


async def test_libtorrent_learns_a_peer_from_our_ut_pex(
    make_share: MakeShare, sessions: MakeSession, lt_sessions: MakeLt, tmp_path: Path
) -> None:
    """libtorrent A knows only us; our ut_pex names p2pshare peer C; A dials C, its record saying PEX."""
    share = make_share(SPEC, piece_length=65536)
    a, a_port = lt_sessions("127.0.0.53")
    ha = add_torrent(a, share.torrent, tmp_path / "a")
    hub_s = await sessions("127.0.0.54")
    hub = await hub_s.add_torrent(
        TorrentParams(share.info.info_hash, info=share.info, download_dir=tmp_path / "hub")
    )
    c_s = await sessions("127.0.0.55")
    c = await c_s.add_torrent(
        TorrentParams(share.info.info_hash, info=share.info, download_dir=tmp_path / "c")
    )
    c.pex.enabled = False  # C must not learn A (and dial it) itself: only A's dial can join them
    c.add_peers([("127.0.0.54", hub_s.port)], "test")
    hub.add_peers([("127.0.0.53", a_port)], "test")

    def a_has_c_from_pex() -> bool:
        return any(
            p.ip[0] == "127.0.0.55" and int(p.source) & int(lt.peer_info.pex) and p.ip[1] == c_s.port
            for p in ha.get_peer_info()
        )

    await wait_until(a_has_c_from_pex, 30, "libtorrent to connect to C through PEX")
    await wait_until(lambda: any(p.address[0] == "127.0.0.53" for p in c.peers.values()), 10, "C to see A")
    assert hub.pex.sent >= 1
