"""PEX in the engine: peers learn each other through a hub, and a flooding or oversized ut_pex is handled."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from p2pshare.config import Config
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire import messages as wm
from p2pshare.core.wire.extension import ExtensionHandshake
from p2pshare.core.wire.holepunch import UT_HOLEPUNCH
from p2pshare.core.wire.pex import UT_PEX, UT_PEX_ID, PexFlags, PexMessage, PexPeer, decode_pex, encode_pex
from p2pshare.engine import events as ev
from p2pshare.errors import Violation
from tests.engine.memory_swarm import dial, make_payload, memory_swarm, of, quick_config, until


def _config(**coop: float) -> Config:
    base = quick_config()
    return replace(base, coop=replace(base.coop, pex_first_delay=0.1, pex_interval=0.5, **coop))


async def test_two_peers_of_a_hub_learn_each_other_through_pex_and_connect(tmp_path: Path) -> None:
    """B and C dial only the hub; the hub's ut_pex names each to the other, and they connect."""
    async with memory_swarm(tmp_path) as swarm:
        info, _ = make_payload(64 * 16384, 16384)
        cfg = _config()
        hub, hub_host = await swarm.add("127.0.19.1", info, config=cfg)
        b, _ = await swarm.add("127.0.19.2", info, config=cfg)
        c, _ = await swarm.add("127.0.19.3", info, config=cfg)
        b.add_peers([hub_host.address], "test")
        c.add_peers([hub_host.address], "test")
        await until(lambda: len(b.peers) == 2 and len(c.peers) == 2, "B and C to connect", timeout=5)
        learned = [e for h in ("127.0.19.2", "127.0.19.3") for e in of(swarm.events[h], ev.PeersFound)]
        assert any(e.source == "pex" for e in learned)
        assert {p.address[0] for p in b.peers.values()} == {"127.0.19.1", "127.0.19.3"}
        assert hub.pex.sent >= 2


async def _pex_peer(swarm, info, host, source: str):  # type: ignore[no-untyped-def]
    peer = await dial(swarm, host, info, source, extensions=True)
    await until(lambda: bool(peer.wire), "the first message")
    peer.send(ExtensionHandshake(m={UT_PEX: 5}, p=7001), wm.HaveNone())
    return peer


async def test_the_engine_sends_ut_pex_with_its_own_peers_and_skips_the_receiver(tmp_path: Path) -> None:
    """A raw peer that offers ut_pex gets a BEP 11 message naming the other connected peer, not itself."""
    async with memory_swarm(tmp_path) as swarm:
        info, _ = make_payload(8 * 16384, 16384)
        cfg = _config()
        _, host = await swarm.add("127.0.20.1", info, config=cfg)
        first = await _pex_peer(swarm, info, host, "127.0.20.2")
        second = await _pex_peer(swarm, info, host, "127.0.20.3")

        def pex_msgs() -> list[PexMessage]:
            return [
                decode_pex(bytes(m.payload))
                for m in second.wire
                if isinstance(m, wm.Extended) and m.ext_id == 5
            ]

        await until(lambda: bool(pex_msgs()), "a ut_pex message", timeout=5)
        added = [p.address for p in pex_msgs()[0].added]
        assert added == [PeerAddress("127.0.20.2", 7001)]
        assert first.closed is False


async def test_an_oversized_ut_pex_drops_the_peer_as_too_large(tmp_path: Path) -> None:
    """A ut_pex with more added peers than the limit disconnects the sender with TOO_LARGE."""
    async with memory_swarm(tmp_path) as swarm:
        info, _ = make_payload(8 * 16384, 16384)
        _, host = await swarm.add("127.0.21.1", info, config=_config(pex_max_received=4))
        peer = await _pex_peer(swarm, info, host, "127.0.21.2")
        added = tuple(PexPeer(PeerAddress(f"127.0.22.{i}", 80)) for i in range(1, 6))
        peer.send(wm.Extended(UT_PEX_ID, encode_pex(PexMessage(added))))
        await until(lambda: peer.closed is not False, "the drop")
        (gone,) = of(swarm.events["127.0.21.1"], ev.PeerDisconnected)
        assert gone.kind is Violation.TOO_LARGE


