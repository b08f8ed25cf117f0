"""BEP 44 get/put traversals: what a lookup for an item keeps, and the item fields of messages.

Theory of operation
-------------------
An item lookup is an ordinary iterative lookup (:class:`~p2pshare.core.dht.lookup.Lookup`)
that sends ``get`` instead of ``get_peers``.  Its :class:`ItemSearch` sees every
answer:

* :meth:`ItemSearch.offer` reads the item an answer carries (if any), drops it
  unless it hashes to the target and its signature verifies (BEP 44: "the response
  SHOULD be considered invalid"), and keeps the one with the highest ``seq``;
  it returns the item when it is a new best, so the node can report it;
* for a *put*, the node then sends ``put`` to the ``k`` closest nodes that gave a
  token (:meth:`ItemSearch.put_args`); ``cas`` goes only to nodes that said they
  hold the item, as BEP 44 asks.

:func:`response_fields` is the other side: the item part of our answer to ``get``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from p2pshare.core import bencode
from p2pshare.core.dht import krpc
from p2pshare.core.dht.items import Item, verify_item
from p2pshare.errors import BencodeError

__all__ = ["ItemSearch", "item_from_response", "response_fields"]


def response_fields(item: Item, seq: int | None) -> dict[bytes, Any]:
    """The item part of a ``get`` answer; only ``seq`` if the asker already has that or newer."""
    if item.key is None:
        return {b"v": bencode.decode(item.value)}
    if seq is not None and item.seq <= seq:
        return {b"seq": item.seq}
    return {b"k": item.key, b"seq": item.seq, b"sig": item.sig, b"v": bencode.decode(item.value)}


def item_from_response(body: dict[bytes, Any], salt: bytes) -> Item | None:
    """The item a ``get`` answer carries, unverified; None if it carries none or a malformed one."""
    if b"v" not in body:
        return None
    v = body[b"v"]
    if not krpc.is_canonical(v):
        return None
    try:
        value = bytes(bencode.encode(v))
    except BencodeError:
        return None
    key = body.get(b"k")
    if key is None:
        return Item(value)
    seq = body.get(b"seq")
    sig = body.get(b"sig")
    if (
        not isinstance(key, bytes)
        or not isinstance(sig, bytes)
        or not isinstance(seq, int)
        or isinstance(seq, bool)
        or seq < 0
    ):
        return None
    return Item(value, key, salt, seq, sig)


@dataclass(slots=True)
class ItemSearch:
    """What a get or put lookup for one item has learned so far."""

    target: bytes
    salt: bytes
    max_value: int
    to_put: Item | None = None  #: the item to store, for a put
    cas: int | None = None
    best: Item | None = None
    invalid: int = 0  #: answers whose item failed verification
    holders: dict[krpc.Addr, int] = field(default_factory=dict)  #: node -> seq it said it holds
    store_errors: dict[int, int] = field(default_factory=dict)  #: KRPC error code -> count, for puts

    def offer(self, addr: krpc.Addr, body: dict[bytes, Any]) -> Item | None:
        """Take one ``get`` answer; returns its item if it is valid and better than the best so far."""
        seq = body.get(b"seq")
        if isinstance(seq, int) and not isinstance(seq, bool) and len(self.holders) < 256:
            self.holders[addr] = seq
        item = item_from_response(body, self.salt)
        if item is None:
            return None
        if not verify_item(item, self.target, max_value=self.max_value):
            self.invalid += 1
            self.holders.pop(addr, None)
            return None
        if self.best is not None and item.seq <= self.best.seq:
            return None
        self.best = item
        return item

    def put_args(self, addr: krpc.Addr) -> dict[bytes, Any]:
        """The item part of the ``put`` to ``addr`` (add id and token)."""
        assert self.to_put is not None
        args: dict[bytes, Any] = self.to_put.put_args()
        if self.cas is not None and addr in self.holders:
            args[b"cas"] = self.cas
        return args
