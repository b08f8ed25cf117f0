"""The fuzz targets: one per parser of outside input, with its seeds and the errors it may raise.

A target takes bytes and returns nothing.  It may raise only its ``allowed``
exceptions (the typed errors that mean "bad input, drop it"); anything else, a
hang past the harness's bound, or memory that keeps growing is a finding.
Add a target by adding an entry to :data:`TARGETS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from p2pshare.core import bencode
from p2pshare.errors import BencodeError, MetainfoError, RemoteProtocolError, TargetError

__all__ = ["TARGETS", "Target"]

INFO_HASH = hashlib.sha1(b"fuzz").digest()
PEER_A = b"-PS0100-aaaaaaaaaaaa"
PEER_B = b"-LT2000-bbbbbbbbbbbb"


@dataclass(frozen=True)
class Target:
    """A parser under fuzzing."""

    name: str
    run: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]
    structured: bool  #: seeds are bencode: use structure-aware mutations too


# ---------------------------------------------------------------------- bencode


def _bencode_run(data: bytes) -> None:
    value = bencode.decode(data)
    # What we decoded must survive a round trip (keys may arrive unsorted: real clients send that).
    if bencode.decode(bencode.encode(value)) != value:
        raise AssertionError("decode produced a value that does not round-trip")


def _bencode_seeds() -> list[bytes]:
    return [
        b"i0e",
        b"i-42e",
        b"4:spam",
        b"le",
        b"de",
        b"li1ei2ee",
        bencode.encode({b"a": [1, 2, {b"b": b"c"}], b"z": b"x" * 40}),
        *_torrent_seeds(),
        *_krpc_seeds(),
    ]


# ---------------------------------------------------------------------- metainfo


def _torrent_seeds() -> list[bytes]:
    piece = 16384
    single = {b"name": b"a.bin", b"length": 40000, b"piece length": piece, b"pieces": b"\x01" * 60}
    multi = {
        b"name": b"dir",
        b"piece length": piece,
        b"pieces": b"\x02" * 40,
        b"files": [
            {b"length": 20000, b"path": [b"sub", b"x.txt"]},
            {b"length": 0, b"path": [b"empty"]},
            {b"length": 12000, b"path": [b"y"]},
        ],
    }
    return [
        bencode.encode({b"announce": b"http://127.0.0.1/a", b"info": single}),
        bencode.encode({b"info": multi, b"comment": b"c", b"creation date": 1}),
        *_v2_torrent_seeds(),
    ]


def _v2_torrent_seeds() -> list[bytes]:
    """A v2 and a hybrid .torrent (file tree, piece layers, pad files) of a small folder."""
    from p2pshare.core import merkle
    from p2pshare.core.metainfo import build_info_v2, encode_torrent

    piece = 16384
    files = [(("a",), bytes(range(256)) * 150), (("b", "c"), b"x" * 5000), (("e",), b"")]
    per_file = [
        [merkle.piece_hash(d[i : i + piece], piece, len(d)) for i in range(0, len(d), piece)]
        for _, d in files
    ]
    stream = b"".join(d + bytes(-len(d) % piece) for _, d in files)
    v1 = b"".join(hashlib.sha1(stream[i : i + piece]).digest() for i in range(0, len(stream), piece))
    out = []
    for v1_pieces in (None, v1):
        info, layers = build_info_v2(
            "v2dir", [(p, len(d)) for p, d in files], piece, per_file, single_file=False, v1_pieces=v1_pieces
        )
        out.append(encode_torrent(info, piece_layers=layers))
    return out


def _metainfo_run(data: bytes) -> None:
    from p2pshare.core.metainfo import parse_torrent

    parse_torrent(data)


# ---------------------------------------------------------------------- wire


def _wire_seeds() -> list[bytes]:
    from p2pshare.core.wire import (
        BitfieldMsg,
        Cancel,
        Extended,
        ExtensionHandshake,
        Have,
        HaveAll,
        Interested,
        Port,
        Request,
        Unchoke,
        encode,
        encode_handshake,
    )

    hs = encode_handshake(INFO_HASH, PEER_B, fast=True, extensions=True)
    ext = Extended(0, ExtensionHandshake.ours(metadata_size=1000).encode())
    body = [
        ext,
        BitfieldMsg(b"\xff\xc0"),
        Have(3),
        Interested(),
        Unchoke(),
        Request(0, 0, 16384),
        Cancel(0, 0, 16384),
        Port(6881),
        Extended(1, b"d8:msg_typei0e5:piecei0ee"),
    ]
    seeds = [hs + b"".join(encode(m) for m in body), hs + encode(HaveAll()) + encode(Request(9, 0, 16384))]
    from p2pshare.core.wire.hashes import Hashes, HashReject, HashRequest

    root = bytes(range(32))
    bep52 = [
        HashRequest(root, 0, 0, 2, 1),
        Hashes(root, 0, 0, 2, 2, (b"\x01" * 32,) * 4),
        HashReject(root, 1, 4, 4, 0),
    ]
    seeds.append(hs + encode(HaveAll()) + b"".join(encode(m) for m in bep52))
    return seeds


def _wire_run(data: bytes) -> None:
    from p2pshare.core.wire import PeerClosed, PeerConnection

    conn = PeerConnection(INFO_HASH, PEER_A, initiator=True, num_pieces=10)
    conn.handshake_bytes()
    # Half the input in one go, the rest in small chunks: framing across reads.
    half = len(data) // 2
    chunks = [data[:half]] + [data[i : i + 7] for i in range(half, len(data), 7)]
    for chunk in chunks:
        conn.receive_data(chunk)
        for _ in range(100_000):
            event = conn.next_event()
            if event is None:
                break
            if isinstance(event, PeerClosed):
                return
        else:
            raise AssertionError("next_event never ran dry")


def _extension_run(data: bytes) -> None:
    from p2pshare.core.wire import ExtensionHandshake

    ExtensionHandshake.decode(data)


def _extension_seeds() -> list[bytes]:
    from p2pshare.core.wire import ExtensionHandshake

    return [
        ExtensionHandshake.ours(metadata_size=31235, port=6881, yourip=b"\x7f\x00\x00\x01").encode(),
        bencode.encode(
            {
                b"m": {b"ut_metadata": 3, b"ut_pex": 1, b"lt_donthave": 7},
                b"reqq": 2000,
                b"v": b"libtorrent 2.1",
                b"p": 6881,
                b"metadata_size": 5,
                b"upload_only": 1,
            }
        ),
    ]


def _metadata_run(data: bytes) -> None:
    from p2pshare.core.wire import decode_metadata_message

    decode_metadata_message(data)


def _metadata_seeds() -> list[bytes]:
    return [
        b"d8:msg_typei0e5:piecei0ee",
        b"d8:msg_typei1e5:piecei2e10:total_sizei40000ee" + b"z" * 100,
        b"d8:msg_typei2e5:piecei1ee",
    ]


# ---------------------------------------------------------------------- DHT


def _krpc_seeds() -> list[bytes]:
    from p2pshare.core.dht import krpc

    node = b"n" * 20
    return [
        krpc.encode_query(b"aa", b"ping", {b"id": node}),
        krpc.encode_query(b"ab", b"find_node", {b"id": node, b"target": b"t" * 20, b"want": [b"n4", b"n6"]}),
        krpc.encode_query(b"ac", b"get_peers", {b"id": node, b"info_hash": INFO_HASH}),
        krpc.encode_query(
            b"ad",
            b"announce_peer",
            {b"id": node, b"info_hash": INFO_HASH, b"port": 6881, b"token": b"tok", b"implied_port": 1},
            read_only=True,
        ),
        krpc.encode_response(
            b"ab", {b"id": node, b"nodes": (node + b"\x7f\x00\x00\x01\x1a\xe1") * 3}, ip=("127.0.0.1", 6881)
        ),
        krpc.encode_response(b"ac", {b"id": node, b"token": b"x", b"values": [b"\x7f\x00\x00\x01\x1a\xe1"]}),
        krpc.encode_error(b"ae", 203, "Protocol Error"),
        # BEP 44
        krpc.encode_query(b"af", b"get", {b"id": node, b"target": b"t" * 20, b"seq": 3}),
        krpc.encode_query(b"ag", b"put", {b"id": node, b"token": b"tok", b"v": b"12:Hello World!"}),
        krpc.encode_query(
            b"ah",
            b"put",
            {
                b"id": node,
                b"token": b"tok",
                b"v": [1, b"x", {b"a": b"b"}],
                b"k": b"k" * 32,
                b"sig": b"s" * 64,
                b"seq": 4,
                b"salt": b"salt",
                b"cas": 3,
            },
        ),
        krpc.encode_response(
            b"af",
            {
                b"id": node,
                b"token": b"x",
                b"v": b"abc",
                b"k": b"k" * 32,
                b"sig": b"s" * 64,
                b"seq": 9,
                b"nodes": node + b"\x7f\x00\x00\x01\x1a\xe1",
            },
        ),
    ]


def _krpc_run(data: bytes) -> None:
    from p2pshare.core.dht import krpc

    msg = krpc.decode_message(data, max_packet=1500)
    if isinstance(msg, krpc.Response):
        krpc.response_nodes(msg)
        krpc.response_nodes(msg, ipv6=True)
        krpc.response_values(msg)
        krpc.response_token(msg)


# ---------------------------------------------------------------------- MSE/PE (what a dialer sends us)


def _det_random(seed: int) -> Callable[[int], bytes]:
    """Deterministic randomness, so the receiver's key (and a recorded initiator transcript) repeat."""
    import random

    return random.Random(seed).randbytes


