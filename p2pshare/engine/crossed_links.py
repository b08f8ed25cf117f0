"""Two peers that dial each other at once (BEP 55 makes both sides dial): keep one link.

Both sides of a hole punch send uTP SYNs, and both connections may succeed.  Each
side then holds an outgoing link and receives an incoming one from the same
address.  Closing the newcomer on both sides would kill both links, so the rule
must pick the *same* connection on both sides: the one opened by the lower peer
id (the rule the handshake handler applies to duplicates, here applied before the
torrent takes the link).  The incoming link's first 68 bytes (the handshake up to
the peer id) are read, the decision made, and the bytes put back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from p2pshare.io.link import Buffer, Link

__all__ = ["Detachable", "settle_crossed"]

_PEER_ID_END = 68  #: pstrlen + pstr + reserved + info hash + peer id


class Detachable(Link, Protocol):
    def detach(self, unread: Buffer = b"") -> None: ...


def settle_crossed(
    link: Detachable,
    our_peer_id: bytes,
    keep: Callable[[Detachable], None],
    *,
    timeout: float,
) -> None:
    """Read the peer id on ``link`` (incoming); ``keep(link)`` when it is below ours, else close it."""
    buffer = bytearray()
    done = [False]
    timer = asyncio.get_running_loop().call_later(timeout, link.abort)

    def on_data(data: memoryview) -> None:
        if done[0]:
            return
        buffer.extend(data)
        if len(buffer) < _PEER_ID_END:
            return
        done[0] = True
        timer.cancel()
        if bytes(buffer[48:_PEER_ID_END]) < our_peer_id:
            link.detach(unread=buffer)
            keep(link)  # its opener has the lower id: this is the link both sides keep
        else:
            link.close()  # our own dial is the one both sides keep

    def on_close(exc: Exception | None) -> None:
        done[0] = True
        timer.cancel()

    link.set_handlers(on_data, on_close)
