"""A Mainline DHT node (BEP 5, with BEP 32 compact IPv6, BEP 42 and BEP 43), sans-I/O.

Theory of operation
-------------------
:class:`DhtNode` owns a routing table, a token manager, a peer store, the
transactions it has in flight and the lookups it runs.  It never touches a socket
or a clock: the adapter calls

* ``receive_datagram(data, addr, now)`` for each UDP datagram that arrives;
* ``handle_timer(now)`` once ``now >= get_timer()``;
* ``start_get_peers`` / ``start_announce`` / ``start_find_node`` / ``bootstrap`` /
  ``add_node`` for what the user wants;

and after each call drains ``datagrams_to_send()`` (to the socket) and
``next_event()`` (to whoever waits on lookups).

Incoming queries (ping, find_node, get_peers, announce_peer, BEP 44 get/put) are
answered at once, each within the sender's reply budget, by the
:class:`~p2pshare.core.dht.answers.QueryAnswers` half of the node (see there, and
for why garbage gets no answer).  A read-only node (BEP 43) marks its queries
``ro=1`` and answers nothing; queries marked ``ro`` never put their sender in our table.

Each outgoing query is a transaction with a 2-byte id, a *short* deadline (after
which a lookup treats the query as slow and asks someone else) and a full deadline
``query_timeout`` (after which the node is counted as failed).  The short deadline
adapts to measured round-trip times.  All deadlines sit in one heap; stale heap
entries are skipped lazily.

Newcomers enter the routing table only after answering a query: a node that
queries us (without ``ro``) and would fit is pinged first.  A maintenance tick every
``maintenance_interval`` expires stored peers, pings questionable nodes, refreshes
buckets idle for ``bucket_refresh`` and re-bootstraps an empty table.

Our external IP is learned by majority vote over the ``ip`` field of responses; once
adopted, if it is not exempt (loopback/private) and our id does not match it, we
take a fresh BEP 42 id and rebuild the table around it.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from p2pshare.config import DhtConfig
from p2pshare.core.dht import krpc
from p2pshare.core.dht.answers import QueryAnswers
from p2pshare.core.dht.events import (
    DhtEvent,
    ExternalAddressChanged,
    ItemFound,
    LookupDone,
    NodeIdChanged,
    PeersFound,
)
from p2pshare.core.dht.ids import is_bep42_exempt, is_secure_id, random_id, secure_id
from p2pshare.core.dht.item_lookup import ItemSearch
from p2pshare.core.dht.items import Item, ItemStore
from p2pshare.core.dht.krpc import (
    Addr,
    ErrorMessage,
    KrpcError,
    NodeInfo,
    Query,
    Response,
)
from p2pshare.core.dht.lookup import Lookup, LookupKind
from p2pshare.core.dht.peer_store import PeerStore
from p2pshare.core.dht.routing import RoutingTable
from p2pshare.core.dht.tokens import TokenManager
from p2pshare.core.types import PeerAddress, random_bytes
from p2pshare.errors import LocalProtocolError

__all__ = ["VERSION", "DhtNode"]

#: Our KRPC ``v``: two letters for the client, two bytes of version.
VERSION = b"PS\x00\x01"

_SHORT = 0
_FULL = 1
_MAX_VOTE_CANDIDATES = 16  #: distinct external-IP candidates tracked at once
_MAX_VOTERS = 64  #: voters remembered per candidate
_STORE_METHODS = (b"announce_peer", b"put")  #: the last step of an announce or a put lookup


@dataclass(slots=True, eq=False)
class _Pending:
    tid: bytes
    addr: Addr
    method: bytes
    sent: float
    lookup: Lookup | None
    short_fired: bool = False


@dataclass(slots=True)
class _LookupExtra:
    """Per-lookup data the pure :class:`Lookup` does not carry."""

    info_hash: bytes
    port: int = 0
    implied_port: bool = False
    announcing: bool = False
    announce_pending: int = 0
    announced_to: int = 0
    peers: set[Addr] | None = None
    item: ItemSearch | None = None


class DhtNode(QueryAnswers):
    """One DHT node: see the module docstring for how to drive it."""

    def __init__(
        self,
        config: DhtConfig,
        *,
        now: float,
        node_id: bytes | None = None,
        rng: random.Random | None = None,
        ipv6: bool = False,
        version: bytes | None = VERSION,
    ) -> None:
        self.config = config
        self.rng = rng if rng is not None else random.Random(random_bytes(16))
        if node_id is not None and len(node_id) != 20:
            raise LocalProtocolError("a node id is 20 bytes")
        self.node_id = node_id if node_id is not None else random_id(self.rng)
        self.ipv6 = ipv6
        self.version = version
        self.read_only = config.read_only
        self.table = RoutingTable(self.node_id, config, now)
        self.tokens = TokenManager(config.token_rotation, now, self._secret)
        self.peers = PeerStore(config)
        self.items = ItemStore(config)
        self.external_ip: str | None = None
        self._votes: dict[str, set[str]] = {}
        self._out: list[tuple[bytes, Addr]] = []
        self._events: deque[DhtEvent] = deque()
        self._pending: dict[bytes, _Pending] = {}
        self._pending_by_addr: dict[Addr, int] = {}
        self._pings_in_flight = 0
        self._timers: list[tuple[float, int, int, bytes]] = []
        self._timer_seq = 0
        self._next_tid = self.rng.randrange(1 << 16)
        self._lookups: dict[int, Lookup] = {}
        self._extra: dict[int, _LookupExtra] = {}
        self._next_lookup_id = 1
        self._bootstrap_addrs: list[Addr] = []
        self._last_bootstrap = float("-inf")
        self._bootstrap_lookup: int | None = None
        self._next_maintenance = now + config.maintenance_interval
        self._in_size = 0  #: size of the datagram being handled (error replies must not exceed it)
        self._srtt: float | None = None
        self._rttvar = 0.0
        #: Set by the adapter: admit_query(source_ip, now) -> False drops the query unanswered
        #: (the per-source rate limit lives in the I/O layer; it is asked only for queries).
        self.admit_query: Callable[[str, float], bool] | None = None
        self.stats: dict[str, int] = {
            "received": 0,
            "sent": 0,
            "malformed": 0,
            "queries_answered": 0,
            "unexpected_responses": 0,
            "timeouts": 0,
            "announces_stored": 0,
            "queries_refused": 0,
            "items_stored": 0,
            "errors_suppressed": 0,
        }

    def _secret(self, n: int) -> bytes:
        return self.rng.getrandbits(n * 8).to_bytes(n, "big")

    # -- the sans-I/O surface ---------------------------------------------------------

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        """Datagrams queued since the last call, in order."""
        out, self._out = self._out, []
        return out

    def next_event(self) -> DhtEvent | None:
        """The oldest event not yet taken, or None."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` next needs calling."""
        timers = self._timers
        while timers:
            when, _, kind, tid = timers[0]
            p = self._pending.get(tid)
            if p is None or (kind == _SHORT and (p.short_fired or p.lookup is None)):
                heapq.heappop(timers)
                continue
            return min(when, self._next_maintenance)
        return self._next_maintenance

    def handle_timer(self, now: float) -> None:
        """Fire every deadline that has passed."""
        timers = self._timers
        touched: dict[int, Lookup] = {}
        while timers and timers[0][0] <= now:
            _, _, kind, tid = heapq.heappop(timers)
            p = self._pending.get(tid)
            if p is None:
                continue
            if kind == _SHORT:
                if not p.short_fired and p.lookup is not None:
                    p.short_fired = True
                    p.lookup.on_slow(p.addr)
                    touched[p.lookup.lookup_id] = p.lookup
                continue
            self._drop_pending(p)
            self.stats["timeouts"] += 1
            self.table.failed(p.addr, now)
            if p.lookup is not None:
                self._query_failed(p, now)
                touched[p.lookup.lookup_id] = p.lookup
        for lk in touched.values():
            self._advance(lk, now)
        if now >= self._next_maintenance:
            self._maintenance(now)
            self._next_maintenance = now + self.config.maintenance_interval

    # -- user actions -----------------------------------------------------------------

    def bootstrap(self, addrs: Iterable[Addr], now: float) -> int:
        """Remember ``addrs`` as bootstrap nodes and look up our own id through them."""
        for addr in addrs:
            if self._family_ok(addr) and addr not in self._bootstrap_addrs:
                self._bootstrap_addrs.append(addr)
        self._last_bootstrap = now
        lookup_id = self._start(LookupKind.BOOTSTRAP, self.node_id, now, _LookupExtra(b""))
        self._bootstrap_lookup = lookup_id
        return lookup_id

    def add_node(self, addr: Addr, now: float) -> None:
        """Ping a node we heard of (BEP 3 ``port`` message, saved state); it joins the table if it answers."""
        if not self._family_ok(addr) or self.table.get_by_addr(addr) is not None:
            return
        if addr in self._pending_by_addr or self._pings_in_flight >= self.config.max_pending_pings:
            return
        self._ping(addr, now)

    def start_find_node(self, target: bytes, now: float) -> int:
        """Start a find_node lookup; returns its id (see :class:`LookupDone`)."""
        return self._start(LookupKind.FIND_NODE, target, now, _LookupExtra(b""))

    def start_get_peers(self, info_hash: bytes, now: float) -> int:
        """Start a get_peers lookup; peers arrive as :class:`PeersFound` events."""
        return self._start(LookupKind.GET_PEERS, info_hash, now, _LookupExtra(info_hash, peers=set()))

    def start_announce(self, info_hash: bytes, port: int, now: float, *, implied_port: bool = False) -> int:
        """Look up ``info_hash`` and announce ``port`` to the closest nodes that gave tokens."""
        if not 0 < port < 65536:
            raise LocalProtocolError(f"cannot announce port {port}")
        if self.read_only:
            raise LocalProtocolError("a read-only DHT node (BEP 43) cannot announce")
        extra = _LookupExtra(info_hash, port=port, implied_port=implied_port, peers=set())
        return self._start(LookupKind.ANNOUNCE, info_hash, now, extra)

    def start_get_item(self, target: bytes, now: float, *, salt: bytes = b"") -> int:
        """Look up a BEP 44 item; each newer verified item arrives as an :class:`ItemFound` event.

        ``salt`` is the salt of a mutable item (it is part of what was signed and is
        never sent back); an immutable lookup ends at the first verified item.
        """
        search = ItemSearch(target, salt, self.config.max_item_value)
        return self._start(LookupKind.GET_ITEM, target, now, _LookupExtra(target, item=search))

    def start_put_item(self, item: Item, now: float, *, cas: int | None = None) -> int:
        """Store ``item`` on the ``k`` nodes nearest its target; ``LookupDone.announced_to`` counts them."""
        if len(item.value) > self.config.max_item_value or not item.signature_ok():
            raise LocalProtocolError("an item to put must be signed and at most max_item_value bytes")
        target = item.target
        search = ItemSearch(target, item.salt, self.config.max_item_value, to_put=item, cas=cas)
        return self._start(LookupKind.PUT_ITEM, target, now, _LookupExtra(target, item=search))

    def cancel_lookup(self, lookup_id: int) -> None:
        """Stop a lookup without an event; answers still in flight are ignored."""
        lk = self._lookups.pop(lookup_id, None)
        self._extra.pop(lookup_id, None)
        if lk is not None:
            lk.finished = True

    def good_nodes(self, now: float) -> list[NodeInfo]:
        """Good nodes of the table (to persist across restarts)."""
        return [(e.node_id, e.addr) for e in self.table.good_nodes(now)]

    def status(self, now: float) -> dict[str, Any]:
        """A snapshot of the node for status views and tests."""
        counts = self.table.count(now)
        return {
            "node_id": self.node_id.hex(),
            "nodes": len(self.table),
            "good": counts["good"],
            "questionable": counts["questionable"],
            "bad": counts["bad"],
            "buckets": len(self.table.buckets),
            "stored_peers": len(self.peers),
            "stored_items": len(self.items),
            "stored_info_hashes": self.peers.info_hash_count,
            "external_ip": self.external_ip,
            "lookups": len(self._lookups),
            "in_flight": len(self._pending),
            "read_only": self.read_only,
            **self.stats,
        }

    # -- receiving --------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Handle one datagram from ``addr``; hostile input is counted and dropped."""
        self.stats["received"] += 1
        self._in_size = len(data)
        if not (0 < addr[1] < 65536):
            self.stats["malformed"] += 1
            return
        try:
            msg = krpc.decode_message(data, max_packet=self.config.max_packet)
        except KrpcError as exc:
            self.stats["malformed"] += 1
            self._on_malformed(exc, addr, now)
            return
        if isinstance(msg, Query):
            self._on_query(msg, addr, now)
        elif isinstance(msg, Response):
            self._on_response(msg, addr, now)
        else:
            self._on_error(msg, addr, now)

    def _on_response(self, r: Response, addr: Addr, now: float) -> None:
        p = self._pending.get(r.tid)
        if p is None or p.addr != addr:
            self.stats["unexpected_responses"] += 1
            return
        self._drop_pending(p)
        self._rtt_sample(now - p.sent)
        if r.sender_id != self.node_id and self._id_allowed(r.sender_id, addr[0]):
            to_ping = self.table.heard_from(r.sender_id, addr, now, responded=True)
            if to_ping is not None and self._pings_in_flight < self.config.max_pending_pings:
                self._ping(to_ping.addr, now)
        if r.ip is not None:
            self._vote(r.ip[0], addr[0], now)
        lk = p.lookup
        if lk is None or lk.finished:
            return
        extra = self._extra[lk.lookup_id]
        if p.method in _STORE_METHODS:
            extra.announce_pending -= 1
            extra.announced_to += 1
            self._advance(lk, now)
            return
        if extra.item is not None:
            found = extra.item.offer(addr, r.body)
            if found is not None:
                self._events.append(ItemFound(lk.lookup_id, extra.info_hash, found))
                if lk.kind is LookupKind.GET_ITEM and not found.mutable:
                    self._finish(lk)  # an immutable item cannot get newer
                    return
        try:
            nodes = krpc.response_nodes(r, ipv6=self.ipv6)
            values = krpc.response_values(r) if lk.kind in (LookupKind.GET_PEERS, LookupKind.ANNOUNCE) else []
        except KrpcError:
            self.stats["malformed"] += 1
            lk.on_failure(addr)
            self._advance(lk, now)
            return
        usable = [(nid, a) for nid, a in nodes if self._usable(nid, a)]
        lk.on_response(addr, r.sender_id, usable, krpc.response_token(r))
        if values and extra.peers is not None:
            fresh = []
            for v in values:
                if v not in extra.peers and len(extra.peers) < self.config.max_peers_per_hash:
                    extra.peers.add(v)
                    fresh.append(PeerAddress(*v))
            if fresh:
                self._events.append(PeersFound(lk.lookup_id, extra.info_hash, tuple(fresh)))
        self._advance(lk, now)

    def _on_error(self, e: ErrorMessage, addr: Addr, now: float) -> None:
        p = self._pending.get(e.tid)
        if p is None or p.addr != addr:
            self.stats["unexpected_responses"] += 1
            return
        self._drop_pending(p)
        if p.lookup is not None and not p.lookup.finished:
            extra = self._extra[p.lookup.lookup_id]
            if p.method == b"put" and extra.item is not None and len(extra.item.store_errors) < 16:
                extra.item.store_errors[e.code] = extra.item.store_errors.get(e.code, 0) + 1
            self._query_failed(p, now)
            self._advance(p.lookup, now)

    def _query_failed(self, p: _Pending, now: float) -> None:
        lk = p.lookup
        if lk is None or lk.finished:
            return
        if p.method in _STORE_METHODS:
            self._extra[lk.lookup_id].announce_pending -= 1
        else:
            lk.on_failure(p.addr)

    # -- lookups ----------------------------------------------------------------------

    def _start(self, kind: LookupKind, target: bytes, now: float, extra: _LookupExtra) -> int:
        if len(target) != 20:
            raise LocalProtocolError("a lookup target is 20 bytes")
        lookup_id = self._next_lookup_id
        self._next_lookup_id += 1
        cfg = self.config
        lk = Lookup(
            lookup_id,
            kind,
            target,
            k=cfg.k,
            alpha=cfg.alpha,
            max_candidates=cfg.lookup_max_candidates,
            max_rounds=cfg.lookup_max_rounds,
        )
        seeds = self.table.closest(target, cfg.lookup_max_candidates, now)
        lk.add_candidates(((e.node_id, e.addr) for e in seeds), 0)
        if len(seeds) < cfg.k:
            lk.add_candidates(((None, a) for a in self._bootstrap_addrs), 0)
        self._lookups[lookup_id] = lk
        self._extra[lookup_id] = extra
        self._advance(lk, now)
        return lookup_id

    def _advance(self, lk: Lookup, now: float) -> None:
        if lk.finished:
            return
        extra = self._extra[lk.lookup_id]
        if not extra.announcing:
            for c in lk.next_queries():
                self._query_for_lookup(lk, c.addr, now)
            if not lk.converged:
                return
            if lk.kind in (LookupKind.ANNOUNCE, LookupKind.PUT_ITEM):
                extra.announcing = True
                for c in lk.closest_responded(self.config.k):
                    if c.token is None:
                        continue
                    if extra.item is not None:
                        args = extra.item.put_args(c.addr)
                        method = b"put"
                    else:
                        args = {b"info_hash": extra.info_hash, b"port": extra.port}
                        if extra.implied_port:
                            args[b"implied_port"] = 1
                        method = b"announce_peer"
                    args[b"id"] = self.node_id
                    args[b"token"] = c.token
                    self._query(c.addr, method, args, now, lk)
                    extra.announce_pending += 1
        if extra.announcing and extra.announce_pending > 0:
            return
        self._finish(lk)

    def _query_for_lookup(self, lk: Lookup, addr: Addr, now: float) -> None:
        if lk.kind in (LookupKind.GET_PEERS, LookupKind.ANNOUNCE):
            self._query(addr, b"get_peers", {b"id": self.node_id, b"info_hash": lk.target}, now, lk)
        elif lk.kind in (LookupKind.GET_ITEM, LookupKind.PUT_ITEM):
            self._query(addr, b"get", {b"id": self.node_id, b"target": lk.target}, now, lk)
        else:
            self._query(addr, b"find_node", {b"id": self.node_id, b"target": lk.target}, now, lk)

    def _finish(self, lk: Lookup) -> None:
        lk.finished = True
        self._lookups.pop(lk.lookup_id, None)
        extra = self._extra.pop(lk.lookup_id)
        if lk.lookup_id == self._bootstrap_lookup:
            self._bootstrap_lookup = None
        if lk.kind is LookupKind.REFRESH:
            return
        closest = tuple(
            (c.node_id, c.addr) for c in lk.closest_responded(self.config.k) if c.node_id is not None
        )
        self._events.append(
            LookupDone(
                lookup_id=lk.lookup_id,
                kind=lk.kind.value,
                target=lk.target,
                peers_found=len(extra.peers or ()),
                nodes_responded=lk.responses,
                queries_sent=lk.queries_sent,
                rounds=lk.max_depth,
                announced_to=extra.announced_to,
                closest=closest,
            )
        )

    # -- sending ----------------------------------------------------------------------

    def _send(self, data: bytes, addr: Addr) -> None:
        self.stats["sent"] += 1
        self._out.append((data, addr))

    def _ping(self, addr: Addr, now: float) -> None:
        self._pings_in_flight += 1
        self._query(addr, b"ping", {b"id": self.node_id}, now, None)

    def _new_tid(self) -> bytes:
        while True:
            self._next_tid = (self._next_tid + 1) & 0xFFFF
            tid = self._next_tid.to_bytes(2, "big")
            if tid not in self._pending:
                return tid

    def _query(
        self, addr: Addr, method: bytes, args: dict[bytes, Any], now: float, lk: Lookup | None
    ) -> None:
        tid = self._new_tid()
        data = krpc.encode_query(tid, method, args, read_only=self.read_only, version=self.version)
        p = _Pending(tid, addr, method, now, lk)
        self._pending[tid] = p
        self._pending_by_addr[addr] = self._pending_by_addr.get(addr, 0) + 1
        if lk is not None and method not in _STORE_METHODS:
            self._push_timer(now + self._short_timeout(), _SHORT, tid)
        self._push_timer(now + self.config.query_timeout, _FULL, tid)
        self._send(data, addr)

    def _push_timer(self, when: float, kind: int, tid: bytes) -> None:
        self._timer_seq += 1
        heapq.heappush(self._timers, (when, self._timer_seq, kind, tid))

    def _drop_pending(self, p: _Pending) -> None:
        del self._pending[p.tid]
        n = self._pending_by_addr[p.addr] - 1
        if n:
            self._pending_by_addr[p.addr] = n
        else:
            del self._pending_by_addr[p.addr]
        if p.method == b"ping" and p.lookup is None:
            self._pings_in_flight -= 1

    def _rtt_sample(self, rtt: float) -> None:
        if self._srtt is None:
            self._srtt = rtt
            self._rttvar = rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt

    def _short_timeout(self) -> float:
        cfg = self.config
        if not cfg.adaptive_timeout:
            return cfg.query_timeout / 2
        if self._srtt is None:
            return min(max(cfg.initial_short_timeout, cfg.min_short_timeout), cfg.query_timeout)
        return min(max(self._srtt + 2 * self._rttvar, cfg.min_short_timeout), cfg.query_timeout)

    # -- helpers ----------------------------------------------------------------------

    def _family_ok(self, addr: Addr) -> bool:
        try:
            return (ipaddress.ip_address(addr[0]).version == 6) == self.ipv6 and 0 < addr[1] < 65536
        except ValueError:
            return False

    def _id_allowed(self, node_id: bytes, ip: str) -> bool:
        return not self.config.enforce_node_id or is_secure_id(node_id, ip)

    def _usable(self, node_id: bytes, addr: Addr) -> bool:
        return addr[1] != 0 and node_id != self.node_id

    def hint_external_ip(self, ip: str, source: str, weight: int, now: float) -> None:
        """A local source (the router's port mapping) names our external IP: ``weight`` votes for it."""
        for i in range(max(0, weight)):
            self._vote(ip, f"{source}#{i}", now)

    def _vote(self, ip: str, voter: str, now: float) -> None:
        voters = self._votes.get(ip)
        if voters is None:
            if len(self._votes) >= _MAX_VOTE_CANDIDATES:
                return
            voters = self._votes[ip] = set()
        if len(voters) < _MAX_VOTERS:
            voters.add(voter)
        if ip == self.external_ip or len(voters) < self.config.external_ip_votes:
            return
        if any(len(v) >= len(voters) for other, v in self._votes.items() if other != ip):
            return
        self.external_ip = ip
        self._votes.clear()
        self._events.append(ExternalAddressChanged(ip))
        if self.config.secure_node_id and not is_bep42_exempt(ip) and not is_secure_id(self.node_id, ip):
            self._change_id(secure_id(ip, self.rng), now)

    def _change_id(self, new_id: bytes, now: float) -> None:
        old_id, old_table = self.node_id, self.table
        self.node_id = new_id
        self.table = RoutingTable(new_id, self.config, now)
        for e in old_table:
            self.table.heard_from(e.node_id, e.addr, e.last_response, responded=True)
        self._events.append(NodeIdChanged(old_id, new_id))

    # -- upkeep -----------------------------------------------------------------------

    def _maintenance(self, now: float) -> None:
        self.peers.expire(now)
        self.items.expire(now)
        if len(self.table) == 0:
            if (
                self._bootstrap_addrs
                and self._bootstrap_lookup is None
                and now - self._last_bootstrap >= self.config.bootstrap_retry
            ):
                self.bootstrap((), now)
            return
        budget = min(self.config.pings_per_tick, self.config.max_pending_pings - self._pings_in_flight)
        if budget > 0:
            for e in self.table.questionable_nodes(now, budget):
                self._ping(e.addr, now)
        for target in self.table.buckets_to_refresh(now, self.rng):
            self._start(LookupKind.REFRESH, target, now, _LookupExtra(b""))
