"""MSE/PE against libtorrent with encryption forced: it dials us, and we dial it, and the BitTorrent
and extension handshakes then run over the RC4 stream."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from p2pshare.config import EncryptionPolicy, MseConfig
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.mse import retry_plaintext, skey_lookup
from p2pshare.core.wire import (
    ExtensionHandshake,
    ExtensionHandshakeReceived,
    HandshakeReceived,
    Interested,
    PeerConnection,
    Piece,
    Request,
    Unchoke,
    make_peer_id,
)
from p2pshare.io.link import Link
from p2pshare.io.mse_link import EncryptedLink, FailureReason, MseError, mse_accept, mse_initiate
from tests.engine.conftest import MakeShare
from tests.helpers.tcplink import dial, listening
from tests.interop.conftest import MakeLt
from tests.interop.ltpeer import add_torrent, is_seeding, lt_seed, save_path_of, wait_for

lt = pytest.importorskip("libtorrent")

pytestmark = pytest.mark.interop

CFG = MseConfig(handshake_timeout=10.0)
FORCED = {
    "out_enc_policy": int(lt.enc_policy.forced),
    "in_enc_policy": int(lt.enc_policy.forced),
    "allowed_enc_level": int(lt.enc_level.rc4),
    "prefer_rc4": True,
}


class WirePeer:
    """Our side of the wire protocol over a link: PeerConnection fed from on_data, events queued."""

    def __init__(self, link: Link, pc: PeerConnection) -> None:
        self.link = link
        self.pc = pc
        self.events: asyncio.Queue[object] = asyncio.Queue()
        self.error: Exception | None = None
        link.set_handlers(self._on_data, self._on_close)

    def _on_data(self, view: memoryview) -> None:
        self.pc.receive_data(view)
        self._drain()

    def _on_close(self, exc: Exception | None) -> None:
        self.error = exc or ConnectionError("closed")
        self.events.put_nowait(self.error)

    def _drain(self) -> None:
        try:
            while (event := self.pc.next_event()) is not None:
                self.events.put_nowait(event)
        except Exception as exc:  # a protocol error: surface it to the test
            self.events.put_nowait(exc)

    async def next_of(self, kind: type, timeout: float = 15.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if isinstance(event, Exception):
                    raise event
                if isinstance(event, kind):
                    return event


def ready(ses: Any, torrent: bytes, save: Any) -> Any:
    """Add ``torrent`` and wait until libtorrent has checked it (it refuses peers while checking)."""
    handle = add_torrent(ses, torrent, save)
    wait_for(
        lambda: handle.status().state == lt.torrent_status.downloading, 15, "libtorrent to check the torrent"
    )
    return handle


def rc4_peers(handle: Any) -> list[Any]:
    return [p for p in handle.get_peer_info() if p.flags & lt.peer_info.rc4_encrypted]


async def test_libtorrent_dials_us_encrypted(make_share: MakeShare, lt_sessions: MakeLt) -> None:
    """libtorrent (encryption forced) connects to us; we accept MSE by SKEY and finish both handshakes."""
    share = make_share({"f.bin": 100_000}, piece_length=16384)
    info_hash = share.info.info_hash.value
    ses, _ = lt_sessions("127.0.0.2", **FORCED)
    handle = lt_seed(ses, share.torrent, save_path_of(share.paths, share.info.file_paths()))
    async with listening("127.0.0.3") as acceptor:
        handle.connect_peer(("127.0.0.3", acceptor.port))
        raw = await acceptor.accept(15)
        link, named = await mse_accept(
            raw, skey_lookup([bytes(20), info_hash]), EncryptionPolicy.REQUIRE, CFG
        )
        assert isinstance(link, EncryptedLink)
        assert named == info_hash
        pc = PeerConnection(None, make_peer_id(), initiator=False, num_pieces=share.info.num_pieces)
        peer = WirePeer(link, pc)
        hs = await peer.next_of(HandshakeReceived)
        assert hs.info_hash == info_hash
        link.write(pc.handshake_bytes() + pc.send(ExtensionHandshake.ours()))
        ext = await peer.next_of(ExtensionHandshakeReceived)
        assert pc.peer_id is not None and pc.peer_id.startswith(b"-LT")
        assert ext.handshake.v == "libtorrent-test"
        await asyncio.to_thread(
            wait_for, lambda: bool(rc4_peers(handle)), 10, "libtorrent to list an RC4 peer"
        )
        link.close()


async def test_we_dial_libtorrent_encrypted(
    make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Any
) -> None:
    """We dial libtorrent (encryption forced) with MSE; both handshakes complete over RC4."""
    share = make_share({"f.bin": 100_000}, piece_length=16384)
    info_hash = share.info.info_hash.value
    ses, port = lt_sessions("127.0.0.4", **FORCED)
    handle = ready(ses, share.torrent, tmp_path / "lt")
    raw = await dial("127.0.0.4", port, local_host="127.0.0.5")
    pc = PeerConnection(info_hash, make_peer_id(), initiator=True, num_pieces=share.info.num_pieces)
    # Our BitTorrent handshake rides in the MSE handshake as its initial payload (IA).
    link = await mse_initiate(
        raw, info_hash, EncryptionPolicy.REQUIRE, CFG, initial_payload=pc.handshake_bytes()
    )
    assert isinstance(link, EncryptedLink)
    peer = WirePeer(link, pc)
    hs = await peer.next_of(HandshakeReceived)
    assert hs.info_hash == info_hash
    link.write(pc.send(ExtensionHandshake.ours()))
    ext = await peer.next_of(ExtensionHandshakeReceived)
    assert pc.peer_id is not None and pc.peer_id.startswith(b"-LT")
    assert ext.handshake.v == "libtorrent-test"
    await asyncio.to_thread(wait_for, lambda: bool(rc4_peers(handle)), 10, "libtorrent to list an RC4 peer")
    link.close()


async def test_plain_dial_is_refused_when_libtorrent_forces_encryption(
    make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Any
) -> None:
    """A plaintext handshake to a libtorrent that forces encryption gets no answer but a close."""
    share = make_share({"f.bin": 50_000}, piece_length=16384)
    info_hash = share.info.info_hash.value
    ses, port = lt_sessions("127.0.0.6", **FORCED)
    ready(ses, share.torrent, tmp_path / "lt")
    raw = await dial("127.0.0.6", port, local_host="127.0.0.7")
    link = await mse_initiate(raw, info_hash, EncryptionPolicy.OFF, CFG)
    assert link is raw
    pc = PeerConnection(info_hash, make_peer_id(), initiator=True, num_pieces=share.info.num_pieces)
    peer = WirePeer(link, pc)
    link.write(pc.handshake_bytes())
    with pytest.raises((ConnectionError, OSError)):
        await peer.next_of(HandshakeReceived)


async def test_download_from_libtorrent_over_rc4(make_share: MakeShare, lt_sessions: MakeLt) -> None:
    """A whole 3 MiB torrent comes from a libtorrent seeder over an RC4 link, every piece hash-checked."""
    piece_length = 65536
    share = make_share({"big.bin": 3 * 1024 * 1024 + 1234}, piece_length=piece_length)
    info = share.info
    info_hash = info.info_hash.value
    ses, port = lt_sessions("127.0.0.8", **FORCED)
    lt_seed(ses, share.torrent, save_path_of(share.paths, info.file_paths()))
    total = info.total_length

    def size(i: int) -> int:
        return min(piece_length, total - i * piece_length)

    pc = PeerConnection(
        info_hash, make_peer_id(), initiator=True, num_pieces=info.num_pieces, piece_size=size
    )
    raw = await dial("127.0.0.8", port, local_host="127.0.0.9")
    link = await mse_initiate(
        raw, info_hash, EncryptionPolicy.REQUIRE, CFG, initial_payload=pc.handshake_bytes()
    )
    assert isinstance(link, EncryptedLink)
    peer = WirePeer(link, pc)
    await peer.next_of(HandshakeReceived)
    first = pc.initial_have_message(None)
    link.write(pc.send_all([m for m in (first, Interested()) if m is not None]))
    await peer.next_of(Unchoke)
    blocks = [
        (i, begin, min(16384, size(i) - begin))
        for i in range(info.num_pieces)
        for begin in range(0, size(i), 16384)
    ]
    link.write(pc.send_requests(blocks))
    got: dict[tuple[int, int], bytes] = {}
    while len(got) < len(blocks):
        block = await peer.next_of(Piece)
        got[(block.index, block.begin)] = bytes(block.data)
    for i in range(info.num_pieces):
        data = b"".join(got[(i, b)] for b in range(0, size(i), 16384))
        assert hashlib.sha1(data).digest() == info.piece_hash(i), i
    link.close()


async def test_default_libtorrent_both_ways_under_prefer(
    make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Any
) -> None:
    """With libtorrent's default settings and our prefer policy, both directions reach the wire handshake."""
    share = make_share({"f.bin": 50_000}, piece_length=16384)
    info_hash = share.info.info_hash.value
    ses, port = lt_sessions("127.0.0.10")
    handle = ready(ses, share.torrent, tmp_path / "lt")
    # We dial: MSE with both methods offered; libtorrent picks (plaintext unless it prefers RC4).
    pc = PeerConnection(info_hash, make_peer_id(), initiator=True, num_pieces=share.info.num_pieces)
    raw = await dial("127.0.0.10", port, local_host="127.0.0.11")
    link = await mse_initiate(
        raw, info_hash, EncryptionPolicy.PREFER, CFG, initial_payload=pc.handshake_bytes()
    )
    out_peer = WirePeer(link, pc)
    assert (await out_peer.next_of(HandshakeReceived)).info_hash == info_hash
    # It dials us: whatever it opens with (MSE or plain), prefer accepts it.
    async with listening("127.0.0.12") as acceptor:
        handle.connect_peer(("127.0.0.12", acceptor.port))
        raw_in = await acceptor.accept(15)
        link_in, _ = await mse_accept(raw_in, skey_lookup([info_hash]), EncryptionPolicy.PREFER, CFG)
        pc_in = PeerConnection(None, make_peer_id(), initiator=False, num_pieces=share.info.num_pieces)
        in_peer = WirePeer(link_in, pc_in)
        assert (await in_peer.next_of(HandshakeReceived)).info_hash == info_hash
        link_in.write(pc_in.handshake_bytes() + pc_in.send(ExtensionHandshake.ours()))
        ext = await in_peer.next_of(ExtensionHandshakeReceived)
        assert ext.handshake.v == "libtorrent-test"
        link_in.close()
    link.close()


