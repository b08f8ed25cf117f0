"""What a piece's hash check means: announce a good piece, fetch a bad one again, blame only liars.

:class:`Verification` is a base of :class:`~p2pshare.engine.transfer.Transfer` (the
torrent provides the state, as for the other handlers).  Blame follows smart ban
(:mod:`p2pshare.engine.smart_ban`):

* a failed piece that one peer sent alone is that peer's: it is banned at once;
* a failed piece with several senders bans nobody yet: each block's sender and digest
  are kept, and the piece is fetched again;
* when such a piece verifies, every peer whose kept block differs from the good data is
  banned (its address, whether or not it is still connected), and nobody else.
"""

from __future__ import annotations

import logging

from p2pshare.config import Config
from p2pshare.core.metainfo import Info
from p2pshare.core.picker import PiecePicker
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire import messages as wm
from p2pshare.engine import events as ev
from p2pshare.engine.hash_exchange import HashExchange
from p2pshare.engine.peer import Peer
from p2pshare.engine.peer_book import PeerBook
from p2pshare.engine.piece_io import PieceIO
from p2pshare.engine.smart_ban import SmartBan
from p2pshare.errors import Violation

__all__ = ["Verification"]

log = logging.getLogger("p2pshare.torrent")


class Verification:
    """The hash-check outcome of each piece (see the module docstring)."""

    config: Config
    info: Info | None
    peers: dict[PeerAddress, Peer]
    book: PeerBook
    picker: PiecePicker[Peer] | None
    pieces: PieceIO | None
    smart_ban: SmartBan[PeerAddress]
    hashes: HashExchange
    closed: bool
    wasted: int
    pieces_failed: int
    _resume_dirty: bool

    def _drop(self, peer: Peer, reason: str, *, kind: Violation | None = None, ban: bool = False) -> None:
        raise NotImplementedError

    def _emit(self, event: ev.EngineEvent) -> None:
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError

    async def _on_complete(self) -> None:
        raise NotImplementedError

    def _request_more(self, peer: Peer, now: float) -> None:
        raise NotImplementedError

    async def _verify(self, index: int) -> None:
        if self.picker is None or self.pieces is None:
            return
        verdict = await self.pieces.verify(index, digests=self.smart_ban.watching(index))
        if verdict is None or self.closed:
            return
        if verdict.ok:
            liars = self.smart_ban.piece_passed(index, verdict.digests)
            await self._piece_passed(index)
            self._ban_liars(liars, f"sent a bad block of piece {index} (found once it verified)")
            return
        self._piece_failed(index, verdict.digests)

    async def _piece_passed(self, index: int) -> None:
        picker = self.picker
        assert picker is not None
        now = self._now()
        picker.piece_verified(index)
        self._resume_dirty = True
        self._emit(ev.PieceVerified(index))
        for peer in list(self.peers.values()):
            if peer.handshake_done and not peer.closed:
                has = peer.conn.peer_has
                if has is None or index not in has:
                    # A have to a peer that holds the piece tells it nothing (a redundant
                    # have, which libtorrent can suppress too); from seeds it is pure overhead.
                    peer.send(wm.Have(index), now)
                if peer.conn.am_interested and picker.interesting_count(peer) == 0:
                    peer.send(wm.NotInterested(), now)
                else:
                    # The piece's buffer is free again: a peer held back by the in-flight
                    # budget may start a new piece now, not at the next tick.
                    self._request_more(peer, now)
        if picker.complete:
            await self._on_complete()

    def _piece_failed(self, index: int, digests: tuple[bytes, ...]) -> None:
        picker = self.picker
        assert picker is not None
        self.pieces_failed += 1
        self.wasted += self.info.geometry.piece_size(index) if self.info else 0
        block_senders = picker.block_senders(index)  # (before piece_failed forgets them)
        contributors = picker.piece_failed(index)
        senders = self.smart_ban.piece_failed(index, digests)
        labels = tuple(sorted(p.label for p in contributors))
        log.warning("piece %d failed its hash check (sent by %s)", index, ", ".join(labels) or "?")
        self._emit(ev.PieceFailed(index, labels))
        for p in contributors:
            p.strikes += 1
        if len(senders) == 1:
            self._ban_liars(senders, f"sent piece {index} that failed its hash check")
        now = self._now()
        data = self.pieces.failed.pop(index, None) if self.pieces is not None else None
        if data is not None and len(contributors) > 1:  # v2: leaf hashes name the bad blocks' senders now
            self.hashes.blame(index, data, block_senders, self.peers.values(), now)
        for peer in list(self.peers.values()):
            self._request_more(peer, now)

    def _ban_liars(self, liars: set[PeerAddress], reason: str) -> None:
        for address in liars:
            peer = self.peers.get(address)
            if peer is not None:
                self._drop(peer, reason, kind=Violation.BAD_PIECE, ban=True)
            elif not self.book.is_banned(address[0]):
                self.book.ban(address[0])  # it left already: its address stays refused
                log.warning("banned %s: %s", address, reason)
                self._emit(ev.PeerBanned(str(address), reason, Violation.BAD_PIECE))
            self.smart_ban.forget_peer(address)
