"""How a DHT node answers queries (BEP 5, 42, 43, 44), within each sender's reply budget.

Theory of operation
-------------------
:class:`QueryAnswers` is the answering half of
:class:`~p2pshare.core.dht.node.DhtNode` (a mixin: the node owns the state).  Every
query is answered at once, or not at all:

* ping, find_node, get_peers and announce_peer as BEP 5; BEP 44 ``get`` and ``put``
  against the node's :class:`~p2pshare.core.dht.items.ItemStore`, with the same
  write tokens as announce_peer;
* an unknown method gets error 204, malformed arguments 203, a bad token 203, a
  refused put the BEP 44 code (205, 206, 207, 301, 302; 202 when the store is full);
* every response carries the requester's address (BEP 42 ``ip``) and our ``v``;
  a read-only node (BEP 43) answers nothing.

Reflection (issue 12): a DHT node must not be a tool to flood someone else with
spoofed queries.  So every datagram we send because of a query (the reply, an
error, the ping that verifies a newcomer) takes one token of the sender's budget
(``admit_query``, a per-IP token bucket in the I/O layer); a datagram that is not
a sound query envelope (method, argument dictionary, 20-byte sender id) gets no
answer at all; and an error reply larger than the datagram that provoked it is
not sent.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from p2pshare.config import DhtConfig
from p2pshare.core.dht import krpc
from p2pshare.core.dht.item_lookup import response_fields
from p2pshare.core.dht.items import ItemStore
from p2pshare.core.dht.krpc import (
    Addr,
    AnnouncePeerArgs,
    FindNodeArgs,
    GetArgs,
    GetPeersArgs,
    KrpcError,
    PingArgs,
    PutArgs,
    Query,
)
from p2pshare.core.dht.peer_store import PeerStore
from p2pshare.core.dht.routing import RoutingTable
from p2pshare.core.dht.tokens import TokenManager

__all__ = ["QueryAnswers"]

_ITEM_ERRORS = {
    krpc.ERROR_VALUE_TOO_BIG: "Message Too Big",
    krpc.ERROR_INVALID_SIGNATURE: "Invalid Signature",
    krpc.ERROR_SALT_TOO_BIG: "Salt Too Big",
    krpc.ERROR_CAS_MISMATCH: "CAS Mismatch",
    krpc.ERROR_SEQ_TOO_LOW: "Sequence Number Less Than Current",
    krpc.ERROR_SERVER: "Storage Full",
}


class QueryAnswers:
    """Answering queries; mixed into :class:`~p2pshare.core.dht.node.DhtNode`, which owns the state."""

    config: DhtConfig
    node_id: bytes
    ipv6: bool
    version: bytes | None
    read_only: bool
    rng: random.Random
    table: RoutingTable
    tokens: TokenManager
    peers: PeerStore
    items: ItemStore
    stats: dict[str, int]
    admit_query: Callable[[str, float], bool] | None
    _pending_by_addr: dict[Addr, int]
    _pings_in_flight: int
    _in_size: int  #: size of the datagram being handled (error replies must not exceed it)

    def _send(self, data: bytes, addr: Addr) -> None:
        raise NotImplementedError

    def _ping(self, addr: Addr, now: float) -> None:
        raise NotImplementedError

    def _id_allowed(self, node_id: bytes, ip: str) -> bool:
        raise NotImplementedError

    def _on_malformed(self, exc: KrpcError, addr: Addr, now: float) -> None:
        if exc.query and exc.tid is not None and not self.read_only and self._admit(addr, now):
            self._reply_error(exc.tid, exc.code, "Protocol Error", addr)

    def _on_query(self, q: Query, addr: Addr, now: float) -> None:
        if self.read_only:
            return  # BEP 43: a read-only node answers nothing
        if not self._admit(addr, now):
            return
        if not q.read_only and q.sender_id != self.node_id:
            self.table.heard_from(q.sender_id, addr, now, responded=False)
            if (
                self.table.get(q.sender_id) is None
                and addr not in self._pending_by_addr
                and self._pings_in_flight < self.config.max_pending_pings
                and self._id_allowed(q.sender_id, addr[0])
                and self.table.would_accept(q.sender_id, now)
                and self._admit(addr, now)  # the ping goes to the sender too: it takes a token
            ):
                self._ping(addr, now)  # verify before it may enter the table
        args = q.args
        body: dict[bytes, Any] = {b"id": self.node_id}
        if args is None:
            self._reply_error(q.tid, krpc.ERROR_METHOD_UNKNOWN, "Method Unknown", addr)
            return
        if isinstance(args, PingArgs):
            pass
        elif isinstance(args, FindNodeArgs):
            self._add_nodes(body, args.target, args.want, now)
        elif isinstance(args, GetPeersArgs):
            body[b"token"] = self.tokens.token_for(addr[0], now)
            values = self.peers.get(args.info_hash, now, self.config.max_values_returned, self.rng)
            if values:
                body[b"values"] = [krpc.pack_addr(p) for p in values]
            self._add_nodes(body, args.info_hash, args.want, now)
        elif isinstance(args, GetArgs):
            body[b"token"] = self.tokens.token_for(addr[0], now)
            item = self.items.get(args.target, now)
            if item is not None:
                body.update(response_fields(item, args.seq))
            self._add_nodes(body, args.target, args.want, now)
        elif not self.tokens.is_valid(args.token, addr[0], now):  # announce_peer or put
            self._reply_error(q.tid, krpc.ERROR_PROTOCOL, "Bad Token", addr)
            return
        elif isinstance(args, AnnouncePeerArgs):
            port = addr[1] if args.implied_port else args.port
            if self.peers.add(args.info_hash, (addr[0], port), now):
                self.stats["announces_stored"] += 1
        elif isinstance(args, PutArgs):
            code = self.items.put(args, addr[0], now)
            if code is not None:
                self._reply_error(q.tid, code, _ITEM_ERRORS.get(code, "Store Failed"), addr)
                return
            self.stats["items_stored"] += 1
        self.stats["queries_answered"] += 1
        self._send(krpc.encode_response(q.tid, body, ip=addr, version=self.version), addr)

    def _add_nodes(self, body: dict[bytes, Any], target: bytes, want: frozenset[bytes], now: float) -> None:
        mine = b"n6" if self.ipv6 else b"n4"
        if want and mine not in want:
            return
        nodes = [(e.node_id, e.addr) for e in self.table.closest(target, self.config.k, now)]
        body[b"nodes6" if self.ipv6 else b"nodes"] = krpc.pack_nodes(nodes)

    def _admit(self, addr: Addr, now: float) -> bool:
        """Take one token of ``addr``'s reply budget; False (counted) when it has none left."""
        if self.admit_query is None or self.admit_query(addr[0], now):
            return True
        self.stats["queries_refused"] += 1
        return False

    def _reply_error(self, tid: bytes, code: int, text: str, addr: Addr) -> None:
        data = krpc.encode_error(tid, code, text, version=self.version)
        if len(data) > self._in_size:
            self.stats["errors_suppressed"] += 1  # never answer a datagram with a bigger one
            return
        self._send(data, addr)
