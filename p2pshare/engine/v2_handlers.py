"""What the BEP 52 hash messages of a peer mean to a torrent (see :mod:`.hash_exchange`).

Registered in the torrent's handler table next to the BEP 3 handlers; kept apart so
the transfer room does not grow a v2 branch in every handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from p2pshare.core.geometry import BlockRef
from p2pshare.core.wire.events import HandshakeReceived
from p2pshare.core.wire.hashes import Hashes, HashReject, HashRequest
from p2pshare.engine.hash_exchange import swarm_hashes
from p2pshare.engine.peer import Peer
from p2pshare.engine.transfer import Transfer
from p2pshare.errors import Violation

if TYPE_CHECKING:
    from p2pshare.engine.torrent import Torrent

__all__ = ["V2_HANDLERS", "fill_pad_blocks"]


def _on_handshake(torrent: Torrent, peer: Peer, event: HandshakeReceived, now: float) -> None:
    """An incoming peer may name a hybrid by either hash: accept any of the swarm's, refuse others."""
    if all(event.info_hash != h.value for h in swarm_hashes(torrent.params, torrent.info)):
        reason = f"handshake for {event.info_hash.hex()}, not this torrent"
        torrent._drop(peer, reason, kind=Violation.WRONG_TORRENT)
        return
    Transfer._on_handshake(torrent, peer, event, now)


def _on_hash_request(torrent: Torrent, peer: Peer, event: HashRequest, now: float) -> None:
    peer.send(torrent.hashes.answer(peer, event), now)


def _on_hashes(torrent: Torrent, peer: Peer, event: Hashes, now: float) -> None:
    culprits = torrent.hashes.on_leaf_hashes(peer, event)
    if culprits is not None:  # the leaf hashes of a failed piece: ban whoever sent a bad block
        for bad in culprits:
            reason = "sent a block that does not match its merkle leaf hash"
            torrent.book.ban(bad.address[0])
            torrent._drop(bad, reason, kind=Violation.BAD_PIECE, ban=True)
        return
    if torrent.hashes.on_hashes(peer, event) and torrent.info is not None:
        torrent._spawn(torrent._prepare(torrent.info), "v2-layers-complete")
    else:
        torrent.hashes.request(torrent.peers.values(), now)


def _on_hash_reject(torrent: Torrent, peer: Peer, event: HashReject, now: float) -> None:
    torrent.hashes.on_reject(peer, event)
    torrent.hashes.request(torrent.peers.values(), now)


def fill_pad_blocks(torrent: Torrent, peer: Peer, blocks: list[BlockRef], now: float) -> list[BlockRef]:
    """Blocks that lie wholly in BEP 47 pad files hold zeros: fill them here instead of asking
    ``peer`` (they still count as its, and the piece is checked whole as ever); return the rest."""
    pads = torrent.hashes.pad_blocks
    picker, pio = torrent.picker, torrent.pieces
    if picker is None or pio is None:
        return blocks
    real = []
    for block in blocks:
        if (block.piece, block.begin) not in pads:
            real.append(block)
            continue
        result = picker.block_received(peer, block)
        if result.duplicate:
            continue
        buf = pio.buffers.get(block.piece)
        if buf is None:
            buf = pio.new_buffer(block.piece)
        buf[block.begin : block.begin + block.length] = bytes(block.length)  # spare buffers hold old bytes
        if result.piece_complete:
            pio.verifying.add(block.piece)
            torrent._spawn(torrent._verify(block.piece), f"verify-{block.piece}")
    return real


V2_HANDLERS: dict[type, Callable[..., None]] = {
    HandshakeReceived: _on_handshake,
    HashRequest: _on_hash_request,
    Hashes: _on_hashes,
    HashReject: _on_hash_reject,
}