def _mse_receiver() -> object:
    from p2pshare.config import MseConfig
    from p2pshare.core.mse import Receiver, skey_lookup

    return Receiver(skey_lookup([INFO_HASH]), config=MseConfig(), now=0.0, random_bytes=_det_random(2))


def _mse_seeds() -> list[bytes]:
    """What a real initiator sends to our (deterministic) receiver, whole; and a plain handshake."""
    from p2pshare.config import MseConfig
    from p2pshare.core.mse import Initiator
    from p2pshare.core.wire import encode_handshake

    bt = encode_handshake(INFO_HASH, PEER_B, fast=True, extensions=True)
    seeds = [bt]
    for seed in (1, 3):
        a = Initiator(
            INFO_HASH, config=MseConfig(), now=0.0, initial_payload=bt, random_bytes=_det_random(seed)
        )
        b = _mse_receiver()
        sent = bytearray()
        for _ in range(6):  # a few round trips complete the handshake
            out = a.data_to_send()
            sent += out
            if out:
                b.receive_data(out)  # type: ignore[attr-defined]
            back = b.data_to_send()  # type: ignore[attr-defined]
            if back:
                a.receive_data(back)
        seeds.append(bytes(sent))
    return seeds


def _mse_run(data: bytes) -> None:
    from p2pshare.core.mse import Failed, HandshakeDone, PlaintextStream

    machine = _mse_receiver()
    half = len(data) // 2
    for chunk in (data[:half], data[half:], b""):
        machine.receive_data(chunk)  # type: ignore[attr-defined]
        machine.data_to_send()  # type: ignore[attr-defined]
        for _ in range(1000):
            event = machine.next_event()  # type: ignore[attr-defined]
            if event is None:
                break
            if isinstance(event, Failed):  # the machine's typed verdict on bad input
                raise RemoteProtocolError(f"mse: {event.reason}")
            if isinstance(event, (HandshakeDone, PlaintextStream)):
                return


