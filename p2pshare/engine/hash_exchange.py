"""The v2 room of a torrent (BEP 52): piece layers fetched and served, pieces checked by merkle.

A v2 manifest fetched by magnet has no ``piece layers`` (they live outside the info
dict).  Until every layer is known a v2-only torrent cannot check a single piece of a
file longer than one piece, so it waits (a hybrid goes on with SHA-1 and fills the
layers in as they come).  This room

* asks peers for the missing layers with hash requests (a sans-I/O
  :class:`~p2pshare.core.metainfo.layers.PieceLayerFetch` says which and checks every
  ``hashes`` answer against the file's root: a bad answer drops the peer);
* answers the hash requests of others from the layers it knows (one
  :class:`~p2pshare.core.merkle.MerkleTree` per file, built once), rejecting what it
  cannot prove, and drops a peer that floods it;
* checks pieces: :meth:`HashExchange.verify_piece` holds every 16 KiB block of a piece
  against the piece's node in the file's merkle tree (and a hybrid's SHA-1 too), so
  no block counts before the tree vouches for it;
* blames: a failed piece whose blocks came from several peers is kept, its 16 KiB leaf
  hashes are asked of a peer (checked against the piece's node first, so a lie is the
  answerer's fault), and only the senders of blocks that miss their leaf are banned.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from p2pshare.config import BLOCK_SIZE, Config
from p2pshare.core import merkle
from p2pshare.core.metainfo import Info
from p2pshare.core.metainfo.layers import PieceLayerFetch, check_piece_leaves, piece_leaf_request
from p2pshare.core.metainfo.model import Metainfo
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.core.wire.hashes import Hashes, HashReject, HashRequest
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.peer import Peer
from p2pshare.errors import RemoteProtocolError, Violation

__all__ = ["HashExchange", "manifest_matches", "pad_blocks", "swarm_hashes"]

log = logging.getLogger("p2pshare.torrent")

_Key = tuple[bytes, int, int]  #: (pieces root, base layer, first index) of one hash request


@dataclass
class _Blame:
    """A failed piece, who sent each of its blocks, and whom we asked for its leaf hashes."""

    index: int
    data: bytes
    senders: list[Peer | None]
    request: HashRequest
    asked: PeerAddress | None = None


class HashExchange:
    """Piece layers of one torrent: which we know, which we are fetching, and serving them."""

    def __init__(
        self, config: Config, piece_layers: Mapping[bytes, bytes] | None = None, *, by_v2: bool = False
    ) -> None:
        self.config = config.hash_exchange
        #: joined by the v2 hash: a hybrid waits for its layers too, so every piece meets both hashes
        self.by_v2 = by_v2
        self.limits = config.hashes
        self._given = dict(piece_layers or {})
        self.metainfo: Metainfo | None = None
        self.fetch: PieceLayerFetch | None = None
        self._in_flight: dict[_Key, tuple[PeerAddress, float]] = {}
        self._refused: dict[_Key, set[PeerAddress]] = {}
        self._trees: dict[bytes, merkle.MerkleTree | None] = {}
        self._served: dict[PeerAddress, int] = {}
        #: (piece, begin) of the blocks that lie wholly in pad files: zeros, never requested
        self.pad_blocks: frozenset[tuple[int, int]] = frozenset()
        #: failed v2 pieces whose leaf hashes we asked for, by the request's key
        self._blames: dict[_Key, _Blame] = {}

    # -- state ------------------------------------------------------------------------

    def start(self, info: Info, peers: Iterable[Peer], now: float) -> bool:
        """The manifest is known: keep the layers we were given and fetch the rest (v2 and
        hybrid); True when pieces can be checked now (:attr:`ready`).  Called again later, it
        only answers."""
        if self.metainfo is None:
            self.metainfo = Metainfo(info, piece_layers=self._given)
            self.pad_blocks = pad_blocks(info)
            if info.meta_version == 2:
                fetch = PieceLayerFetch(info)
                missing = {r.pieces_root for r in fetch.requests()} - set(self._given)
                if missing:
                    self.fetch = fetch
                    log.info("v2: %d piece layer(s) to fetch from peers", len(missing))
                    self.request(peers, now)
        return self.ready

    @staticmethod
    def speaks_v2(params: TorrentParams, info: Info | None) -> bool:
        """Set the BEP 52 bit in our handshakes: the torrent is v2 or hybrid (as far as we know)."""
        return params.info_hash_v2 is not None or (info is not None and info.meta_version == 2)

    @property
    def ready(self) -> bool:
        """Every piece can be checked: v1 always; v2-only, and a hybrid joined by its v2 hash, once
        the layers are in; a hybrid joined by its v1 hash at once (SHA-1; the tree too as layers come)."""
        m = self.metainfo
        if m is None:
            return False
        return self.fetch is None or (m.info.has_v1 and not self.by_v2)

    @property
    def fetching(self) -> bool:
        return self.fetch is not None

    def verify_piece(self, index: int, data: bytes | bytearray | memoryview) -> bool:
        """Check a whole piece against every hash known for it (thread-safe: read-only)."""
        assert self.metainfo is not None
        return self.metainfo.verify_piece(index, data)

    # -- fetching ---------------------------------------------------------------------

    def request(self, peers: Iterable[Peer], now: float) -> None:
        """Send the hash requests still needed to peers that can answer them, a few per peer."""
        fetch = self.fetch
        if fetch is None:
            return
        cfg = self.config
        for key, (_, deadline) in list(self._in_flight.items()):
            if now >= deadline:
                del self._in_flight[key]
        load: dict[PeerAddress, int] = {}
        for addr, _ in self._in_flight.values():
            load[addr] = load.get(addr, 0) + 1
        v2 = fetch.info.info_hash_v2
        by_v2 = v2.truncated.value if v2 is not None else b""
        able = [p for p in peers if self._can_answer(p, fetch.info.has_v1, by_v2)]
        if not able:
            return
        out: dict[PeerAddress, list[HashRequest]] = {}
        for req in fetch.requests():
            key = (req.pieces_root, req.base_layer, req.index)
            if key in self._in_flight:
                continue
            refused = self._refused.get(key, set())
            if refused and all(p.address in refused for p in able):
                refused.clear()  # everyone said no once: ask again, someone may have it by now
            choice = min(
                (
                    p
                    for p in able
                    if p.address not in refused and load.get(p.address, 0) < cfg.requests_per_peer
                ),
                key=lambda p: load.get(p.address, 0),
                default=None,
            )
            if choice is None:
                continue
            load[choice.address] = load.get(choice.address, 0) + 1
            self._in_flight[key] = (choice.address, now + cfg.request_timeout)
            out.setdefault(choice.address, []).append(req)
        by_addr = {p.address: p for p in able}
        for addr, reqs in out.items():
            by_addr[addr].send_many(list(reqs), now)

    @staticmethod
    def _can_answer(peer: Peer, hybrid: bool, v2_swarm_id: bytes) -> bool:
        conn = peer.conn
        if peer.closed or not peer.handshake_done:
            return False
        if hybrid and not (conn.peer_supports_v2 or conn.info_hash == v2_swarm_id):
            return False  # a v1-only peer of a hybrid knows no trees
        has = conn.peer_has
        return has is not None and len(has) > 0

    def on_hashes(self, peer: Peer, msg: Hashes) -> bool:
        """A ``hashes`` answer: True when it completed the layers (RemoteProtocolError if it lies)."""
        fetch = self.fetch
        key = (msg.pieces_root, msg.base_layer, msg.index)
        if fetch is None or key in self._blames:
            return False  # a late answer after the layers were complete, or a blame answer
        holder = self._in_flight.get(key)
        if holder is None or holder[0] != peer.address:
            raise RemoteProtocolError(
                f"hashes we did not ask this peer for: {msg!r}", kind=Violation.UNREQUESTED
            )
        del self._in_flight[key]
        try:
            fetch.receive(msg)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(str(exc), kind=Violation.BAD_PIECE, ban=True) from None
        if not fetch.complete:
            return False
        assert self.metainfo is not None
        self.metainfo = fetch.metainfo()
        self.fetch = None
        self._in_flight.clear()
        self._trees.clear()
        log.info("v2: every piece layer verified")
        return True

    def on_reject(self, peer: Peer, msg: HashReject) -> None:
        key = (msg.pieces_root, msg.base_layer, msg.index)
        blame = self._blames.get(key)
        if blame is not None and blame.asked == peer.address:
            blame.asked = None  # the next tick asks another peer
        holder = self._in_flight.get(key)
        if holder is not None and holder[0] == peer.address:
            del self._in_flight[key]
            self._refused.setdefault(key, set()).add(peer.address)

    def forget(self, address: PeerAddress) -> None:
        """A peer left: its requests go to others at once."""
        for key in [k for k, (a, _) in self._in_flight.items() if a == address]:
            del self._in_flight[key]
        self._served.pop(address, None)

    # -- serving ----------------------------------------------------------------------

    def _tree(self, root: bytes) -> merkle.MerkleTree | None:
        if root in self._trees:
            return self._trees[root]
        tree = None
        m = self.metainfo
        if m is not None and m.info.meta_version == 2:
            layer = m.piece_layers.get(root)
            entry = next((f for f in m.info.files if f.pieces_root == root), None)
            if layer is not None and entry is not None:
                height = merkle.piece_layer_height(m.info.piece_length)
                tree = merkle.MerkleTree(merkle.split_hashes(layer), entry.length, height)
        self._trees[root] = tree
        return tree

    def answer(self, peer: Peer, msg: HashRequest) -> Hashes | HashReject:
        """What to send for a peer's hash request (RemoteProtocolError when it floods us)."""
        count = self._served.get(peer.address, 0) + 1
        self._served[peer.address] = count
        if count > self.config.max_served_per_tick:
            raise RemoteProtocolError(
                f"more than {self.config.max_served_per_tick} hash requests in one tick",
                kind=Violation.FLOOD,
                ban=True,
            )
        fields = (msg.pieces_root, msg.base_layer, msg.index, msg.length, msg.proof_layers)
        tree = self._tree(msg.pieces_root)
        if tree is not None:
            hashes = tree.hashes_for(msg.base_layer, msg.index, msg.length, msg.proof_layers)
            if hashes is not None:
                return Hashes(*fields, tuple(hashes))
        return HashReject(*fields)

    def tick(self, peers: Iterable[Peer], now: float) -> None:
        """A status tick: the flood counters start again; unanswered requests go out again."""
        self._served.clear()
        peers = list(peers)
        if self.fetch is not None:
            self.request(peers, now)
        for blame in list(self._blames.values()):
            if blame.asked is None:
                self._ask_leaves(blame, peers, now)

    # -- blaming the senders of bad blocks ----------------------------------------------

    def blame(
        self, index: int, data: bytes, senders: list[Peer | None], peers: Iterable[Peer], now: float
    ) -> None:
        """A v2 piece from several peers failed: ask for its leaf hashes to find the bad blocks."""
        m = self.metainfo
        if m is None or m.info.meta_version != 2 or not m.has_v2_piece_hash(index):
            return
        req = piece_leaf_request(m, index)
        if req is None:
            return  # one block: its sender was the only contributor
        limit = self.config.max_failed_pieces_kept
        while len(self._blames) >= limit:
            del self._blames[next(iter(self._blames))]
        blame = _Blame(index, data, senders, req)
        self._blames[(req.pieces_root, req.base_layer, req.index)] = blame
        self._ask_leaves(blame, peers, now)

    def _ask_leaves(self, blame: _Blame, peers: Iterable[Peer], now: float) -> None:
        suspects = {p.address for p in blame.senders if p is not None}
        able = [p for p in peers if not p.closed and p.handshake_done and p.conn.peer_has is not None]
        able.sort(key=lambda p: p.address in suspects)  # an honest peer answers first, if we have one
        if able:
            blame.asked = able[0].address
            able[0].send(blame.request, now)

    def on_leaf_hashes(self, peer: Peer, msg: Hashes) -> set[Peer] | None:
        """The answer to a blame request: the peers that sent bad blocks (None: not a blame answer).

        The leaves are checked against the piece's node in the tree first, so a lying
        answer is the answering peer's fault (RemoteProtocolError), never an innocent's.
        """
        key = (msg.pieces_root, msg.base_layer, msg.index)
        blame = self._blames.get(key)
        if blame is None or blame.asked != peer.address:
            return None
        del self._blames[key]
        assert self.metainfo is not None
        try:
            leaves = check_piece_leaves(self.metainfo, blame.index, msg)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(str(exc), kind=Violation.BAD_PIECE, ban=True) from None
        bad = set()
        for b, leaf in enumerate(leaves):
            block = blame.data[b * merkle.LEAF_SIZE : (b + 1) * merkle.LEAF_SIZE]
            sender = blame.senders[b] if b < len(blame.senders) else None
            if hashlib.sha256(block).digest() != leaf and sender is not None:
                bad.add(sender)
        return bad


