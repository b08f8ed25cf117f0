"""Fetch a v2 manifest's piece layers from peers (BEP 52 hash requests), sans I/O.

A download that starts from a magnet link gets the info dict over BEP 9, but the
``piece layers`` live outside it.  :class:`PieceLayerFetch` says which hash requests
to send (:meth:`~PieceLayerFetch.requests`: piece-layer hashes in aligned runs of up
to 512, with enough proof layers to reach the file's root), checks every ``hashes``
answer against the root (:meth:`~PieceLayerFetch.receive`), and hands back the
verified layers (:meth:`~PieceLayerFetch.metainfo`), which then check pieces as a
.torrent's layers would.  A hash that does not verify is the peer's fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pshare.core import merkle
from p2pshare.core.metainfo.model import Info, Metainfo
from p2pshare.core.wire.hashes import Hashes, HashReject, HashRequest
from p2pshare.errors import MetainfoError, RemoteProtocolError

__all__ = ["PieceLayerFetch", "check_piece_leaves", "piece_leaf_request"]

#: BEP 52: "Length SHOULD NOT be greater than 512".
MAX_REQUEST_COUNT = 512


@dataclass
class _FileLayer:
    root: bytes
    length: int
    num_pieces: int
    width: int  #: nodes in the (padded) piece layer: a power of two
    count: int  #: hashes per request
    chunks: dict[int, tuple[bytes, ...]] = field(default_factory=dict)  #: first index -> verified hashes

    def missing(self) -> list[int]:
        return [i for i in range(0, self.num_pieces, self.count) if i not in self.chunks]


class PieceLayerFetch:
    """The piece layers of ``info`` still to fetch, and the ones verified so far."""

    def __init__(self, info: Info, max_count: int = MAX_REQUEST_COUNT) -> None:
        if info.meta_version != 2:
            raise MetainfoError("a v1 manifest has no piece layers")
        if max_count < 2 or max_count & (max_count - 1):
            raise ValueError("max_count must be a power of two of at least 2")
        self.info = info
        self.base = merkle.piece_layer_height(info.piece_length)
        self._files: dict[bytes, _FileLayer] = {}
        for entry in info.files:
            root = entry.pieces_root
            if root is None or entry.length <= info.piece_length or root in self._files:
                continue
            width = merkle.num_leaves(merkle.blocks_in(entry.length)) >> self.base
            self._files[root] = _FileLayer(
                root,
                entry.length,
                -(-entry.length // info.piece_length),
                width,
                min(max_count, width),
            )

    @property
    def complete(self) -> bool:
        return all(not f.missing() for f in self._files.values())

    def _tree_height(self, f: _FileLayer) -> int:
        return merkle.num_leaves(merkle.blocks_in(f.length)).bit_length() - 1

    def requests(self) -> list[HashRequest]:
        """Every hash request still needed (send each to a peer that has the file's pieces)."""
        out: list[HashRequest] = []
        for f in self._files.values():
            proof = self._tree_height(f) - self.base - 1
            out.extend(HashRequest(f.root, self.base, index, f.count, proof) for index in f.missing())
        return out

    def receive(self, msg: Hashes) -> bool:
        """Take a ``hashes`` answer; True if it filled a gap, False if it was already known.

        RemoteProtocolError when it answers nothing we asked for or does not verify.
        """
        f = self._files.get(msg.pieces_root)
        if f is None or msg.base_layer != self.base or msg.length != f.count or msg.index % f.count:
            raise RemoteProtocolError(f"unrequested hashes: {msg!r}")
        if msg.index >= f.num_pieces:
            raise RemoteProtocolError(f"hashes beyond the end of the file: {msg!r}")
        ok = merkle.verify_hashes(
            f.root, f.length, msg.base_layer, msg.index, msg.length, msg.base_hashes, msg.uncle_hashes
        )
        if not ok:
            raise RemoteProtocolError(f"hashes that do not verify against the file's root: {msg!r}")
        if msg.index in f.chunks:
            return False
        f.chunks[msg.index] = msg.base_hashes
        return True

    def rejected(self, msg: HashReject) -> HashRequest:
        """A peer would not serve a request: the same request, to send to another peer."""
        return HashRequest(msg.pieces_root, msg.base_layer, msg.index, msg.length, msg.proof_layers)

    def layers(self) -> dict[bytes, bytes]:
        """The verified piece layers (pieces root -> concatenated hashes); MetainfoError if incomplete."""
        out = {}
        for f in self._files.values():
            if f.missing():
                raise MetainfoError("piece layers are not complete yet")
            hashes = [h for index in sorted(f.chunks) for h in f.chunks[index]]
            out[f.root] = b"".join(hashes[: f.num_pieces])
        return out

    def metainfo(self) -> Metainfo:
        """The manifest with its verified piece layers, ready to check pieces."""
        return Metainfo(self.info, piece_layers=self.layers())


def piece_leaf_request(metainfo: Metainfo, index: int) -> HashRequest | None:
    """The hash request for the leaf hashes of piece ``index`` (base layer 0, no proof):
    with them each 16 KiB block can be checked on its own, and a piece that failed
    its hash shows which block was bad.  None when the piece has one leaf: its piece
    hash is then the block's own hash."""
    info = metainfo.info
    file_index, k = info.v2_piece(index)
    entry = info.files[file_index]
    assert entry.pieces_root is not None
    width = merkle.piece_leaf_width(info.piece_length, entry.length)
    if width < 2:  # BEP 52: a request asks for at least two hashes
        return None
    return HashRequest(entry.pieces_root, 0, k * width, width, 0)


def check_piece_leaves(metainfo: Metainfo, index: int, msg: Hashes) -> list[bytes]:
    """Verify the answer to :func:`piece_leaf_request` against the piece's known hash and
    return one leaf hash per block of the piece (compare ``sha256(block)`` with it).

    RemoteProtocolError when the answer is not for that request or does not verify;
    MetainfoError when the piece's own hash is not known yet.
    """
    want = piece_leaf_request(metainfo, index)
    if want is None:
        raise RemoteProtocolError(f"piece {index} has a single leaf: no leaf hashes were asked for")
    asked = (want.pieces_root, want.base_layer, want.index, want.length, want.proof_layers)
    if (msg.pieces_root, msg.base_layer, msg.index, msg.length, msg.proof_layers) != asked:
        raise RemoteProtocolError(f"hashes that do not answer the leaf request of piece {index}: {msg!r}")
    info = metainfo.info
    file_index, k = info.v2_piece(index)
    entry = info.files[file_index]
    expected = metainfo.v2_piece_hash(index)
    leaves = list(msg.base_hashes)
    if merkle.root_of(leaves, want.length) != expected:
        raise RemoteProtocolError(f"leaf hashes of piece {index} do not hash to its piece hash")
    blocks = merkle.blocks_in(min(info.piece_length, entry.length - k * info.piece_length))
    if any(h != merkle.pad_hash(0) for h in leaves[blocks:]):
        raise RemoteProtocolError(f"leaf hashes of piece {index} beyond the file end are not zero")
    return leaves[:blocks]
