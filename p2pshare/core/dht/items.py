"""BEP 44 items: targets, ed25519 signatures and the bounded store of items put to us.

Theory of operation
-------------------
An *immutable* item is a bencoded value stored under the SHA-1 of its bencoding.
A *mutable* item is stored under SHA-1(public key + salt) and carries a sequence
number and an ed25519 signature over the exact buffer of BEP 44::

    4:salt<len>:<salt>3:seqi<seq>e1:v<bencoded value>     (the salt part only if non-empty)

:class:`Item` holds a value as its canonical bencoding (bytes, never a decoded
tree, so memory is bounded by the byte count).  :func:`verify_item` checks a
received item against the target it was looked up for.

:class:`ItemStore` keeps the items other nodes put to us.  :meth:`ItemStore.put`
applies the rules of BEP 44 in this order and returns the KRPC error code of the
first one broken (None when stored):

* value larger than ``max_item_value``: 205; salt longer than ``max_item_salt``: 207;
* mutable: bad signature: 206; ``cas`` given and not the stored seq: 301; seq lower
  than the stored one, or equal with another value: 302; equal seq and the same
  value refreshes the expiry;
* the store is full: the item nearest its expiry is dropped to make room; a source
  IP that already has ``max_items_per_source`` items here gets 202.

Items expire ``item_ttl`` after they were last put (2 hours, as libtorrent).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from p2pshare.config import DhtConfig
from p2pshare.core import bencode
from p2pshare.core.dht import krpc
from p2pshare.errors import LocalProtocolError

__all__ = [
    "Item",
    "ItemStore",
    "immutable_item",
    "immutable_target",
    "mutable_target",
    "public_key_of",
    "sign_mutable",
    "signature_buffer",
    "verify_item",
    "verify_signature",
]

KEY_BYTES = 32
SIG_BYTES = 64


def signature_buffer(salt: bytes, seq: int, value: bytes) -> bytes:
    """The bytes a mutable item's signature covers; ``value`` is the bencoded ``v``."""
    head = b"4:salt%d:%s" % (len(salt), salt) if salt else b""
    return head + b"3:seqi%de1:v" % seq + value


def immutable_target(value: bytes) -> bytes:
    """Where an immutable item lives: SHA-1 of its bencoded value."""
    return hashlib.sha1(value).digest()


def mutable_target(public_key: bytes, salt: bytes = b"") -> bytes:
    """Where a mutable item lives: SHA-1 of the public key followed by the salt."""
    return hashlib.sha1(public_key + salt).digest()


def verify_signature(public_key: bytes, sig: bytes, buffer: bytes) -> bool:
    """Whether ``sig`` is ``public_key``'s ed25519 signature of ``buffer``."""
    if len(public_key) != KEY_BYTES or len(sig) != SIG_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, buffer)
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key_of(private_key: bytes) -> bytes:
    """The 32-byte public key of a 32-byte ed25519 private key (seed)."""
    key = Ed25519PrivateKey.from_private_bytes(private_key)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Item:
    """A BEP 44 item; ``value`` is the bencoded ``v``; ``key`` is None for an immutable one."""

    value: bytes
    key: bytes | None = None
    salt: bytes = b""
    seq: int = 0
    sig: bytes | None = None

    @property
    def mutable(self) -> bool:
        return self.key is not None

    @property
    def target(self) -> bytes:
        return immutable_target(self.value) if self.key is None else mutable_target(self.key, self.salt)

    def decoded(self) -> bencode.BValue:
        """The value as Python objects (bytes, int, list, dict)."""
        return bencode.decode(self.value)

    def signature_ok(self) -> bool:
        """Immutable items need no signature; a mutable one must carry a valid one."""
        if self.key is None:
            return True
        return self.sig is not None and verify_signature(
            self.key, self.sig, signature_buffer(self.salt, self.seq, self.value)
        )

    def put_args(self) -> dict[bytes, object]:
        """The item's part of a ``put`` query (without id, token and cas)."""
        args: dict[bytes, object] = {b"v": bencode.decode(self.value)}
        if self.key is not None:
            args[b"k"] = self.key
            args[b"seq"] = self.seq
            args[b"sig"] = self.sig
            if self.salt:
                args[b"salt"] = self.salt
        return args


