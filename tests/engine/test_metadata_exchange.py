"""Fetching the manifest by its hash alone (BEP 9): a peer that serves the wrong one is banned."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from p2pshare.core.metainfo import build_info
from p2pshare.core.types import InfoHash
from p2pshare.core.wire.connection import HandshakeReceived, PeerConnection
from p2pshare.core.wire.extension import ExtensionHandshake
from p2pshare.core.wire.messages import make_peer_id
from p2pshare.core.wire.metadata import MetadataRequest, metadata_response
from p2pshare.engine import events as ev
from p2pshare.engine.params import TorrentParams
from p2pshare.errors import Violation
from tests.engine.conftest import MakeSession, wait_until


async def test_peer_serving_a_manifest_with_the_wrong_hash_is_banned(
    sessions: MakeSession, tmp_path: Path
) -> None:
    """A peer whose ut_metadata pieces do not hash to the info hash is banned, and nothing is written."""
    wanted = InfoHash(hashlib.sha1(b"the manifest we asked for").digest())
    bogus = build_info(
        "other", [(("other",), 10)], 16384, hashlib.sha1(b"x" * 10).digest(), single_file=True
    ).raw
    assert hashlib.sha1(bogus).digest() != wanted.value

    async def liar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = PeerConnection(wanted.value, make_peer_id(), initiator=False)
        try:
            while data := await reader.read(65536):
                conn.receive_data(data)
                while (event := conn.next_event()) is not None:
                    if isinstance(event, HandshakeReceived):
                        writer.write(conn.handshake_bytes())
                        hs = ExtensionHandshake(m={"ut_metadata": 3}, metadata_size=len(bogus), v="liar")
                        writer.write(conn.send(hs))
                    elif isinstance(event, MetadataRequest):
                        writer.write(conn.send(metadata_response(bogus, event.piece)))
        finally:
            writer.close()

    server = await asyncio.start_server(liar, "127.0.13.2", 0)
    port = server.sockets[0].getsockname()[1]
    events: list[ev.EngineEvent] = []
    try:
        session = await sessions("127.0.13.1")
        torrent = await session.add_torrent(
            TorrentParams(wanted, info=None, download_dir=tmp_path / "out"), on_event=events.append
        )
        torrent.add_peers([("127.0.13.2", port)], "test")
        await wait_until(
            lambda: any(isinstance(e, ev.PeerBanned) for e in events), 10, "the liar to be banned"
        )
    finally:
        server.close()
        await server.wait_closed()
    banned = [e for e in events if isinstance(e, ev.PeerBanned)]
    assert banned[0].address.startswith("127.0.13.2:")
    assert banned[0].kind is Violation.BAD_METADATA
    assert "metadata" in banned[0].reason
    assert torrent.info is None
    assert not any(isinstance(e, ev.MetadataReceived) for e in events)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
