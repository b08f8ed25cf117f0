"""Crossed dials (both sides of a hole punch dial): both sides keep the link opened by the lower peer id."""

from __future__ import annotations

import asyncio

from p2pshare.core.wire.messages import make_peer_id
from p2pshare.engine.crossed_links import settle_crossed
from p2pshare.io.link import Buffer
from p2pshare.io.memory_link import MemoryLink, memory_link_pair

HEAD = b"\x13BitTorrent protocol" + bytes(8) + bytes(range(20))


class Detaching:
    """A memory link with ``detach``: re-delivers put-back bytes to the next handlers."""

    def __init__(self, link: MemoryLink) -> None:
        self.link = link
        self.unread = b""
        self.closed_by_us = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.link, name)

    def detach(self, unread: Buffer = b"") -> None:
        self.unread = bytes(unread)

    def close(self) -> None:
        self.closed_by_us = True
        self.link.close()


async def _settle(remote_id: bytes, our_id: bytes, chunks: list[bytes]) -> tuple[list[bytes], Detaching]:
    mine, theirs = memory_link_pair()
    link = Detaching(mine)
    got: list[bytes] = []

    def keep(won: Detaching) -> None:  # what the torrent does: new handlers, put-back bytes first
        got.append(won.unread)
        won.link.set_handlers(lambda data: got.append(bytes(data)), lambda exc: None)

    settle_crossed(link, our_id, keep, timeout=5)  # type: ignore[arg-type]
    for chunk in chunks:
        theirs.write(chunk)
        await asyncio.sleep(0)
    for _ in range(20):
        await asyncio.sleep(0)
    return ([b"".join(got)] if got else []), link


async def test_the_lower_peer_id_wins_on_both_sides() -> None:
    """Side A keeps B's link when B's id is lower; side B, seeing A's higher id, closes A's link."""
    low, high = b"-PS0001-" + b"a" * 12, b"-PS0001-" + b"b" * 12
    kept, link = await _settle(low, high, [HEAD + low + b"rest"])
    assert kept == [HEAD + low + b"rest"] and not link.closed_by_us
    kept, link = await _settle(high, low, [HEAD + high])
    assert kept == [] and link.closed_by_us


async def test_the_decision_waits_for_the_peer_id_at_any_split() -> None:
    """The handshake split at every byte still yields one decision with every byte put back."""
    other, ours = b"-PS0001-" + b"0" * 12, make_peer_id()
    whole = HEAD + other + b"xyz"
    for cut in range(1, len(whole)):
        kept, _ = await _settle(other, ours, [whole[:cut], whole[cut:]])
        assert kept == [whole], cut