async def test_ut_pex_sooner_than_the_minimum_gap_is_ignored(tmp_path: Path) -> None:
    """The first message's peers are learned; a second one right after it is ignored, not obeyed."""
    async with memory_swarm(tmp_path) as swarm:
        info, _ = make_payload(8 * 16384, 16384)
        t, host = await swarm.add("127.0.23.1", info, config=_config(pex_min_gap=30.0))
        peer = await _pex_peer(swarm, info, host, "127.0.23.2")
        one = PexMessage((PexPeer(PeerAddress("127.0.24.1", 80)),))
        two = PexMessage((PexPeer(PeerAddress("127.0.24.2", 80)),))
        peer.send(wm.Extended(UT_PEX_ID, encode_pex(one)), wm.Extended(UT_PEX_ID, encode_pex(two)))
        peer.send(wm.KeepAlive())
        await until(lambda: PeerAddress("127.0.24.1", 80) in t.book.known, "the first message's peer")
        assert PeerAddress("127.0.24.2", 80) not in t.book.known


async def test_utp_and_encryption_flags_learned_from_pex_are_passed_on(tmp_path: Path) -> None:
    """A peer advertised to us with uTP and prefers-encryption keeps those flags when we advertise it."""
    async with memory_swarm(tmp_path) as swarm:
        info, _ = make_payload(8 * 16384, 16384)
        cfg = _config()
        _, host = await swarm.add("127.0.26.1", info, config=cfg)
        first = await _pex_peer(swarm, info, host, "127.0.26.2")
        flags = PexFlags.UTP | PexFlags.PREFERS_ENCRYPTION
        told = PexMessage((PexPeer(PeerAddress("127.0.26.3", 7001), flags),))
        first.send(wm.Extended(UT_PEX_ID, encode_pex(told)))
        second = await _pex_peer(swarm, info, host, "127.0.26.3")

        def about_second() -> list[PexPeer]:
            return [
                p
                for m in first.wire
                if isinstance(m, wm.Extended) and m.ext_id == 5
                for p in decode_pex(bytes(m.payload)).added
                if p.address == PeerAddress("127.0.26.3", 7001)
            ]

        await until(lambda: bool(about_second()), "a ut_pex naming the second peer", timeout=5)
        assert about_second()[0].flags & flags == flags
        assert second.closed is False


async def test_pex_flags_reach_the_transport_policy_and_hole_punching(tmp_path: Path) -> None:
    """A peer PEX names with the uTP flag is dialled uTP first, and its teller is the first BEP 55 relay."""
    async with memory_swarm(tmp_path) as swarm:
        info, _ = make_payload(8 * 16384, 16384)
        t, host = await swarm.add("127.0.27.1", info, config=_config())
        teller = await dial(swarm, host, info, "127.0.27.2", extensions=True)
        await until(lambda: bool(teller.wire), "the first message")
        teller.send(ExtensionHandshake(m={UT_PEX: 5, UT_HOLEPUNCH: 6}, p=7001), wm.HaveNone())
        utp_peer, tcp_peer = PeerAddress("127.0.27.3", 7001), PeerAddress("127.0.27.4", 7001)
        told = PexMessage((PexPeer(utp_peer, PexFlags.UTP | PexFlags.REACHABLE), PexPeer(tcp_peer)))
        teller.send(wm.Extended(UT_PEX_ID, encode_pex(told)))
        await until(lambda: utp_peer in t.book.known and tcp_peer in t.book.known, "both peers learned")
        assert host.utp_hints == [utp_peer]
        relays = t.holepunch.relays_for(utp_peer)
        assert relays and relays[0].address[0] == "127.0.27.2"
