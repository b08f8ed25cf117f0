"""Peers that break the wire rules are dropped, with the reason logged, and never crash the engine."""

from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path

import pytest

from p2pshare.core.wire.messages import Handshake, make_peer_id, make_reserved
from p2pshare.engine import events as ev
from p2pshare.errors import Violation
from tests.engine.conftest import EventLog, MakeSession, MakeShare, seed_params


async def _raw_peer(
    sessions: MakeSession,
    make_share: MakeShare,
    tmp_path: Path,
    client_host: str,
    log: EventLog | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """A p2pshare seed, and a raw socket from ``client_host`` that has exchanged handshakes with it."""
    share = make_share({"x/a.bin": 5 * 16384 + 3, "x/b.bin": 9}, piece_length=16384)
    s = await sessions(client_host.rsplit(".", 1)[0] + ".1")
    await s.add_torrent(seed_params(share), on_event=log)
    reader, writer = await asyncio.open_connection(s.listen_host, s.port, local_addr=(client_host, 0))
    writer.write(Handshake(share.info.info_hash.value, make_peer_id(), make_reserved()).encode())
    async with asyncio.timeout(5):
        reply = await reader.readexactly(68)
    assert reply[28:48] == share.info.info_hash.value
    return reader, writer, share.info.num_pieces


async def _assert_dropped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The engine closes the connection (EOF) within a few seconds."""
    try:
        async with asyncio.timeout(5):
            while await reader.read(65536):
                pass
    finally:
        writer.close()


def _msg(msg_id: int, payload: bytes) -> bytes:
    return struct.pack(">IB", 1 + len(payload), msg_id) + payload


@pytest.mark.parametrize(
    ("case", "client", "expect", "kind"),
    [
        ("oversized", "127.0.6.2", "exceeds", Violation.TOO_LARGE),
        ("bitfield-size", "127.0.7.2", "bitfield", Violation.MALFORMED),
        ("have-all-without-fast", "127.0.8.2", "fast extension", Violation.NOT_NEGOTIATED),
        ("piece-past-the-last", "127.0.9.2", "past the last", Violation.OUT_OF_RANGE),
        ("have-wrong-length", "127.0.10.2", "must be 5", Violation.MALFORMED),
        ("have-out-of-range", "127.0.11.2", "past the last", Violation.OUT_OF_RANGE),
    ],
)
async def test_rule_breaking_peer_is_dropped_with_reason(
    sessions: MakeSession,
    make_share: MakeShare,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    client: str,
    expect: str,
    kind: Violation,
) -> None:
    """A peer that sends an oversized message, a bad bitfield, have-all without BEP 6, a piece past the last,
    a have of the wrong length or past the last piece is dropped with the Violation kind, named in the log.

    Spare bits, unrequested pieces and invalid requests are no longer fatal (docs/wire-rules.md)."""
    caplog.set_level(logging.INFO, logger="p2pshare.torrent")
    log = EventLog()
    reader, writer, n = await _raw_peer(sessions, make_share, tmp_path, client, log)
    nbytes = (n + 7) // 8
    if case == "oversized":
        data = struct.pack(">IB", 10 * 1024 * 1024, 7)
    elif case == "bitfield-size":
        data = _msg(5, b"\x00" * (nbytes + 3))
    elif case == "have-all-without-fast":
        data = _msg(0x0E, b"")
    elif case == "piece-past-the-last":
        data = _msg(7, struct.pack(">II", n, 0) + b"\x00" * 16384)
    elif case == "have-wrong-length":
        data = _msg(4, struct.pack(">IB", 0, 0))
    else:
        data = _msg(4, struct.pack(">I", n + 5))
    writer.write(data)
    await _assert_dropped(reader, writer)
    dropped = [
        r.getMessage() for r in caplog.records if "dropped" in r.getMessage() or "banned" in r.getMessage()
    ]
    assert any(client in m and expect in m for m in dropped), dropped
    kinds = [e.kind for e in log.of(ev.PeerDisconnected) if e.address.startswith(client + ":")]
    assert kinds == [kind], log.events


async def test_garbage_instead_of_handshake_is_closed(sessions: MakeSession, tmp_path: Path) -> None:
    """With encryption off, a connection that does not speak BitTorrent is closed by the listener."""
    from dataclasses import replace as _replace

    from p2pshare.config import DEFAULT_CONFIG, EncryptionPolicy

    off = _replace(DEFAULT_CONFIG, mse=_replace(DEFAULT_CONFIG.mse, policy=EncryptionPolicy.OFF))
    s = await sessions("127.0.12.1", off)
    reader, writer = await asyncio.open_connection(s.listen_host, s.port, local_addr=("127.0.12.2", 0))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await _assert_dropped(reader, writer)


async def test_garbage_fails_the_mse_handshake_and_is_closed(sessions: MakeSession, tmp_path: Path) -> None:
    """Under prefer, bytes that are neither BitTorrent nor MSE fail the MSE sync search and are closed."""
    s = await sessions("127.0.12.5")
    reader, writer = await asyncio.open_connection(s.listen_host, s.port, local_addr=("127.0.12.6", 0))
    writer.write(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200)
    await _assert_dropped(reader, writer)


async def test_unknown_info_hash_is_closed(sessions: MakeSession, tmp_path: Path) -> None:
    """An incoming handshake for a torrent the session does not serve is closed."""
    s = await sessions("127.0.12.3")
    reader, writer = await asyncio.open_connection(s.listen_host, s.port, local_addr=("127.0.12.4", 0))
    writer.write(Handshake(b"\x01" * 20, make_peer_id(), make_reserved()).encode())
    await _assert_dropped(reader, writer)


async def test_connections_that_never_handshake_are_capped() -> None:
    """Past the cap of pending incoming handshakes, each new connection closes the oldest pending one."""
    import asyncio as _asyncio
    from dataclasses import replace as _replace

    from p2pshare.config import DEFAULT_CONFIG
    from p2pshare.engine.session import Session

    config = _replace(DEFAULT_CONFIG, wire=_replace(DEFAULT_CONFIG.wire, max_pending_incoming=3))
    session = Session(config, listen_host="127.0.0.1")
    await session.start()
    writers = []
    readers = []
    try:
        async with _asyncio.timeout(10):
            for _ in range(4):  # three wait, silent, within the cap; the fourth evicts the first
                r, w = await _asyncio.open_connection("127.0.0.1", session.port)
                readers.append(r)
                writers.append(w)
            assert await _asyncio.wait_for(readers[0].read(1), 3) == b""  # the oldest is closed by us
            with pytest.raises(TimeoutError):
                await _asyncio.wait_for(readers[3].read(1), 0.5)  # the newest still waits
    finally:
        for w in writers:
            w.close()
        await session.close()