async def test_libtorrent_downloads_from_us_over_rc4(
    make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Any
) -> None:
    """libtorrent (encryption forced) downloads and hash-checks 3 MiB that we serve over an RC4 link."""
    piece_length = 65536
    share = make_share({"big.bin": 3 * 1024 * 1024 + 4321}, piece_length=piece_length)
    info = share.info
    info_hash = info.info_hash.value
    payload = share.paths[0].read_bytes()
    ses, _ = lt_sessions("127.0.0.13", **FORCED)
    handle = ready(ses, share.torrent, tmp_path / "lt")
    async with listening("127.0.0.14") as acceptor:
        handle.connect_peer(("127.0.0.14", acceptor.port))
        raw = await acceptor.accept(15)
        link, named = await mse_accept(raw, skey_lookup([info_hash]), EncryptionPolicy.REQUIRE, CFG)
        assert isinstance(link, EncryptedLink) and named == info_hash
        pc = PeerConnection(None, make_peer_id(), initiator=False, num_pieces=info.num_pieces)
        served = 0

        def on_data(view: memoryview) -> None:
            nonlocal served
            pc.receive_data(view)
            out: list[bytes | memoryview] = []
            while (event := pc.next_event()) is not None:
                if isinstance(event, HandshakeReceived):
                    first = pc.initial_have_message(Bitfield(info.num_pieces, full=True))
                    out += [pc.handshake_bytes(), *([pc.send(first)] if first else [])]
                elif isinstance(event, Interested):
                    out.append(pc.send(Unchoke()))
                elif isinstance(event, Request):
                    at = event.index * piece_length + event.begin
                    out += pc.send_piece(
                        event.index, event.begin, memoryview(payload)[at : at + event.length]
                    )
                    served += event.length
            if out:
                link.writelines(out)

        link.set_handlers(on_data, lambda exc: None)
        await asyncio.to_thread(wait_for, lambda: is_seeding(handle), 30, "libtorrent to finish")
        assert served >= info.total_length  # (a finished libtorrent drops us: seeds do not keep seeds)
        link.close()


