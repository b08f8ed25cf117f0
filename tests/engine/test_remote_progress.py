"""Remote progress: haves go to every peer (seeds too), and a peer that has everything is reported once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from p2pshare.config import CoopConfig
from p2pshare.core.wire import messages as wm
from p2pshare.engine import events as ev
from p2pshare.engine.coop import lookup_pause
from tests.engine.memory_swarm import dial, make_payload, memory_swarm, of, quick_config, until


async def test_a_downloader_tells_the_seed_each_piece_and_the_seed_sees_it_complete(tmp_path: Path) -> None:
    """The seed learns every piece of a downloader through haves, so its status and events show completion."""
    async with memory_swarm(tmp_path) as swarm:
        info, data = make_payload(6 * 16384, 16384)
        seeder, seed_host = await swarm.add("127.0.16.1", info, data=data)
        leecher, _ = await swarm.add("127.0.16.2", info)
        leecher.add_peers([seed_host.address], "test")
        await until(lambda: leecher.completed.is_set(), "the download", timeout=10)
        await until(
            lambda: bool(of(swarm.events["127.0.16.1"], ev.PeerCompleted)), "peer_completed at the seed"
        )
        done = of(swarm.events["127.0.16.1"], ev.PeerCompleted)
        assert len(done) == 1 and done[0].address.startswith("127.0.16.2")
        assert seeder.completed.is_set()


async def test_a_raw_peer_gets_a_have_from_a_downloader_even_when_it_is_a_seed(tmp_path: Path) -> None:
    """A downloader sends have for each verified piece to a peer that already has every piece."""
    async with memory_swarm(tmp_path) as swarm:
        info, data = make_payload(4 * 16384, 16384)
        _leecher, host = await swarm.add("127.0.17.1", info)
        peer = await dial(swarm, host, info, "127.0.17.2")
        await until(lambda: bool(peer.wire), "the downloader's first message")
        peer.send(wm.HaveAll(), wm.Unchoke())
        await until(lambda: bool(peer.of(wm.Request)), "a request")
        for req in peer.of(wm.Request):
            peer.send(wm.Piece(req.index, req.begin, data[req.index * 16384 + req.begin :][: req.length]))
        await until(lambda: len(peer.of(wm.Have)) >= 1, "a have sent to a seed")
        assert all(h.index < info.num_pieces for h in peer.of(wm.Have))


async def test_peer_completed_is_emitted_once_when_the_last_have_arrives(tmp_path: Path) -> None:
    """Haves one by one: peer_completed comes with the last one, and a repeated have adds none."""
    async with memory_swarm(tmp_path) as swarm:
        info, data = make_payload(4 * 16384, 16384)
        _, host = await swarm.add("127.0.18.1", info, data=data)
        peer = await dial(swarm, host, info, "127.0.18.2")
        await until(lambda: bool(peer.wire), "the seed's first message")
        peer.send(wm.HaveNone())
        events = swarm.events["127.0.18.1"]
        for i in range(3):
            peer.send(wm.Have(i))
        peer.send(wm.KeepAlive())
        await until(lambda: bool(of(events, ev.PeerConnected)), "the connection")
        assert not of(events, ev.PeerCompleted)
        peer.send(wm.Have(3), wm.Have(3))
        await until(lambda: bool(of(events, ev.PeerCompleted)), "peer_completed")
        assert len(of(events, ev.PeerCompleted)) == 1


def test_lookups_repeat_often_while_few_peers_are_connected_then_every_few_minutes() -> None:
    """Below the few-peers mark the pause is the short one; at or above it, the long one."""
    cfg = CoopConfig(lookup_few_peers=3, lookup_pause_few=4.0, lookup_pause_many=200.0)
    assert [lookup_pause(n, cfg) for n in range(5)] == [4.0, 4.0, 4.0, 200.0, 200.0]


async def test_a_downloader_uploads_verified_pieces_to_a_newcomer_within_seconds(tmp_path: Path) -> None:
    """While B still downloads from a capped seed, newcomer C (linked to B only) gets pieces from B in 2 s."""
    async with memory_swarm(tmp_path) as swarm:
        info, data = make_payload(64 * 16384, 16384)
        base = quick_config()
        capped = replace(base, coop=replace(base.coop, max_up=128 * 1024))
        _, seed_host = await swarm.add("127.0.25.1", info, data=data, config=capped)
        b, b_host = await swarm.add("127.0.25.2", info)
        b.add_peers([seed_host.address], "test")
        await until(lambda: b.picker is not None and len(b.picker.have) >= 4, "B's first pieces")
        c, _ = await swarm.add("127.0.25.3", info)
        c.add_peers([b_host.address], "test")
        await until(lambda: c.picker is not None and len(c.picker.have) >= 1, "a piece from B", timeout=2)
        assert not b.completed.is_set()
        assert b.uploaded > 0
