"""The PEX room: BEP 11 ``ut_pex`` with each peer that offers it.

Sending: every tick, each peer whose handshake named ``ut_pex`` gets (at most once a
:attr:`~p2pshare.config.CoopConfig.pex_interval`) the peers we are connected to now
that it was not told about, and those that left, through a sans-I/O
:class:`~p2pshare.core.wire.pex.PexDiff`.  Only addresses that accept connections
are shared: the address we dialled, or the host of an incoming peer with the listen
port from its extension handshake.  Flags say seed (it has every piece), reachable
(we dialled it), and uTP / prefers-encryption as PEX told us of that address (a
bounded memory).

Receiving: a message is decoded and validated (:func:`~p2pshare.core.wire.pex.decode_pex`);
messages closer together than ``pex_min_gap`` are ignored; the added addresses go to
the peer book as source ``pex``, which dials only within the connection limits.
Private torrents (BEP 27) neither send nor accept PEX.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from p2pshare.config import CoopConfig
from p2pshare.core.types import Addr, PeerAddress
from p2pshare.core.wire.extension import ExtensionHandshake
from p2pshare.core.wire.messages import Extended
from p2pshare.core.wire.pex import UT_PEX, PexDiff, PexFlags, decode_pex, encode_pex, valid_peer_address
from p2pshare.engine.peer import Peer

__all__ = ["PexRoom"]

log = logging.getLogger("p2pshare.pex")

AddPeers = Callable[[Iterable[Addr], str], int]
NoteFlags = Callable[[PeerAddress, PeerAddress, int], None]  #: address, via (who told us), BEP 11 flags


class PexRoom:
    """Peer exchange for one torrent."""

    def __init__(
        self,
        config: CoopConfig,
        add_peers: AddPeers,
        *,
        enabled: bool = True,
        on_flags: NoteFlags | None = None,
    ) -> None:
        self.config = config
        self.enabled = enabled
        self._add_peers = add_peers
        #: told (address, via, flags) for every added peer: uTP-first dials, BEP 55 relays, MSE
        self._on_flags = on_flags
        self._diffs: dict[Peer, PexDiff] = {}
        self._listen: dict[Peer, PeerAddress] = {}  #: where each peer accepts connections
        self._last_in: dict[Peer, float] = {}
        #: what PEX told us of an address that we cannot see ourselves (uTP, prefers encryption)
        self._learned: dict[PeerAddress, PexFlags] = {}
        self.received = 0  #: addresses learned through PEX
        self.sent = 0  #: messages sent

    def peer_ready(self, peer: Peer, hs: ExtensionHandshake, now: float) -> None:
        """The peer's extension handshake arrived: learn its listen port, start PEX if it offers it."""
        if peer.outgoing:
            self._listen[peer] = peer.address
        elif hs.p is not None and valid_peer_address(peer.address[0], hs.p):
            self._listen[peer] = PeerAddress(peer.address[0], hs.p)
        if self.enabled and hs.ext_id(UT_PEX) and peer not in self._diffs:
            c = self.config
            self._diffs[peer] = PexDiff(
                now,
                interval=c.pex_interval,
                first_delay=c.pex_first_delay,
                max_added=c.pex_max_added,
                max_dropped=c.pex_max_dropped,
            )

    def forget(self, peer: Peer) -> None:
        self._diffs.pop(peer, None)
        self._listen.pop(peer, None)
        self._last_in.pop(peer, None)

    def _flags(self, peer: Peer) -> PexFlags:
        flags = PexFlags.NONE
        has = peer.conn.peer_has
        if has is not None and has.length and has.complete:
            flags |= PexFlags.SEED
        if peer.outgoing:
            flags |= PexFlags.REACHABLE
        return flags | self._learned.get(self._listen[peer], PexFlags.NONE)

    def tick(self, now: float, peers: Iterable[Peer]) -> None:
        """Send each PEX peer its due message (at most one per interval)."""
        if not self._diffs:
            return
        live = [p for p in peers if p.handshake_done and not p.closed and p in self._listen]
        for peer, diff in list(self._diffs.items()):
            if now < diff.get_timer() or peer.closed:
                continue
            ext_id = peer.conn.peer_ext_id(UT_PEX)
            if not ext_id:
                continue
            current = {self._listen[p]: self._flags(p) for p in live if p is not peer}
            msg = diff.next_message(now, current)
            if msg is not None:
                peer.send(Extended(ext_id, encode_pex(msg)), now)
                self.sent += 1

    def receive(self, peer: Peer, payload: bytes, now: float) -> None:
        """A ``ut_pex`` message from ``peer``: validate it, learn the added peers."""
        if not self.enabled:
            return
        last = self._last_in.get(peer)
        if last is not None and now - last < self.config.pex_min_gap:
            log.debug("%s: ut_pex again after %.1fs; ignored", peer.label, now - last)
            return
        self._last_in[peer] = now
        msg = decode_pex(payload, self.config)  # RemoteProtocolError drops the peer
        mine = set(self._listen.values())
        passed_on = PexFlags.UTP | PexFlags.PREFERS_ENCRYPTION
        for p in msg.added:
            if p.flags & passed_on:
                self._learned.pop(p.address, None)
                self._learned[p.address] = p.flags & passed_on
                if len(self._learned) > self.config.pex_flags_remembered:
                    del self._learned[next(iter(self._learned))]  # the oldest
        fresh = [p.address for p in msg.added if p.address not in mine]
        if fresh:
            self.received += self._add_peers(fresh, "pex")
        if self._on_flags is not None:
            for p in msg.added:
                if p.address not in mine:
                    self._on_flags(p.address, self._listen.get(peer, peer.address), int(p.flags))
