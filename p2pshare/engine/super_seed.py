"""The super-seeding room (BEP 16 style): reveal pieces a few at a time, different ones to each peer.

When we start with every piece, telling each peer about a few pieces at a time,
spreading different pieces to different peers, makes leechers trade among
themselves instead of each taking a whole copy from us.
"""

from __future__ import annotations

import random

from p2pshare.core.wire.messages import Have, Message
from p2pshare.engine.peer import Peer

__all__ = ["SuperSeeder"]


class SuperSeeder:
    """One shuffled reveal order shared by all peers, and a shared cursor into it."""

    def __init__(self, num_pieces: int, piece_length: int, window_bytes: int, rng: random.Random) -> None:
        self.order = list(range(num_pieces))
        rng.shuffle(self.order)
        self.cursor = 0
        #: pieces revealed to one peer and not yet announced by it (at least two)
        self.window = max(2, window_bytes // piece_length)

    def reveal(self, peer: Peer, now: float) -> None:
        """Announce pieces to ``peer`` until its window of revealed pieces is full.

        Pieces are taken in the shared order from the shared cursor, so different peers
        are told about different pieces first; each peer must then get the others'
        pieces from the leechers that have them.  A peer's window is refilled when it
        announces a revealed piece (whoever it got it from).
        """
        if peer.closed or not peer.handshake_done:
            return
        has = peer.conn.peer_has
        told = peer.conn.we_have
        if has is None or told is None:
            return
        need = self.window - len(peer.revealed)
        if need <= 0:
            return
        order = self.order
        n = len(order)
        start = self.cursor
        msgs: list[Message] = []
        for step in range(n):
            index = order[(start + step) % n]
            if index in has or index in told:
                continue
            msgs.append(Have(index))
            peer.revealed.add(index)
            if len(msgs) >= need:
                self.cursor = (start + step + 1) % n
                break
        peer.send_many(msgs, now)