def immutable_item(value: bencode.BValue) -> Item:
    """An immutable item holding ``value`` (any bencodable object)."""
    return Item(bytes(bencode.encode(value)))


def sign_mutable(private_key: bytes, value: bencode.BValue, seq: int, salt: bytes = b"") -> Item:
    """A mutable item holding ``value``, signed with a 32-byte ed25519 private key (seed)."""
    if len(private_key) != KEY_BYTES:
        raise LocalProtocolError("an ed25519 private key is 32 bytes")
    if not 0 <= seq < 1 << 63:
        raise LocalProtocolError("seq must be in 0..2**63-1")
    encoded = bytes(bencode.encode(value))
    key = Ed25519PrivateKey.from_private_bytes(private_key)
    sig = key.sign(signature_buffer(salt, seq, encoded))
    return Item(encoded, public_key_of(private_key), salt, seq, sig)


def verify_item(item: Item, target: bytes, *, max_value: int) -> bool:
    """Whether a received item is acceptable for a lookup of ``target``."""
    return len(item.value) <= max_value and item.target == target and item.signature_ok()


@dataclass(slots=True, eq=False)
class _Stored:
    item: Item
    source: str
    expires: float


@dataclass(slots=True)
class ItemStore:
    """Items put to us by other nodes, bounded in count, per source and in time."""

    config: DhtConfig
    _items: dict[bytes, _Stored] = field(default_factory=dict)
    _per_source: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, target: bytes, now: float) -> Item | None:
        """The item stored under ``target``, if any and not expired."""
        s = self._items.get(target)
        if s is None:
            return None
        if s.expires <= now:
            self._remove(target)
            return None
        return s.item

    def put(self, args: krpc.PutArgs, source: str, now: float) -> int | None:
        """Store a put from ``source``; returns the KRPC error code, or None if stored."""
        cfg = self.config
        if len(args.value) > cfg.max_item_value:
            return krpc.ERROR_VALUE_TOO_BIG
        if len(args.salt) > cfg.max_item_salt:
            return krpc.ERROR_SALT_TOO_BIG
        if args.key is None:
            item = Item(args.value)
        else:
            assert args.seq is not None and args.sig is not None  # krpc checked
            item = Item(args.value, args.key, args.salt, args.seq, args.sig)
            if not item.signature_ok():
                return krpc.ERROR_INVALID_SIGNATURE
        target = item.target
        old = self._items.get(target)
        if old is not None and old.expires <= now:
            self._remove(target)
            old = None
        if old is not None:
            if item.key is not None:
                if args.cas is not None and args.cas != old.item.seq:
                    return krpc.ERROR_CAS_MISMATCH
                if item.seq < old.item.seq or (item.seq == old.item.seq and item.value != old.item.value):
                    return krpc.ERROR_SEQ_TOO_LOW
                old.item = item
            old.expires = now + cfg.item_ttl
            return None
        if self._per_source.get(source, 0) >= cfg.max_items_per_source:
            return krpc.ERROR_SERVER
        if len(self._items) >= cfg.max_items:
            self.expire(now)
        if len(self._items) >= cfg.max_items:
            victim = min(self._items, key=lambda t: self._items[t].expires)
            self._remove(victim)
        self._items[target] = _Stored(item, source, now + cfg.item_ttl)
        self._per_source[source] = self._per_source.get(source, 0) + 1
        return None

    def expire(self, now: float) -> int:
        """Drop every expired item; returns how many went."""
        gone = [t for t, s in self._items.items() if s.expires <= now]
        for t in gone:
            self._remove(t)
        return len(gone)

    def _remove(self, target: bytes) -> None:
        s = self._items.pop(target)
        n = self._per_source[s.source] - 1
        if n:
            self._per_source[s.source] = n
        else:
            del self._per_source[s.source]

    def sources(self) -> int:
        """Distinct source IPs with items here."""
        return len(self._per_source)
