"""Smart ban: blame a failed piece on the peers whose blocks were wrong, not on everyone who helped.

Theory of operation (libtorrent's ``smart_ban`` plugin, written from its description)
---------------------------------------------------------------------------------------
A piece whose blocks came from several peers can fail its hash because one of them
lied.  Banning every contributor lets one liar get honest peers banned and stall the
download; banning none lets the liar go on.  So:

1. while a piece is in flight, :meth:`SmartBan.block_received` notes who sent each block
   (the last sender of a block is the one whose bytes are in the buffer);
2. when the piece fails its hash, :meth:`SmartBan.piece_failed` keeps, per block, the
   sender and a SHA-1 of the bytes it sent (the engine hashes the blocks in its worker
   thread, with the piece);
3. when the piece is fetched again and verifies, :meth:`SmartBan.piece_passed` compares
   the good blocks with the kept digests: a peer whose block differs from the verified
   data sent a bad block, and only that peer is blamed.

A piece that only one peer sent is that peer's alone: the engine bans it at once without
waiting.  The memory is bounded: senders are kept only for pieces in flight (dropped when
the piece completes or is abandoned), and digests for at most ``max_pieces`` failed pieces
(the oldest record is forgotten first).  The class is plain state: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

__all__ = ["SmartBan"]

K = TypeVar("K", bound=Hashable)


class SmartBan(Generic[K]):
    """Who sent which block of the pieces in flight, and of the pieces that failed."""

    def __init__(self, block_size: int, max_pieces: int) -> None:
        if block_size <= 0 or max_pieces <= 0:
            raise ValueError("block_size and max_pieces must be positive")
        self.block_size = block_size
        self.max_pieces = max_pieces
        #: piece -> block number -> the peer whose bytes are in the buffer
        self._senders: dict[int, dict[int, K]] = {}
        #: failed piece -> block number -> peer -> digest of what that peer sent
        self._failed: OrderedDict[int, dict[int, dict[K, bytes]]] = OrderedDict()

    # -- while pieces are in flight -------------------------------------------------------

    def block_received(self, piece: int, begin: int, peer: K) -> None:
        self._senders.setdefault(piece, {})[begin // self.block_size] = peer

    def senders(self, piece: int) -> dict[int, K]:
        """Block number -> sender, for piece ``piece`` in flight (a copy)."""
        return dict(self._senders.get(piece, {}))

    def forget_piece(self, piece: int) -> None:
        """The piece was abandoned (or verified with no record): drop what is known of it."""
        self._senders.pop(piece, None)

    def watching(self, piece: int) -> bool:
        """Whether ``piece`` failed before: its good blocks should be hashed when it passes."""
        return piece in self._failed

    # -- verdicts -------------------------------------------------------------------------

    def piece_failed(self, piece: int, digests: Sequence[bytes]) -> set[K]:
        """Piece ``piece`` failed its hash; ``digests[n]`` is the SHA-1 of its block ``n`` as received.

        Returns the peers that sent any of its blocks.
        """
        senders = self._senders.pop(piece, {})
        record = self._failed.get(piece)
        if record is None:
            record = self._failed[piece] = {}
            while len(self._failed) > self.max_pieces:
                self._failed.popitem(last=False)
        else:
            self._failed.move_to_end(piece)
        for block, peer in senders.items():
            if block < len(digests):
                record.setdefault(block, {})[peer] = digests[block]
        return set(senders.values())

    def piece_passed(self, piece: int, digests: Sequence[bytes]) -> set[K]:
        """Piece ``piece`` verified; ``digests`` are its good blocks' SHA-1s.

        Returns the peers that, in an earlier failed copy, sent a block that differs from the
        verified data: the liars.  The record of the piece is dropped.
        """
        self._senders.pop(piece, None)
        record = self._failed.pop(piece, None)
        if record is None:
            return set()
        liars: set[K] = set()
        for block, sent in record.items():
            good = digests[block] if block < len(digests) else None
            liars.update(peer for peer, digest in sent.items() if digest != good)
        return liars

    def forget_peer(self, peer: K) -> None:
        """A banned peer's records are no longer needed (others' stay)."""
        for record in self._failed.values():
            for sent in record.values():
                sent.pop(peer, None)

    @property
    def failed_pieces(self) -> int:
        return len(self._failed)

    @property
    def tracked_pieces(self) -> int:
        return len(self._senders)
