"""BEP 55 ``ut_holepunch`` for one torrent: relay, rendezvous, connect.

Theory of operation
-------------------
Three roles, one room:

* **Relay.**  A connected peer A (that announced ``ut_holepunch``) sends
  ``rendezvous(T)``.  If T is a peer we are connected to and it announced the
  extension too, we send ``connect(T)`` to A and ``connect(A)`` to T, within two
  budgets (:class:`~p2pshare.core.wire.holepunch.RelayBudget`): per initiating
  peer and per torrent, per minute.  Otherwise A gets the BEP's error: NoSuchPeer
  (not a usable endpoint, or A itself), NoSelf (T is us), NotConnected, NoSupport.
  We never relay to a peer we are not connected to: T is looked up among our
  live peers only.
* **Initiator.**  When direct dials to an address failed (every transport, as
  often as ``holepunch_after_failures``: :meth:`HolepunchRoom.dial_failed`), or
  the torrent calls :meth:`HolepunchRoom.want` for a peer PEX says is not
  reachable, we send ``rendezvous`` to the peer that told
  us about the address (:meth:`learned_from`, fed by PEX) or else to up to
  ``rendezvous_fanout`` connected peers that speak the extension; an error moves
  on to the next relay, NoSupport and NoSelf end the attempt.
* **Target** (and initiator again).  ``connect(E)`` makes us send uTP SYNs to E at
  once (the torrent's ``dial_utp``), unless we are already connected to E; the
  relay cannot make us dial more than ``connects_per_minute`` times.

Messages from a peer that did not announce the extension are ignored silently
(the BEP says so); malformed ones raise :class:`~p2pshare.errors.RemoteProtocolError`
and the torrent drops the peer.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field

from p2pshare.config import TransportConfig
from p2pshare.core.types import Addr, PeerAddress
from p2pshare.core.wire import messages as wm
from p2pshare.core.wire.extension import ExtensionHandshake
from p2pshare.core.wire.holepunch import (
    UT_HOLEPUNCH,
    UT_HOLEPUNCH_ID,
    HolepunchError,
    HolepunchMessage,
    HolepunchType,
    RelayBudget,
    decode_holepunch,
    encode_holepunch,
)
from p2pshare.engine.peer import Peer
from p2pshare.io.utp_socket import UtpLink

__all__ = ["HolepunchRoom", "HolepunchStats"]

log = logging.getLogger("p2pshare.holepunch")

Endpoint = Addr
WINDOW = 60.0  #: the budgets are per minute


@dataclass(slots=True)
class HolepunchStats:
    """What the room did, for status and tests."""

    relayed: int = 0  #: rendezvous we relayed (a connect to each side)
    rate_limited: int = 0  #: rendezvous or connects dropped by a budget
    ignored: int = 0  #: messages ignored as the BEP says (no extension, already connected, ...)
    rendezvous_sent: int = 0
    connects_received: int = 0
    dials: int = 0  #: uTP dials started by a connect
    errors_sent: Counter[HolepunchError] = field(default_factory=Counter)
    errors_received: Counter[HolepunchError] = field(default_factory=Counter)


def _usable(endpoint: Endpoint) -> bool:
    host, port = endpoint
    if not 0 < port < 65536:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not (ip.is_unspecified or ip.is_multicast or str(ip) == "255.255.255.255")


class HolepunchRoom:
    """One torrent's ut_holepunch state; the torrent feeds it peers, messages and failed dials."""

    def __init__(
        self,
        config: TransportConfig,
        peers: MutableMapping[PeerAddress, Peer],
        dial_utp: Callable[[PeerAddress], None],
        *,
        enabled: bool = True,
    ) -> None:
        self.config = config
        self.enabled = enabled
        self._peers = peers
        self._dial_utp = dial_utp
        self._ext: dict[Peer, int] = {}  #: the peer's id for ut_holepunch
        self._listen: dict[Peer, Endpoint] = {}  #: where the peer accepts connections
        self._per_peer: dict[Peer, RelayBudget] = {}
        self._relay_budget = RelayBudget(config.relay_per_minute, WINDOW)
        self._ask_budget = RelayBudget(config.rendezvous_per_minute, WINDOW)
        self._connect_budget = RelayBudget(config.connects_per_minute, WINDOW)
        #: target -> relays still to ask (the first one was asked), bounded
        self._pending: OrderedDict[Endpoint, list[Peer]] = OrderedDict()
        self._asked_at: OrderedDict[Endpoint, float] = OrderedDict()
        self._sources: OrderedDict[Endpoint, Endpoint] = OrderedDict()
        self._no_support: OrderedDict[Endpoint, None] = OrderedDict()
        self._failures: OrderedDict[Endpoint, int] = OrderedDict()  #: failed direct dials
        self.our_hosts: set[str] = set()
        self.our_port = 0
        self.stats = HolepunchStats()

    # -- what the torrent tells us --------------------------------------------------------

    def offer(self) -> dict[str, int]:
        """Our entry in the BEP 10 ``m`` dict (empty when hole punching is off)."""
        return {UT_HOLEPUNCH: UT_HOLEPUNCH_ID} if self.enabled else {}

    def peer_ready(self, peer: Peer, hs: ExtensionHandshake) -> None:
        """The peer's extension handshake: its id for ut_holepunch, its listen port, our address."""
        ext = hs.ext_id(UT_HOLEPUNCH)
        if ext:
            self._ext[peer] = ext
        else:
            self._ext.pop(peer, None)
        # Where others can reach it: the address we dialled, or, for an incoming uTP link,
        # the address its datagrams come from (behind a NAT: the mapping a punch must hit);
        # an incoming TCP link comes from an ephemeral port, so its announced port instead.
        incoming_tcp = not peer.outgoing and not isinstance(peer.link, UtpLink)
        port = hs.p if (incoming_tcp and hs.p) else peer.address[1]
        self._listen[peer] = (peer.address[0], port)
        if hs.yourip is not None and len(self.our_hosts) < 16:
            self.our_hosts.add(str(ipaddress.ip_address(hs.yourip)))

    def forget(self, peer: Peer) -> None:
        self._ext.pop(peer, None)
        self._listen.pop(peer, None)
        self._per_peer.pop(peer, None)
        for relays in self._pending.values():
            if peer in relays:
                relays.remove(peer)

    def learned_from(self, target: Endpoint, relay: Endpoint) -> None:
        """``relay`` told us about ``target`` (PEX): it is the first relay to ask for it."""
        self._sources[target] = relay
        self._sources.move_to_end(target)
        if len(self._sources) > self.config.max_pending_rendezvous:
            self._sources.popitem(last=False)

    # -- lookups --------------------------------------------------------------------------

    def _endpoint_of(self, peer: Peer) -> Endpoint:
        return self._listen.get(peer, (peer.address[0], peer.address[1]))

    def _find(self, endpoint: Endpoint) -> Peer | None:
        """The live peer at ``endpoint`` (its address, or where it listens)."""
        peer = self._peers.get(PeerAddress.unchecked(*endpoint))
        if peer is not None and not peer.closed:
            return peer
        for p in self._peers.values():
            if not p.closed and self._listen.get(p) == endpoint:
                return p
        return None

    def _is_us(self, endpoint: Endpoint) -> bool:
        return endpoint[1] == self.our_port and endpoint[0] in self.our_hosts

    # -- sending --------------------------------------------------------------------------

    def _send(self, peer: Peer, msg: HolepunchMessage) -> None:
        ext = self._ext.get(peer)
        if ext is None or peer.closed:
            return
        peer.write(peer.conn.send(wm.Extended(ext, encode_holepunch(msg))))

    def _error(self, peer: Peer, target: Endpoint, code: HolepunchError) -> None:
        self.stats.errors_sent[code] += 1
        self._send(peer, HolepunchMessage(HolepunchType.ERROR, target[0], target[1], code))

    # -- receiving ------------------------------------------------------------------------

    def receive(self, peer: Peer, payload: bytes, now: float) -> None:
        """One ut_holepunch message from ``peer``; RemoteProtocolError when malformed."""
        if not self.enabled or peer not in self._ext:
            self.stats.ignored += 1  # BEP 55: ignore it silently
            return
        msg = decode_holepunch(payload)
        if msg.msg_type is HolepunchType.RENDEZVOUS:
            self._on_rendezvous(peer, msg.endpoint, now)
        elif msg.msg_type is HolepunchType.CONNECT:
            self._on_connect(msg.endpoint, now)
        else:
            self._on_error(peer, msg.endpoint, msg.error, now)

    def _on_rendezvous(self, initiator: Peer, target: Endpoint, now: float) -> None:
        if not _usable(target) or target == self._endpoint_of(initiator):
            self._error(initiator, target, HolepunchError.NO_SUCH_PEER)
            return
        if self._is_us(target):
            self._error(initiator, target, HolepunchError.NO_SELF)
            return
        other = self._find(target)
        if other is None or other is initiator:
            self._error(initiator, target, HolepunchError.NOT_CONNECTED)
            return
        if other not in self._ext:
            self._error(initiator, target, HolepunchError.NO_SUPPORT)
            return
        budget = self._per_peer.get(initiator)
        if budget is None:
            budget = self._per_peer[initiator] = RelayBudget(self.config.relay_per_peer_per_minute, WINDOW)
        if not budget.take(now) or not self._relay_budget.take(now):
            self.stats.rate_limited += 1
            log.info("not relaying a rendezvous from %s: over the per-minute budget", initiator.label)
            return
        self.stats.relayed += 1
        a = self._endpoint_of(initiator)
        t = self._endpoint_of(other)
        self._send(initiator, HolepunchMessage(HolepunchType.CONNECT, t[0], t[1]))
        self._send(other, HolepunchMessage(HolepunchType.CONNECT, a[0], a[1]))

    def _on_connect(self, endpoint: Endpoint, now: float) -> None:
        self.stats.connects_received += 1
        self._pending.pop(endpoint, None)
        if not _usable(endpoint) or self._is_us(endpoint) or self._find(endpoint) is not None:
            self.stats.ignored += 1  # already connected (or nonsense): ignore silently
            return
        if not self._connect_budget.take(now):
            self.stats.rate_limited += 1
            return
        self.stats.dials += 1
        self._dial_utp(PeerAddress.unchecked(*endpoint))

    def _on_error(self, relay: Peer, target: Endpoint, code: HolepunchError, now: float) -> None:
        self.stats.errors_received[code] += 1
        relays = self._pending.get(target)
        if relays is None:
            self.stats.ignored += 1  # an error for nothing we asked: ignore
            return
        log.info("rendezvous with %s via %s failed: %s", target, relay.label, code.name)
        if code in (HolepunchError.NO_SUPPORT, HolepunchError.NO_SELF):
            # NoSupport: no relay can help; NoSelf: the target is the relay, and we are connected
            del self._pending[target]
            if code is HolepunchError.NO_SUPPORT:
                self._no_support[target] = None
                if len(self._no_support) > self.config.max_pending_rendezvous:
                    self._no_support.popitem(last=False)
            return
        while relays:  # NoSuchPeer / NotConnected: the next relay, if any
            nxt = relays.pop(0)
            if not nxt.closed and nxt in self._ext:
                self._ask(nxt, target)
                return
        del self._pending[target]

    # -- asking ---------------------------------------------------------------------------

    def dial_failed(self, target: Endpoint, now: float) -> bool:
        """A direct dial to ``target`` failed; after ``holepunch_after_failures`` ask for a rendezvous."""
        if not self.enabled:
            return False
        count = self._failures.get(target, 0) + 1
        self._failures[target] = count
        self._failures.move_to_end(target)
        if len(self._failures) > self.config.max_pending_rendezvous:
            self._failures.popitem(last=False)
        return count >= self.config.holepunch_after_failures and self.want(target, now)

    def _ask(self, relay: Peer, target: Endpoint) -> None:
        self.stats.rendezvous_sent += 1
        self._send(relay, HolepunchMessage(HolepunchType.RENDEZVOUS, target[0], target[1]))

    def relays_for(self, target: Endpoint) -> list[Peer]:
        """Peers to ask, best first: the one that told us about ``target``, then the others."""
        source = self._sources.get(target)
        out: list[Peer] = []
        if source is not None and (p := self._find(source)) is not None and p in self._ext:
            out.append(p)
        for p in self._ext:
            if p not in out and not p.closed and self._endpoint_of(p) != target:
                out.append(p)
        return out[: self.config.rendezvous_fanout]

    def want(self, target: Endpoint, now: float) -> bool:
        """Ask a relay to introduce us to ``target`` (direct dials failed); True when one was asked."""
        if not self.enabled or not _usable(target) or target in self._no_support or target in self._pending:
            return False
        last = self._asked_at.get(target)
        if last is not None and now - last < self.config.rendezvous_retry:
            return False
        if self._find(target) is not None:
            return False
        relays = self.relays_for(target)
        if not relays:
            return False
        if not self._ask_budget.take(now):
            self.stats.rate_limited += 1
            return False
        self._asked_at[target] = now
        self._asked_at.move_to_end(target)
        if len(self._asked_at) > self.config.max_pending_rendezvous:
            self._asked_at.popitem(last=False)
        self._pending[target] = relays[1:]
        if len(self._pending) > self.config.max_pending_rendezvous:
            self._pending.popitem(last=False)
        self._ask(relays[0], target)
        return True

    def supporting(self) -> Iterable[Peer]:
        """Connected peers that announced ut_holepunch."""
        return list(self._ext)