# ---------------------------------------------------------------------- uTP (datagrams from anyone)


def _utp_frames(datagrams: list[bytes]) -> bytes:
    """Several datagrams in one input: each behind a 2-byte length."""
    return b"".join(len(d).to_bytes(2, "big") + d for d in datagrams)


def _utp_seeds() -> list[bytes]:
    from p2pshare.core.utp import Packet, PacketType, encode

    def pkt(kind: PacketType, seq: int, ack: int, payload: bytes = b"", sack: bytes | None = None) -> bytes:
        return encode(Packet(kind, 1000, 1, 0, 1 << 20, seq, ack, sack, payload))

    syn = pkt(PacketType.SYN, 1, 0)
    return [
        _utp_frames(
            [
                syn,
                pkt(PacketType.DATA, 2, 1, b"x" * 100),
                pkt(PacketType.DATA, 4, 1, b"y" * 50, sack=b"\x01\x00\x00\x00"),
            ]
        ),
        _utp_frames([syn, pkt(PacketType.STATE, 1, 1), pkt(PacketType.FIN, 2, 1)]),
        _utp_frames([pkt(PacketType.RESET, 5, 5), syn, syn]),
    ]


def _utp_run(data: bytes) -> None:
    from p2pshare.core.utp import UtpManager, UtpPacketError

    manager = UtpManager()
    now, pos = 0.0, 0
    while pos + 2 <= len(data):
        size = int.from_bytes(data[pos : pos + 2], "big")
        manager.receive_datagram(data[pos + 2 : pos + 2 + size], ("127.0.0.9", 6881), now)
        pos += 2 + size
        now += 0.01
        manager.datagrams_to_send(now)
        manager.handle_timer(now)
        for _ in range(10_000):
            if manager.next_event() is None:
                break
    if manager.stats["malformed"]:
        raise UtpPacketError("malformed datagrams were dropped")  # counted as a typed rejection


