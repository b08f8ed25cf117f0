"""v2 and hybrid torrents in an in-memory swarm: fetched by v2 hash, piece layers by hash request."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from p2pshare.config import DEFAULT_CONFIG
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.merkle import LEAF_SIZE, MerkleTree, piece_layer_height, split_hashes, verify_hashes
from p2pshare.core.metainfo import Info
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire.hashes import Hashes, HashReject, HashRequest
from p2pshare.engine import events as ev
from p2pshare.engine.hash_exchange import HashExchange, pad_blocks, swarm_hashes
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.peer import Peer
from p2pshare.engine.torrent import Torrent
from p2pshare.errors import RemoteProtocolError, Violation
from p2pshare.io.storage import MemoryStorage
from tests.core.v2_helpers import build
from tests.engine.memory_swarm import MemoryHost, MemoryNetwork, of, quick_config, until

PIECE = 4 * 16384  #: four blocks a piece: pad files hold whole blocks


def _files(seed: int = 1) -> list[tuple[tuple[str, ...], bytes]]:
    rng = random.Random(seed)
    return [
        (("a.bin",), rng.randbytes(7 * PIECE + 100)),
        (("b.bin",), rng.randbytes(3 * PIECE)),
        (("c.txt",), rng.randbytes(5000)),
    ]


def _stream(info: Info, files: list[tuple[tuple[str, ...], bytes]]) -> bytes:
    """The piece address space of ``info``: each file's bytes, pad entries as zeros."""
    data = iter(d for _, d in files)
    return b"".join(bytes(f.length) if f.pad else next(data) for f in info.files)


class Net:
    """Torrents on one in-memory network, each with its own MemoryStorage."""

    def __init__(self, tmp_path: Path) -> None:
        self.network = MemoryNetwork()
        self.tmp_path = tmp_path
        self.torrents: list[Torrent] = []
        self.storages: dict[str, MemoryStorage] = {}
        self.events: dict[str, list[ev.EngineEvent]] = {}

    async def add(self, host: str, params: TorrentParams, data: bytes | None = None) -> Torrent:
        address = PeerAddress(host, 6881)
        mhost = MemoryHost(self.network, address, quick_config())

        def open_storage(got: Info) -> MemoryStorage:
            self.storages[host] = storage = MemoryStorage(got.geometry, data)
            return storage

        torrent = Torrent(
            params, mhost, storage=open_storage, on_event=self.events.setdefault(host, []).append
        )
        self.network.listen(address, lambda link: _route(torrent, link))
        await torrent.start()
        self.torrents.append(torrent)
        return torrent

    async def close(self) -> None:
        for t in self.torrents:
            await t.close()


def _route(torrent: Torrent, link: object) -> None:
    """Like the session: an incoming link is taken whatever hash it names; its handshake is checked."""
    torrent.attach(link, outgoing=False)  # type: ignore[arg-type]


async def test_v2_only_download_by_btmh_fetches_layers_and_verifies(tmp_path: Path) -> None:
    """A downloader with only the v2 hash gets the manifest, the piece layers and every piece."""
    files = _files()
    info, layers = build(files, PIECE)
    assert info.format == "v2" and layers
    payload = _stream(info, files)
    net = Net(tmp_path)
    try:
        seed = await net.add(
            "127.0.0.10",
            TorrentParams(info.info_hash, info=info, assume_complete=True, piece_layers=layers),
            payload,
        )
        assert seed.completed.is_set()
        v2 = info.info_hash_v2
        assert v2 is not None
        get = await net.add("127.0.0.2", TorrentParams(v2.truncated, info_hash_v2=v2))
        get.add_peers([("127.0.0.10", 6881)], "test")
        await until(get.completed.is_set, "the v2 download to complete", 15)
        assert net.storages["127.0.0.2"].data == payload
        assert get.hashes.metainfo is not None and dict(get.hashes.metainfo.piece_layers) == layers
        assert not of(net.events["127.0.0.2"], ev.PieceFailed)
        pads = pad_blocks(info)  # zeros filled here, never fetched
        assert pads and get.downloaded == info.total_length - LEAF_SIZE * len(pads) < info.total_length
    finally:
        await net.close()


