"""Global upload and download caps (``--max-up`` / ``--max-down``), shared by a session's torrents.

Download: each batch of bytes a link delivers is debited from the download bucket;
when the bucket is in debt, that link stops reading (back-pressure through TCP) for
as long as the debt takes to repay.  Upload: each batch of blocks written to a peer
is debited from the upload bucket, and that peer's upload task sleeps off the debt.
Nothing is counted per block.
"""

from __future__ import annotations

import asyncio

from p2pshare.config import CoopConfig
from p2pshare.core.rate import TokenBucket
from p2pshare.core.wire.messages import Request
from p2pshare.engine.peer import Peer
from p2pshare.io.link import Link

__all__ = ["RateLimits", "upload_batch"]


def upload_batch(peer: Peer, first: Request, piece: bytes) -> tuple[list[bytes | memoryview], int]:
    """The write for ``first`` and the requests queued behind it for the same piece: (parts, bytes).

    Peers ask for a piece's blocks in a row, so one read of the piece answers several
    requests in one write, debited from the upload bucket once.  Requests cancelled or
    discarded by a choke while the piece was read give nothing.
    """
    batch = [first]
    while peer.uploads and peer.uploads[0].index == first.index:
        batch.append(peer.uploads.popleft())
    view = memoryview(piece)
    parts: list[bytes | memoryview] = []
    sent = 0
    for r in batch:
        block = peer.conn.send_piece(r.index, r.begin, view[r.begin : r.begin + r.length])
        if block:
            parts += block
            sent += r.length
    return parts, sent


class RateLimits:
    """The two buckets of a session (rate 0: unlimited)."""

    def __init__(self, config: CoopConfig, now: float = 0.0) -> None:
        self.up = TokenBucket(config.max_up, config.max_up * config.bucket_seconds, now)
        self.down = TokenBucket(config.max_down, config.max_down * config.bucket_seconds, now)

    def received(self, link: Link, n: int, loop: asyncio.AbstractEventLoop) -> None:
        """``n`` bytes came in on ``link``: pause its reading while the download bucket is in debt."""
        if not self.down.limited:
            return
        wait = self.down.debit(n, loop.time())
        if wait > 0:
            link.pause_reading()
            loop.call_later(wait, self._resume, link, loop)

    def _resume(self, link: Link, loop: asyncio.AbstractEventLoop) -> None:
        if link.closed:
            return
        wait = self.down.delay(loop.time())
        if wait > 0:  # others drew on the bucket meanwhile: wait for our turn again
            loop.call_later(wait, self._resume, link, loop)
        else:
            link.resume_reading()

    async def sent(self, n: int) -> None:
        """``n`` bytes were written to a peer: sleep off any debt of the upload bucket."""
        if not self.up.limited:
            return
        loop = asyncio.get_running_loop()
        wait = self.up.debit(n, loop.time())
        if wait > 0:
            await asyncio.sleep(wait)