def swarm_hashes(params: TorrentParams, info: Info | None = None) -> list[InfoHash]:
    """Every 20-byte id the torrent's swarm goes by: the one it was added with, then a hybrid's
    other hash (the truncated v2 hash, or the v1 hash), for the DHT and incoming handshakes."""
    out = [params.info_hash]
    info = info if info is not None else params.info
    candidates = [params.info_hash_v2.truncated if params.info_hash_v2 is not None else None]
    if info is not None:
        candidates += [
            info.info_hash_v1,
            info.info_hash_v2.truncated if info.info_hash_v2 is not None else None,
        ]
    for h in candidates:
        if h is not None and h not in out:
            out.append(h)
    return out


def manifest_matches(info: Info, info_hash: InfoHash) -> bool:
    """The manifest is the one ``info_hash`` names: by its v1 hash, or its truncated v2 hash."""
    v2 = info.info_hash_v2
    return info.info_hash == info_hash or (v2 is not None and v2.truncated == info_hash)


def pad_blocks(info: Info) -> frozenset[tuple[int, int]]:
    """(piece, begin) of every 16 KiB block that lies wholly inside a BEP 47 pad file."""
    geometry = info.geometry
    out = set()
    for f in info.files:
        if not f.pad or not f.length:
            continue
        end = f.offset + f.length
        first = -(-f.offset // BLOCK_SIZE) * BLOCK_SIZE  # pads end on a piece boundary; blocks tile pieces
        for start in range(first, end, BLOCK_SIZE):
            piece = start // info.piece_length
            begin = start - geometry.piece_offset(piece)
            if start + min(BLOCK_SIZE, geometry.piece_size(piece) - begin) <= end:
                out.add((piece, begin))
    return frozenset(out)