async def test_v2_piece_with_a_wrong_block_fails_and_the_liar_is_banned(tmp_path: Path) -> None:
    """A seed whose data breaks the merkle tree has its piece fail; the good seed supplies it."""
    files = _files(2)
    info, layers = build(files, PIECE)
    payload = _stream(info, files)
    bad = bytearray(payload)
    bad[PIECE + 5] ^= 0xFF  # a byte in piece 1, block 0
    net = Net(tmp_path)
    try:
        params = TorrentParams(info.info_hash, info=info, assume_complete=True, piece_layers=layers)
        await net.add("127.0.0.11", params, bytes(bad))
        v2 = info.info_hash_v2
        assert v2 is not None
        get = await net.add("127.0.0.2", TorrentParams(v2.truncated, info=info, piece_layers=layers))
        get.add_peers([("127.0.0.11", 6881)], "test")
        await until(lambda: bool(of(net.events["127.0.0.2"], ev.PieceFailed)), "a failed piece", 15)
        assert not get.completed.is_set()
        await net.add("127.0.0.10", params, payload)
        get.add_peers([("127.0.0.10", 6881)], "test")
        await until(get.completed.is_set, "the download to complete from the good seed", 15)
        assert net.storages["127.0.0.2"].data == payload
    finally:
        await net.close()


async def test_hybrid_swarm_joined_under_both_hashes(tmp_path: Path) -> None:
    """A hybrid seed serves a downloader that dials with the v1 hash and one that dials with the v2 hash."""
    files = _files(3)
    info, layers = build(files, PIECE, hybrid=True)
    assert info.format == "hybrid"
    payload = _stream(info, files)
    v1, v2 = info.info_hash_v1, info.info_hash_v2
    assert v1 is not None and v2 is not None
    params = TorrentParams(v1, info=info, assume_complete=True, piece_layers=layers)
    assert swarm_hashes(params) == [v1, v2.truncated]
    net = Net(tmp_path)
    try:
        await net.add("127.0.0.10", params, payload)
        by_v1 = await net.add("127.0.0.2", TorrentParams(v1))
        by_v2 = await net.add("127.0.0.3", TorrentParams(v2.truncated, info_hash_v2=v2))
        for t in (by_v1, by_v2):
            t.add_peers([("127.0.0.10", 6881)], "test")
        await until(lambda: by_v1.completed.is_set() and by_v2.completed.is_set(), "both downloads", 15)
        assert net.storages["127.0.0.2"].data == payload == net.storages["127.0.0.3"].data
        assert by_v2.hashes.metainfo is not None and dict(by_v2.hashes.metainfo.piece_layers) == layers
    finally:
        await net.close()


def test_served_hashes_answer_and_reject() -> None:
    """A seed answers a piece-layer request with hashes that verify and rejects a leaf request."""
    piece = 2 * LEAF_SIZE
    data = random.Random(4).randbytes(9 * piece + 7)
    info, layers = build([(("a.bin",), data)], piece)
    room = HashExchange(DEFAULT_CONFIG, layers)
    room.start(info, [], 0.0)
    assert room.ready and not room.fetching
    entry = info.files[0]
    assert entry.pieces_root is not None and entry.length == len(data)
    peer = cast(Peer, SimpleNamespace(address=PeerAddress("127.0.0.5", 1)))
    base = piece_layer_height(piece)
    proof = 5 - base - 1  # 19 leaves pad to 32: a tree of height 5; proof layers reach the root
    answer = room.answer(peer, HashRequest(entry.pieces_root, base, 8, 8, proof))
    assert isinstance(answer, Hashes) and len(answer.uncle_hashes) == 1
    assert answer.base_hashes[:2] == tuple(split_hashes(layers[entry.pieces_root])[8:])
    assert verify_hashes(entry.pieces_root, entry.length, base, 8, 8, answer.base_hashes, answer.uncle_hashes)
    leaf = room.answer(peer, HashRequest(entry.pieces_root, 0, 0, 2, 3))
    assert isinstance(leaf, HashReject)
    unknown = room.answer(peer, HashRequest(bytes(32), base, 0, 2, 2))
    assert isinstance(unknown, HashReject)


