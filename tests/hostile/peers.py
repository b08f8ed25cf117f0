"""The hostile behaviours: handlers for :class:`RawServer` (dialled by a ``get``) and attackers
that dial a ``share``.  Each is a few lines of protocol, bounded by its stop event or deadline."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable

from p2pshare.core.wire.messages import (
    BitfieldMsg,
    HaveAll,
    HaveNone,
    Interested,
    Piece,
    Request,
    Unchoke,
)
from p2pshare.core.wire.metadata import METADATA_PIECE_SIZE, MetadataData, MetadataReject, MetadataRequest
from tests.hostile.harness import Handler, Shared, WireSocket

Corrupt = Callable[[int, int], bool]
_REQUEST = struct.Struct(">IBIII")


def _greet(ws: WireSocket, info_hash: bytes, metadata_size: int | None = None) -> None:
    """Answer a dialling ``get``: its handshake, ours, our extension handshake."""
    ws.recv_handshake()
    ws.send_handshake(info_hash)
    ws.send_ext_handshake(metadata_size)


def data_server(
    shared: Shared, *, corrupt: Corrupt = lambda i, b: False, block_delay: float = 0.0
) -> Handler:
    """A seed that has every piece and answers requests, corrupting the blocks ``corrupt`` names."""

    def handler(ws: WireSocket, stop: threading.Event) -> None:
        _greet(ws, shared.info.info_hash.value, len(shared.info.raw))
        ws.send(HaveAll(), Unchoke())
        while not stop.is_set():
            msg = ws.recv(timeout=0.5)
            if not isinstance(msg, Request):
                continue
            if block_delay and stop.wait(block_delay):
                return
            data = shared.piece(msg.index)[msg.begin : msg.begin + msg.length]
            if corrupt(msg.index, msg.begin):
                data = bytes(b ^ 0xFF for b in data)
            ws.send(Piece(msg.index, msg.begin, data))

    return handler


def mixing_liar(shared: Shared) -> Handler:
    """The smart-ban adversary: it corrupts one block of each piece whose first block was asked
    of someone else (the picker hands out a piece's blocks in order), so every piece it spoils
    also holds an honest peer's blocks, and it is never a failed piece's only sender."""

    def handler(ws: WireSocket, stop: threading.Event) -> None:
        _greet(ws, shared.info.info_hash.value, len(shared.info.raw))
        ws.send(HaveAll(), Unchoke())
        asked: dict[int, set[int]] = {}
        spoiled: set[int] = set()
        while not stop.is_set():
            req = ws.recv(timeout=0.5)
            if not isinstance(req, Request):
                continue
            seen = asked.setdefault(req.index, set())
            seen.add(req.begin)
            data = shared.piece(req.index)[req.begin : req.begin + req.length]
            if 0 not in seen and req.index not in spoiled:
                spoiled.add(req.index)
                data = bytes(b ^ 0xFF for b in data)
            ws.send(Piece(req.index, req.begin, data))

    return handler


def silent_have_all(shared: Shared) -> Handler:
    """Says it has every piece and unchokes, then never sends another byte."""

    def handler(ws: WireSocket, stop: threading.Event) -> None:
        _greet(ws, shared.info.info_hash.value, len(shared.info.raw))
        ws.send(HaveAll(), Unchoke())
        while not stop.is_set():
            ws.recv(timeout=0.5)

    return handler


def length_bomb(shared: Shared) -> Handler:
    """After the handshakes, announces a message of 2^31 bytes and trickles its start."""

    def handler(ws: WireSocket, stop: threading.Event) -> None:
        _greet(ws, shared.info.info_hash.value)
        ws.send_raw((2**31).to_bytes(4, "big") + b"\x07")
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            ws.send_raw(b"\x00" * 1024)
            stop.wait(0.05)

    return handler


def wrong_bitfield(shared: Shared) -> Handler:
    """Sends a bitfield 5 bytes longer than the piece count allows."""

    def handler(ws: WireSocket, stop: threading.Event) -> None:
        _greet(ws, shared.info.info_hash.value, len(shared.info.raw))
        nbytes = (shared.info.num_pieces + 7) // 8 + 5
        ws.send(BitfieldMsg(b"\xff" * nbytes), Unchoke())
        while not stop.is_set():
            ws.recv(timeout=0.5)

    return handler


def metadata_liar(info_hash: bytes, claimed_size: int, served: bytes | None) -> Handler:
    """Claims ``metadata_size`` = ``claimed_size``; serves ``served`` (or nothing) for ut_metadata."""

    def handler(ws: WireSocket, stop: threading.Event) -> None:
        _greet(ws, info_hash, claimed_size)
        ws.send(HaveNone())
        while not stop.is_set():
            msg = ws.recv(timeout=0.5)
            if isinstance(msg, MetadataRequest) and served is not None:
                start = msg.piece * METADATA_PIECE_SIZE
                chunk = served[start : start + METADATA_PIECE_SIZE]
                ws.send_metadata(MetadataData(msg.piece, len(served), chunk) if chunk else MetadataReject(0))

    return handler


# ---------------------------------------------------------------------- attackers of a seeder


def slowloris(
    target: tuple[str, int], local_host: str, connections: int, stop: threading.Event, info_hash: bytes
) -> threading.Thread:
    """Keeps ``connections`` sockets open, each trickling a valid handshake one byte a second;
    a socket the target closes is replaced at once."""
    hs = b"\x13BitTorrent protocol" + bytes(8) + info_hash + b"-SL0001-" + bytes(12)

    def run() -> None:
        socks: dict[socket.socket, int] = {}
        try:
            while not stop.is_set():
                while len(socks) < connections and not stop.is_set():
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.bind((local_host, 0))
                    s.setblocking(False)
                    with contextlib.suppress(BlockingIOError, OSError):
                        s.connect(target)
                    socks[s] = 0
                stop.wait(1.0)
                for s in list(socks):
                    pos = socks[s]
                    try:
                        if pos < len(hs) - 1:  # never the last byte: the handshake stays pending
                            s.send(hs[pos : pos + 1])
                            socks[s] = pos + 1
                        else:
                            s.send(b"")
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        s.close()
                        del socks[s]
        finally:
            for s in socks:
                s.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def request_flood(
    shared: Shared, local_host: str, count: int, stop: threading.Event, result: dict[str, object]
) -> threading.Thread:
    """Handshakes, says interested, sends ``count`` requests and never reads a byte."""

    def run() -> None:
        ws = WireSocket.dial(shared.host, shared.port, local_host)
        try:
            ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            ws.send_handshake(shared.info.info_hash.value)
            ws.send(Interested())
            # Every request distinct (1 byte at each offset): duplicates are answered once.
            pl = shared.info.piece_length
            pieces = shared.info.num_pieces - 1
            sent = 0
            ws.sock.settimeout(5.0)
            while sent < count and not stop.is_set():
                n = min(50_000, count - sent)
                ws.sock.sendall(
                    b"".join(
                        _REQUEST.pack(13, 6, (k // pl) % pieces, k % pl, 1) for k in range(sent, sent + n)
                    )
                )
                sent += n
            result["sent"] = sent
            result["closed"] = False
            # Hold the connection open, reading nothing, until the test ends or the seeder drops us.
            ws.sock.settimeout(0.5)
            while not stop.is_set():
                try:
                    ws.sock.send(b"\x00\x00\x00\x00")  # keep-alives: we are here, just not reading
                except TimeoutError:
                    continue
                except OSError:
                    result["closed"] = True
                    return
                stop.wait(0.5)
        except OSError:
            result["closed"] = True
        finally:
            ws.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def churn(shared: Shared, local_host: str, count: int, deadline: float) -> int:
    """Opens ``count`` connections one after another, each a full handshake, an extension
    handshake and interested, then closes it; returns how many got the seeder's handshake."""
    answered = 0
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        try:
            ws = WireSocket.dial(shared.host, shared.port, local_host, timeout=2.0)
        except OSError:
            continue
        try:
            ws.send_handshake(shared.info.info_hash.value)
            ws.send_ext_handshake()
            ws.send(Interested())
            ws.recv_handshake(timeout=2.0)
            answered += 1
        except (OSError, TimeoutError):
            pass
        finally:
            ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            ws.close()
    return answered