# ---------------------------------------------------------------------- magnet links (user input)


def _magnet_run(data: bytes) -> None:
    from p2pshare.core.magnet import parse_magnet

    parse_magnet(data.decode("latin-1"))


def _magnet_seeds() -> list[bytes]:
    return [
        b"magnet:?xt=urn:btih:" + INFO_HASH.hex().encode() + b"&dn=a%20b&x.pe=127.0.0.1:6881&x.pe=[::1]:1",
        b"magnet:?xt=urn:btih:CNXGOEBFHY5VDLB5YWW5VHDQYWYYCKHQ&tr=udp%3A%2F%2F127.0.0.1%3A1",
        INFO_HASH.hex().encode(),
    ]


# ---------------------------------------------------------------------- BEP 46 pointer items


def _pointer_run(data: bytes) -> None:
    from p2pshare.core.updatable import parse_btpk_magnet, parse_pointer

    if data[:7].lower() == b"magnet:":
        try:
            parse_btpk_magnet(data.decode("latin-1"))
        except TargetError as exc:
            raise RemoteProtocolError(str(exc)) from None  # a typed rejection, as for items
        return
    parse_pointer(data)


def _pointer_seeds() -> list[bytes]:
    return [
        bencode.encode({b"ih": INFO_HASH}),
        bencode.encode({b"ih": INFO_HASH, b"ih2": INFO_HASH + bytes(12)}),
        b"magnet:?xs=urn:btpk:" + bytes(range(32)).hex().encode() + b"&s=0102&dn=x",
    ]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("bencode", _bencode_run, (BencodeError,), _bencode_seeds, True),
        Target("metainfo", _metainfo_run, (MetainfoError, BencodeError), _torrent_seeds, True),
        Target("wire", _wire_run, (RemoteProtocolError,), _wire_seeds, False),
        Target("extension", _extension_run, (RemoteProtocolError,), _extension_seeds, True),
        Target("ut_metadata", _metadata_run, (RemoteProtocolError,), _metadata_seeds, True),
        Target("krpc", _krpc_run, (RemoteProtocolError,), _krpc_seeds, True),
        Target("magnet", _magnet_run, (TargetError,), _magnet_seeds, False),
        Target("mse", _mse_run, (RemoteProtocolError,), _mse_seeds, False),
        Target("utp", _utp_run, (RemoteProtocolError,), _utp_seeds, False),
        Target("bep46", _pointer_run, (RemoteProtocolError,), _pointer_seeds, False),
    )
}

# Tracker answers live in their own module (it imports Target from here).
from fuzz.tracker_targets import TRACKER_TARGETS  # noqa: E402

TARGETS.update((t.name, t) for t in TRACKER_TARGETS)