async def test_forced_libtorrent_refused_when_encryption_is_off(
    make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Any
) -> None:
    """With our policy off, an incoming libtorrent that insists on MSE is refused by name."""
    share = make_share({"f.bin": 20_000}, piece_length=16384)
    info_hash = share.info.info_hash.value
    ses, _ = lt_sessions("127.0.0.15", **FORCED)
    handle = ready(ses, share.torrent, tmp_path / "lt")
    async with listening("127.0.0.16") as acceptor:
        handle.connect_peer(("127.0.0.16", acceptor.port))
        raw = await acceptor.accept(15)
        with pytest.raises(MseError) as err:
            await mse_accept(raw, skey_lookup([info_hash]), EncryptionPolicy.OFF, CFG)
        assert err.value.reason is FailureReason.ENCRYPTION_REFUSED
        assert raw.closed


async def test_prefer_falls_back_to_plaintext_for_a_plain_only_libtorrent(
    make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Any
) -> None:
    """A libtorrent with encryption disabled drops our MSE attempt; under prefer we redial in plaintext."""
    share = make_share({"f.bin": 20_000}, piece_length=16384)
    info_hash = share.info.info_hash.value
    disabled = int(lt.enc_policy.disabled)
    ses, port = lt_sessions("127.0.0.17", out_enc_policy=disabled, in_enc_policy=disabled)
    ready(ses, share.torrent, tmp_path / "lt")
    raw = await dial("127.0.0.17", port, local_host="127.0.0.18")
    with pytest.raises(MseError) as err:
        await mse_initiate(raw, info_hash, EncryptionPolicy.PREFER, CFG)
    assert retry_plaintext(err.value, EncryptionPolicy.PREFER)
    raw = await dial("127.0.0.17", port, local_host="127.0.0.18")
    pc = PeerConnection(info_hash, make_peer_id(), initiator=True, num_pieces=share.info.num_pieces)
    peer = WirePeer(raw, pc)
    raw.write(pc.handshake_bytes())
    assert (await peer.next_of(HandshakeReceived)).info_hash == info_hash
    raw.close()
