"""uTP against libtorrent (TCP switched off): the BitTorrent handshake and pieces, both directions."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from p2pshare.core.bitfield import Bitfield
from p2pshare.core.wire.connection import HandshakeReceived, PeerConnection
from p2pshare.core.wire.messages import HaveAll, Interested, Piece, Request, Unchoke
from p2pshare.io.utp_socket import UtpLink, UtpSocket
from tests.engine.conftest import MakeShare
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
PEER_ID = b"-PS0001-utpinteropxx"
BLOCK = 16384


class Wire:
    """A PeerConnection driven over a UtpLink, its events queued for the test."""

    def __init__(self, link: UtpLink, conn: PeerConnection) -> None:
        self.link = link
        self.conn = conn
        self.events: asyncio.Queue[object] = asyncio.Queue()
        self.closed: Exception | bool = False
        link.set_handlers(self._on_data, self._on_close)

    def _on_data(self, view: memoryview) -> None:
        self.conn.receive_data(view)
        while (ev := self.conn.next_event()) is not None:
            self.events.put_nowait(ev)

    def _on_close(self, exc: Exception | None) -> None:
        self.closed = exc or True
        self.events.put_nowait(ConnectionError(f"the uTP link closed: {exc!r}"))

    async def expect(
        self, kind: type, timeout: float = 20.0, handle: Callable[[Any], None] | None = None
    ) -> Any:
        """The next event of ``kind``, passing the ones before it to ``handle``."""
        async with asyncio.timeout(timeout):
            while True:
                ev = await self.events.get()
                if isinstance(ev, ConnectionError):
                    raise ev
                if isinstance(ev, kind):
                    return ev
                if handle is not None:
                    handle(ev)


async def test_we_connect_to_a_utp_only_libtorrent_seeder_and_download_pieces(
    make_share: MakeShare, lt_sessions: MakeLt
) -> None:
    """Over our uTP connect to a TCP-less libtorrent seed: handshake, then verified pieces."""
    share = make_share({"big.bin": 2 * 1024 * 1024}, piece_length=65536)
    ses, port = lt_sessions("127.0.0.2", **UTP_ONLY)
    handle = lt_seed(ses, share.torrent, save_path_of(share.paths, share.info.file_paths()))
    # seed_mode reports seeding before its resume check ends ("torrent is not ready to accept peers")
    wait_for(lambda: handle.status().state == lt.torrent_status.seeding, 20, "libtorrent to be ready")
    sock = await UtpSocket.open("127.0.0.3", 0)
    try:
        link = await sock.connect(("127.0.0.2", port), timeout=10)
        info = share.info
        conn = PeerConnection(info.info_hash.value, PEER_ID, initiator=True, num_pieces=info.num_pieces)
        wire = Wire(link, conn)
        link.write(conn.handshake_bytes())
        hs = await wire.expect(HandshakeReceived)
        assert hs.info_hash == info.info_hash.value
        assert hs.peer_id[:3] == b"-LT"
        link.write(conn.send(Interested()))
        await wire.expect(Unchoke)
        wanted = list(range(info.num_pieces))
        blocks = [(i, b, BLOCK) for i in wanted for b in range(0, info.piece_length, BLOCK)]
        got: dict[int, bytearray] = {i: bytearray(info.piece_length) for i in wanted}
        for start in range(0, len(blocks), 32):
            batch = blocks[start : start + 32]
            link.write(conn.send_requests(batch))
            for _ in batch:
                piece = await wire.expect(Piece)
                got[piece.index][piece.begin : piece.begin + len(piece.data)] = piece.data
        for i in wanted:
            assert hashlib.sha1(got[i]).digest() == info.piece_hash(i)
        link.close()
    finally:
        sock.close()


async def test_utp_only_libtorrent_connects_to_us_and_downloads_everything(
    make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Path
) -> None:
    """A TCP-less libtorrent leecher connects to our uTP socket and downloads the torrent from us."""
    share = make_share({"big.bin": 3 * 1024 * 1024 + 1234}, piece_length=32768)
    info = share.info
    data = share.paths[0].read_bytes()
    accepted: asyncio.Queue[UtpLink] = asyncio.Queue()
    sock = await UtpSocket.open("127.0.0.4", 0, on_accept=accepted.put_nowait)
    # plaintext: MSE/PE is a layer of its own (issue 14 is about the transport)
    ses, _ = lt_sessions("127.0.0.5", **UTP_ONLY, out_enc_policy=int(lt.enc_policy.disabled))
    try:
        h = add_torrent(ses, share.torrent, tmp_path / "lt_out")
        h.connect_peer(sock.local_address)
        link = await asyncio.wait_for(accepted.get(), 20)
        conn = PeerConnection(info.info_hash.value, PEER_ID, initiator=False, num_pieces=info.num_pieces)
        wire = Wire(link, conn)
        hs = await wire.expect(HandshakeReceived)
        assert hs.info_hash == info.info_hash.value and hs.peer_id[:3] == b"-LT"
        have = Bitfield(info.num_pieces, full=True)
        first = conn.initial_have_message(have)
        assert isinstance(first, HaveAll)
        link.write(conn.handshake_bytes() + conn.send(first))
        await wire.expect(Interested)
        link.write(conn.send(Unchoke()))

        def serve(ev: Any) -> None:
            if isinstance(ev, Request):
                off = ev.index * info.piece_length + ev.begin
                link.writelines(conn.send_piece(ev.index, ev.begin, data[off : off + ev.length]))

        async def until_done() -> None:
            while not h.status().is_seeding:
                try:
                    serve(await asyncio.wait_for(wire.events.get(), 0.05))
                except TimeoutError:
                    pass

        await asyncio.wait_for(until_done(), 60)
        out = tmp_path / "lt_out" / "big.bin"
        async with asyncio.timeout(10):  # libtorrent hashes blocks before its disk thread writes them
            while out.read_bytes() != data:
                await asyncio.sleep(0.05)
        link.close()
    finally:
        sock.close()
