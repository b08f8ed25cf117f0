"""Engine policy on in-memory links: bans, back-off, choking and the metadata exchange.

Real Torrents, real wire connections, MemoryStorage, and no sockets.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from pathlib import Path

from p2pshare.config import DEFAULT_CONFIG, SwarmConfig
from p2pshare.core.metainfo import build_info
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire import messages as wm
from p2pshare.core.wire.extension import ExtensionHandshake
from p2pshare.core.wire.metadata import MetadataRequest, metadata_response
from p2pshare.engine import events as ev
from p2pshare.engine.events import Phase
from p2pshare.engine.peer_book import PeerBook
from p2pshare.errors import Violation
from tests.engine.memory_swarm import (
    dial,
    make_payload,
    memory_swarm,
    of,
    quick_config,
    until,
)


async def test_a_download_completes_over_memory_links(tmp_path: Path) -> None:
    """A leecher gets every piece from a seed through in-memory links, byte for byte."""
    info, data = make_payload(300_000, 32768)
    async with memory_swarm(tmp_path) as swarm:
        _, seed_host = await swarm.add("127.0.20.1", info, data=data)
        leech, _ = await swarm.add("127.0.20.2", info)
        leech.add_peers([seed_host.address], "test")
        await until(leech.completed.is_set, "the download to complete")
        assert bytes(swarm.storages["127.0.20.2"].data) == data
        assert leech.phase is Phase.SEEDING
        assert [e.phase for e in of(swarm.events["127.0.20.2"], ev.PhaseChanged)] == [
            Phase.CHECKING,
            Phase.DOWNLOADING,
            Phase.SEEDING,
        ]


async def test_a_peer_whose_piece_fails_its_hash_is_banned_and_not_redialled(tmp_path: Path) -> None:
    """A lone sender of a bad piece is banned with Violation.BAD_PIECE; its host is never dialled again."""
    info, data = make_payload(4 * 16384, 16384)
    corrupt = bytes([data[0] ^ 0xFF]) + data[1:]
    async with memory_swarm(tmp_path) as swarm:
        _, liar = await swarm.add("127.0.21.66", info, data=corrupt)
        leech, _ = await swarm.add("127.0.21.2", info)
        leech.add_peers([liar.address], "test")
        events = swarm.events["127.0.21.2"]
        await until(lambda: bool(of(events, ev.PeerBanned)), "the liar to be banned")
        banned = of(events, ev.PeerBanned)[0]
        assert banned.kind is Violation.BAD_PIECE
        assert banned.address == "127.0.21.66:6881"
        assert leech.book.is_banned("127.0.21.66")
        dials = len(swarm.network.dials)
        assert leech.add_peers([PeerAddress("127.0.21.66", 7000)], "test") == 0
        assert len(swarm.network.dials) == dials


async def test_a_protocol_violation_drops_the_peer_with_its_kind(tmp_path: Path) -> None:
    """A piece outside the torrent drops the peer with Violation.OUT_OF_RANGE, without a ban."""
    info, data = make_payload(4 * 16384, 16384)
    async with memory_swarm(tmp_path) as swarm:
        leech, host = await swarm.add("127.0.22.1", info)
        peer = await dial(swarm, host, info, "127.0.22.2")
        await until(lambda: bool(peer.wire), "the leecher's first message")
        peer.send(wm.HaveAll())
        await until(lambda: bool(peer.of(wm.Interested)), "the leecher to be interested")
        peer.link.write(wm.encode(wm.Piece(4, 0, data[:16384])))  # the torrent has pieces 0..3
        events = swarm.events["127.0.22.1"]
        await until(lambda: bool(of(events, ev.PeerDisconnected)), "the peer to be dropped")
        dropped = of(events, ev.PeerDisconnected)[0]
        assert dropped.kind is Violation.OUT_OF_RANGE
        assert not of(events, ev.PeerBanned)
        assert not leech.book.is_banned("127.0.22.2")
        await until(lambda: peer.closed is not False, "the link to close")


async def test_failed_dials_back_off_doubling_and_stop_after_max_retries(tmp_path: Path) -> None:
    """A refusing address is redialled after base, 2x base, 4x base, and given up after max_retries."""
    info, _ = make_payload(4 * 16384, 16384)
    config = quick_config(retry_base=0.1, retry_max=10.0, max_retries=3)
    async with memory_swarm(tmp_path) as swarm:
        leech, _ = await swarm.add("127.0.23.1", info, config=config)
        nobody = PeerAddress("127.0.23.9", 6881)
        leech.add_peers([nobody], "test")
        await until(lambda: len(swarm.network.dials) >= 4, "four dials", timeout=5)
        await until(lambda: not leech.book.half_open, "the last dial to settle")
        times = [t for t, addr in swarm.network.dials if addr == nobody]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(times) == 4  # the first try and max_retries more
        for gap, expected in zip(gaps, [0.1, 0.2, 0.4], strict=True):
            assert expected <= gap < expected + 0.2, gaps
        known = leech.book.known[nobody]
        assert known.attempts == 4 and not known.connected


def test_one_back_off_rule_for_every_failure() -> None:
    """retry_delay doubles from retry_base per attempt and is capped at retry_max."""
    book = PeerBook(SwarmConfig(retry_base=2.0, retry_max=20.0))
    assert [book.retry_delay(n) for n in range(0, 7)] == [2.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0]


async def test_a_seed_unchokes_only_its_slots_and_refills_a_freed_one(tmp_path: Path) -> None:
    """One regular plus one optimistic slot: two of three interested peers unchoked; a freed slot refilled."""
    info, data = make_payload(8 * 16384, 16384)
    choker = replace(DEFAULT_CONFIG.choker, regular_slots=1, optimistic_slots=1)
    config = replace(quick_config(), choker=choker)
    async with memory_swarm(tmp_path) as swarm:
        _, host = await swarm.add("127.0.24.1", info, data=data, config=config)
        peers = [await dial(swarm, host, info, f"127.0.24.{i}") for i in (2, 3, 4)]
        await until(lambda: all(p.wire for p in peers), "every first message")
        for p in peers:
            p.send(wm.HaveNone(), wm.Interested())

        def unchoked() -> list[int]:
            return [i for i, p in enumerate(peers) if not p.conn.peer_choking]

        await until(lambda: len(unchoked()) == 2, "two unchoked peers")
        await asyncio.sleep(0.3)  # several ticks: no third slot appears
        assert len(unchoked()) == 2
        left_out = next(i for i in range(3) if i not in unchoked())
        peers[unchoked()[0]].link.close()
        await until(lambda: not peers[left_out].conn.peer_choking, "the freed slot to be given away")


async def test_a_magnet_fetches_the_manifest_from_a_seed_then_the_data(tmp_path: Path) -> None:
    """With only the info hash, a torrent gets the manifest over BEP 9, then every piece."""
    info, data = make_payload(200_000, 16384)
    async with memory_swarm(tmp_path) as swarm:
        _, seed_host = await swarm.add("127.0.25.1", info, data=data)
        leech, _ = await swarm.add("127.0.25.2", info, magnet=True)
        assert leech.info is None and leech.phase is Phase.FETCHING_METADATA
        leech.add_peers([seed_host.address], "test")
        await until(leech.completed.is_set, "the magnet download to complete")
        assert leech.info is not None and leech.info.raw == info.raw
        assert of(swarm.events["127.0.25.2"], ev.MetadataReceived)
        assert bytes(swarm.storages["127.0.25.2"].data) == data


async def test_a_peer_serving_the_wrong_manifest_is_banned(tmp_path: Path) -> None:
    """A peer whose ut_metadata pieces do not hash to the info hash is banned with Violation.BAD_METADATA."""
    info, _ = make_payload(4 * 16384, 16384)
    bogus = build_info("other", [(("other",), 10)], 16384, bytes(20), single_file=True).raw
    async with memory_swarm(tmp_path) as swarm:
        leech, host = await swarm.add("127.0.26.1", info, magnet=True)
        liar = await dial(swarm, host, info, "127.0.26.2", extensions=True)
        await until(lambda: bool(liar.wire), "the leecher's handshake")
        liar.send(ExtensionHandshake(m={"ut_metadata": 3}, metadata_size=len(bogus), v="liar"))

        def serve() -> bool:
            for req in liar.of(MetadataRequest):
                liar.send(metadata_response(bogus, req.piece))
            liar.events = [e for e in liar.events if not isinstance(e, MetadataRequest)]
            return bool(of(swarm.events["127.0.26.1"], ev.PeerBanned))

        await until(serve, "the liar to be banned")
        banned = of(swarm.events["127.0.26.1"], ev.PeerBanned)[0]
        assert banned.kind is Violation.BAD_METADATA
        assert leech.info is None
        assert leech.book.is_banned("127.0.26.2")
