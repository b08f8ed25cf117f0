"""Rules the engine keeps towards a well-behaved peer: BEP 6 answers, and what a peer may make us do."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from p2pshare.core.wire.messages import MessageId, encode_handshake, make_peer_id
from p2pshare.engine.torrent import Torrent
from tests.engine.conftest import MakeSession, MakeShare, seed


def _msg(msg_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">IB", 1 + len(payload), msg_id) + payload


async def _read_messages(reader: asyncio.StreamReader, seconds: float) -> list[tuple[int, bytes]]:
    """Every message the engine sends within ``seconds`` (keep-alives left out)."""
    out: list[tuple[int, bytes]] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                (length,) = struct.unpack(">I", await reader.readexactly(4))
                if length:
                    body = await reader.readexactly(length)
                    out.append((body[0], body[1:]))
    except (TimeoutError, asyncio.IncompleteReadError):
        pass
    return out


async def _fast_peer(
    sessions: MakeSession, make_share: MakeShare, host: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Torrent]:
    """A raw fast-extension peer connected to a p2pshare seed, interested and unchoked."""
    share = make_share({"x/a.bin": 4 * 16384}, piece_length=16384)
    s = await sessions(host.rsplit(".", 1)[0] + ".1")
    torrent = await seed(s, share)
    reader, writer = await asyncio.open_connection(s.listen_host, s.port, local_addr=(host, 0))
    writer.write(encode_handshake(share.info.info_hash.value, make_peer_id(), fast=True, extensions=False))
    async with asyncio.timeout(5):
        await reader.readexactly(68)
    writer.write(_msg(MessageId.HAVE_NONE) + _msg(MessageId.INTERESTED))
    async with asyncio.timeout(5):
        while True:
            (length,) = struct.unpack(">I", await reader.readexactly(4))
            body = await reader.readexactly(length) if length else b""
            if body[:1] == bytes([MessageId.UNCHOKE]):
                return reader, writer, torrent


async def test_a_cancelled_request_from_a_fast_peer_still_gets_exactly_one_answer(
    sessions: MakeSession, make_share: MakeShare, tmp_path: Path
) -> None:
    """BEP 6: every request gets exactly one answer, a piece or a reject, even when it is cancelled."""
    reader, writer, _ = await _fast_peer(sessions, make_share, "127.0.14.2")
    block = struct.pack(">III", 1, 0, 16384)
    try:
        writer.write(_msg(MessageId.REQUEST, block) + _msg(MessageId.CANCEL, block))
        answers = [
            (mid, body)
            for mid, body in await _read_messages(reader, 2.0)
            if (mid == MessageId.REJECT_REQUEST and body == block)
            or (mid == MessageId.PIECE and body[:8] == block[:8])
        ]
    finally:
        writer.close()
    assert len(answers) == 1, answers


async def test_a_peer_can_name_its_dht_port_once_per_connection(
    sessions: MakeSession, make_share: MakeShare, tmp_path: Path
) -> None:
    """Only the first BEP 3 port message reaches the DHT; repeats cannot make us probe other ports."""
    reader, writer, torrent = await _fast_peer(sessions, make_share, "127.0.15.2")
    asked: list[tuple[str, int]] = []
    torrent._on_dht_node = lambda host, port: asked.append((host, port))
    try:
        writer.write(b"".join(_msg(MessageId.PORT, struct.pack(">H", 7000 + i)) for i in range(20)))
        await _read_messages(reader, 1.0)
    finally:
        writer.close()
    assert asked == [("127.0.15.2", 7000)]


async def test_bans_and_per_address_totals_stay_bounded(tmp_path: Path) -> None:
    """Peers from ever new addresses cannot grow the ban list or the per-address totals past their caps."""
    from dataclasses import replace

    from p2pshare.config import DEFAULT_CONFIG
    from p2pshare.core.types import InfoHash
    from p2pshare.core.wire.connection import PeerConnection
    from p2pshare.engine.peer import Peer

    class StubLink:
        def close(self) -> None:
            pass

    swarm = replace(DEFAULT_CONFIG.swarm, max_banned_ips=3, max_known_peers=5)
    config = replace(DEFAULT_CONFIG, swarm=swarm)
    info_hash = b"\x01" * 20
    torrent = Torrent(
        InfoHash(info_hash), info=None, download_dir=tmp_path, peer_id=make_peer_id(), config=config
    )
    for i in range(20):
        conn = PeerConnection(info_hash, make_peer_id(), initiator=True)
        peer = Peer(StubLink(), conn, (f"127.9.{i}.1", 6881), True, 0.0)  # type: ignore[arg-type]
        peer.down.add(100)
        torrent._drop(peer, "test", ban=True)
    assert list(torrent._banned) == ["127.9.17.1", "127.9.18.1", "127.9.19.1"]  # the newest bans stay
    totals = torrent.transfer_by_host()
    assert len(totals) == 6  # five addresses and one "other" row
    assert sum(down for down, _ in totals.values()) == 2000  # nothing lost, only folded
    await torrent.close()