def test_hash_request_flood_is_a_violation() -> None:
    """More hash requests in one tick than the limit is a flood that bans the peer."""
    info, layers = build(_files(5), PIECE)
    room = HashExchange(DEFAULT_CONFIG, layers)
    room.start(info, [], 0.0)
    peer = cast(Peer, SimpleNamespace(address=PeerAddress("127.0.0.5", 1)))
    req = HashRequest(bytes(32), 0, 0, 2, 0)
    for _ in range(DEFAULT_CONFIG.hash_exchange.max_served_per_tick):
        room.answer(peer, req)
    with pytest.raises(RemoteProtocolError) as err:
        room.answer(peer, req)
    assert err.value.kind is Violation.FLOOD and err.value.ban
    room.tick([], 0.0)
    assert isinstance(room.answer(peer, req), HashReject)


class _FakePeer:
    """Just enough of a Peer for the blame room: an address, a state, and a send that records."""

    def __init__(self, host: str, sent: list[object]) -> None:
        self.address = PeerAddress(host, 1)
        self.closed = False
        self.handshake_done = True
        self.conn = SimpleNamespace(peer_has=Bitfield(4, full=True))
        self._sent = sent

    def send(self, msg: object, now: float) -> None:
        self._sent.append(msg)


def _fake_peer(host: str, sent: list[object]) -> Peer:
    return cast(Peer, _FakePeer(host, sent))


def test_leaf_hashes_name_the_sender_of_the_bad_block() -> None:
    """A failed v2 piece from two peers: leaf hashes asked of a third blame only the bad block's sender."""
    piece = 4 * LEAF_SIZE
    data = random.Random(9).randbytes(3 * piece)
    info, layers = build([(("a.bin",), data)], piece)
    room = HashExchange(DEFAULT_CONFIG, layers)
    room.start(info, [], 0.0)
    sent: list[object] = []
    good, bad, honest = (
        _fake_peer("127.0.0.5", sent),
        _fake_peer("127.0.0.6", sent),
        _fake_peer("127.0.0.7", sent),
    )
    broken = bytearray(data[piece : 2 * piece])
    broken[LEAF_SIZE + 10] ^= 1  # block 1 of piece 1, sent by ``bad``
    room.blame(1, bytes(broken), [good, bad, good, bad], [good, bad, honest], 0.0)
    assert len(sent) == 1 and isinstance(sent[0], HashRequest) and sent[0].base_layer == 0
    req = sent[0]
    tree = MerkleTree.from_data(data)
    answer = Hashes(
        req.pieces_root,
        0,
        req.index,
        req.length,
        0,
        tuple(tree.hashes_for(0, req.index, req.length, 0) or ()),
    )
    assert room.on_leaf_hashes(good, answer) is None  # asked of the honest peer, not of this one
    assert room.on_leaf_hashes(honest, answer) == {bad}
    assert room.on_leaf_hashes(honest, answer) is None  # answered once


def test_lying_leaf_hashes_are_the_answerers_fault() -> None:
    """Leaf hashes that do not roll up to the piece's node ban the peer that sent them."""
    piece = 4 * LEAF_SIZE
    data = random.Random(10).randbytes(2 * piece)
    info, layers = build([(("a.bin",), data)], piece)
    room = HashExchange(DEFAULT_CONFIG, layers)
    room.start(info, [], 0.0)
    sent: list[object] = []
    a, b = _fake_peer("127.0.0.5", sent), _fake_peer("127.0.0.6", sent)
    room.blame(0, data[:piece], [a, b, a, b], [a, b], 0.0)
    req = sent[0]
    assert isinstance(req, HashRequest)
    lie = Hashes(req.pieces_root, 0, req.index, req.length, 0, (bytes(32),) * req.length)
    with pytest.raises(RemoteProtocolError) as err:
        room.on_leaf_hashes(cast(Peer, SimpleNamespace(address=PeerAddress("127.0.0.5", 1))), lie)
    assert err.value.kind is Violation.BAD_PIECE and err.value.ban


def test_pad_blocks_are_the_blocks_wholly_inside_pad_files() -> None:
    """Every block inside a pad file is listed, and no block holding a byte of a real file is."""
    info, _ = build(_files(), PIECE)
    pads = pad_blocks(info)
    real: set[tuple[int, int]] = set()
    for index, f in enumerate(info.files):
        if f.pad:
            continue
        for start in range(f.offset, f.offset + f.length, LEAF_SIZE):
            real.add((start // PIECE, start % PIECE))
        del index
    assert pads and not (pads & real)
    total_blocks = sum(-(-info.geometry.piece_size(i) // LEAF_SIZE) for i in range(info.num_pieces))
    assert len(pads) + len(real) == total_blocks
