"""Rules the engine keeps towards a well-behaved peer: BEP 6 answers, and what a peer may make us do.

The wire rules run a real Torrent through in-memory links (no sockets); the caps test the PeerBook.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from p2pshare.config import DEFAULT_CONFIG, SwarmConfig
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire import messages as wm
from p2pshare.engine.peer_book import PeerBook
from tests.engine.memory_swarm import RawPeer, Swarm, dial, make_payload, memory_swarm, until


async def _fast_peer(swarm: Swarm, source: str, dht_port: int | None = None) -> RawPeer:
    """A raw fast-extension peer connected to a seed, interested and unchoked."""
    info, data = make_payload(4 * 16384, 16384)
    _, host = await swarm.add("127.0.14.1", info, data=data, dht_port=dht_port)
    peer = await dial(swarm, host, info, source)
    await until(lambda: bool(peer.wire), "the seed's first message")
    peer.send(wm.HaveNone(), wm.Interested())
    await until(lambda: bool(peer.of(wm.Unchoke)), "the seed to unchoke us")
    return peer


async def test_a_cancelled_request_from_a_fast_peer_still_gets_exactly_one_answer(tmp_path: Path) -> None:
    """BEP 6: every request gets exactly one answer, a piece or a reject, even when it is cancelled."""
    async with memory_swarm(tmp_path) as swarm:
        peer = await _fast_peer(swarm, "127.0.14.2")
        peer.send(wm.Request(1, 0, 16384), wm.Cancel(1, 0, 16384))

        def answers() -> list[wm.Message]:
            return [
                m
                for m in peer.wire
                if (isinstance(m, wm.RejectRequest) and (m.index, m.begin, m.length) == (1, 0, 16384))
                or (isinstance(m, wm.Piece) and (m.index, m.begin) == (1, 0))
            ]

        await until(lambda: bool(answers()), "an answer to the request")
        await asyncio.sleep(0.3)  # room for a wrong second answer
        assert len(answers()) == 1, answers()


async def test_a_peer_can_name_its_dht_port_once_per_connection(tmp_path: Path) -> None:
    """Only the first BEP 3 port message reaches the DHT; repeats cannot make us probe other ports."""
    async with memory_swarm(tmp_path) as swarm:
        info, data = make_payload(4 * 16384, 16384)
        _, host = await swarm.add("127.0.15.1", info, data=data, dht_port=6881)
        peer = await dial(swarm, host, info, "127.0.15.2")
        await until(lambda: bool(peer.wire), "the seed's first message")
        peer.send(wm.HaveNone(), *(wm.Port(7000 + i) for i in range(20)), wm.Interested())
        await until(lambda: bool(peer.of(wm.Unchoke)), "the seed to read everything we sent")
        assert host.dht_nodes == [("127.0.15.2", 7000)]


def test_bans_and_per_address_totals_stay_bounded() -> None:
    """Peers from ever new addresses cannot grow the ban list or the per-address totals past their caps."""
    book = PeerBook(SwarmConfig(max_banned_ips=3, max_known_peers=5))
    for i in range(20):
        addr = PeerAddress(f"127.9.{i}.1", 6881)
        book.detached(addr, outgoing=True, worked=True, down=100, up=0, now=0.0)
        book.ban(addr.host)
    assert list(book.banned) == ["127.9.17.1", "127.9.18.1", "127.9.19.1"]  # the newest bans stay
    totals = book.transfer_by_host(())
    assert len(totals) == 6  # five addresses and one "other" row
    assert sum(down for down, _ in totals.values()) == 2000  # nothing lost, only folded
    assert DEFAULT_CONFIG.swarm.max_banned_ips > 3  # the test's caps are its own
