"""BEP 3 / BEP 6 / BEP 10 wire messages: frozen dataclasses and their encoding.

Every message after the handshake is ``<length: u32 big-endian><id: u8><payload>``;
a zero length is a keep-alive.  Decoding lives in :mod:`p2pshare.core.wire.parser`
(streaming, limit-checked); this module only builds bytes, so it trusts its input
(callers that build messages from remote data validate first).

Also here: the 68-byte handshake, reserved-bit helpers, BEP 20 peer ids and the
BEP 6 allowed-fast set.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from enum import IntEnum

from p2pshare.core.types import random_bytes
from p2pshare.core.wire.hashes import Hashes, HashReject, HashRequest
from p2pshare.core.wire.hashes import encode as encode_hash_message
from p2pshare.errors import LocalProtocolError

__all__ = [
    "HANDSHAKE_LENGTH",
    "PROTOCOL_HEADER",
    "PEER_ID_PREFIX",
    "Message",
    "MessageId",
    "Handshake",
    "KeepAlive",
    "Choke",
    "Unchoke",
    "Interested",
    "NotInterested",
    "Have",
    "BitfieldMsg",
    "Request",
    "Piece",
    "Cancel",
    "Port",
    "Suggest",
    "HaveAll",
    "HaveNone",
    "RejectRequest",
    "AllowedFast",
    "Extended",
    "allowed_fast_set",
    "client_name",
    "encode",
    "encode_handshake",
    "encode_piece_header",
    "make_peer_id",
    "make_reserved",
]

#: ``\x13BitTorrent protocol``: the first 20 bytes of every handshake.
PROTOCOL_HEADER = b"\x13BitTorrent protocol"
#: pstrlen + pstr + reserved(8) + info_hash(20) + peer_id(20).
HANDSHAKE_LENGTH = 68
#: Our BEP 20 (Azureus-style) peer id prefix: client code ``PS``, version 0.1.0.0.
PEER_ID_PREFIX = b"-PS0100-"

_U32 = struct.Struct(">I")
_LEN_ID = struct.Struct(">IB")
_LEN_ID_U32 = struct.Struct(">IBI")
_LEN_ID_3U32 = struct.Struct(">IBIII")
_LEN_ID_2U32 = struct.Struct(">IBII")
_LEN_ID_U16 = struct.Struct(">IBH")
_LEN_ID_U8 = struct.Struct(">IBB")


class MessageId(IntEnum):
    """The one-byte message ids of BEP 3, BEP 5 (port), BEP 6 and BEP 10."""

    CHOKE = 0
    UNCHOKE = 1
    INTERESTED = 2
    NOT_INTERESTED = 3
    HAVE = 4
    BITFIELD = 5
    REQUEST = 6
    PIECE = 7
    CANCEL = 8
    PORT = 9
    SUGGEST = 0x0D
    HAVE_ALL = 0x0E
    HAVE_NONE = 0x0F
    REJECT_REQUEST = 0x10
    ALLOWED_FAST = 0x11
    EXTENDED = 20
    HASH_REQUEST = 21  #: BEP 52 (codec in :mod:`.hashes`)
    HASHES = 22
    HASH_REJECT = 23


# ---------------------------------------------------------------------------
# Reserved bits


def make_reserved(
    *, fast: bool = False, extensions: bool = False, dht: bool = False, v2: bool = False
) -> bytes:
    """The 8 reserved handshake bytes with the BEP 6 / BEP 10 / BEP 5 / BEP 52 bits set as asked."""
    reserved = bytearray(8)
    if extensions:
        reserved[5] |= 0x10
    if fast:
        reserved[7] |= 0x04
    if dht:
        reserved[7] |= 0x01
    if v2:
        reserved[7] |= 0x10
    return bytes(reserved)


class _ReservedBits:
    """Properties shared by everything that carries the 8 reserved bytes."""

    __slots__ = ()
    reserved: bytes

    @property
    def supports_fast(self) -> bool:
        """BEP 6: ``reserved[7] & 0x04``."""
        return bool(self.reserved[7] & 0x04)

    @property
    def supports_extensions(self) -> bool:
        """BEP 10: ``reserved[5] & 0x10``."""
        return bool(self.reserved[5] & 0x10)

    @property
    def supports_dht(self) -> bool:
        """BEP 5: ``reserved[7] & 0x01``."""
        return bool(self.reserved[7] & 0x01)


@dataclass(frozen=True, slots=True)
class Handshake(_ReservedBits):
    """The 68-byte BEP 3 handshake."""

    info_hash: bytes
    peer_id: bytes
    reserved: bytes = bytes(8)

    def __post_init__(self) -> None:
        if len(self.info_hash) != 20 or len(self.peer_id) != 20 or len(self.reserved) != 8:
            raise ValueError("handshake needs a 20-byte info hash, 20-byte peer id and 8 reserved bytes")

    def encode(self) -> bytes:
        return PROTOCOL_HEADER + self.reserved + self.info_hash + self.peer_id


def encode_handshake(
    info_hash: bytes, peer_id: bytes, *, fast: bool = True, extensions: bool = True, dht: bool = False
) -> bytes:
    """Our 68-byte handshake with the chosen reserved bits."""
    reserved = make_reserved(fast=fast, extensions=extensions, dht=dht)
    return Handshake(info_hash, peer_id, reserved).encode()


# ---------------------------------------------------------------------------
# Messages


@dataclass(frozen=True, slots=True)
class KeepAlive:
    """A zero-length message (BEP 3)."""


@dataclass(frozen=True, slots=True)
class Choke:
    """The sender will not serve requests."""


@dataclass(frozen=True, slots=True)
class Unchoke:
    """The sender will serve requests."""


@dataclass(frozen=True, slots=True)
class Interested:
    """The sender wants pieces the receiver has."""


@dataclass(frozen=True, slots=True)
class NotInterested:
    """The sender wants nothing from the receiver."""


@dataclass(frozen=True, slots=True)
class Have:
    """The sender has just verified piece ``index``."""

    index: int


@dataclass(frozen=True, slots=True)
class BitfieldMsg:
    """The sender's pieces, as BEP 3's wire bitfield (high bit of byte 0 = piece 0)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Request:
    """Ask for ``length`` bytes at ``begin`` of piece ``index``."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class Piece:
    """A block of data answering a :class:`Request`."""

    index: int
    begin: int
    data: bytes

    def __repr__(self) -> str:  # never dump 16 KiB into a log line
        return f"Piece(index={self.index}, begin={self.begin}, data=<{len(self.data)} bytes>)"


@dataclass(frozen=True, slots=True)
class Cancel:
    """Withdraw an earlier :class:`Request`."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class Port:
    """BEP 5: the sender's DHT node listens on this UDP port."""

    port: int


@dataclass(frozen=True, slots=True)
class Suggest:
    """BEP 6: "you might like to download this piece"."""

    index: int


@dataclass(frozen=True, slots=True)
class HaveAll:
    """BEP 6: the sender has every piece (replaces the bitfield)."""


@dataclass(frozen=True, slots=True)
class HaveNone:
    """BEP 6: the sender has no piece (replaces the bitfield)."""


@dataclass(frozen=True, slots=True)
class RejectRequest:
    """BEP 6: the request (index, begin, length) will not be served."""

    index: int
    begin: int
    length: int


@dataclass(frozen=True, slots=True)
class AllowedFast:
    """BEP 6: the receiver may request piece ``index`` even while choked."""

    index: int


@dataclass(frozen=True, slots=True)
class Extended:
    """BEP 10: an extension message; ``ext_id`` 0 is the extension handshake."""

    ext_id: int
    payload: bytes


Message = (
    KeepAlive
    | Choke
    | Unchoke
    | Interested
    | NotInterested
    | Have
    | BitfieldMsg
    | Request
    | Piece
    | Cancel
    | Port
    | Suggest
    | HaveAll
    | HaveNone
    | RejectRequest
    | AllowedFast
    | Extended
    | HashRequest
    | Hashes
    | HashReject
)

_BARE: dict[type, bytes] = {
    KeepAlive: b"\x00\x00\x00\x00",
    Choke: _LEN_ID.pack(1, MessageId.CHOKE),
    Unchoke: _LEN_ID.pack(1, MessageId.UNCHOKE),
    Interested: _LEN_ID.pack(1, MessageId.INTERESTED),
    NotInterested: _LEN_ID.pack(1, MessageId.NOT_INTERESTED),
    HaveAll: _LEN_ID.pack(1, MessageId.HAVE_ALL),
    HaveNone: _LEN_ID.pack(1, MessageId.HAVE_NONE),
}
_ONE_INT: dict[type, int] = {
    Have: MessageId.HAVE,
    Suggest: MessageId.SUGGEST,
    AllowedFast: MessageId.ALLOWED_FAST,
}
_THREE_INTS: dict[type, int] = {
    Request: MessageId.REQUEST,
    Cancel: MessageId.CANCEL,
    RejectRequest: MessageId.REJECT_REQUEST,
}


def encode_piece_header(index: int, begin: int, length: int) -> bytes:
    """The 13 bytes before a piece's data: write them and the data with ``writelines``."""
    return _LEN_ID_2U32.pack(9 + length, MessageId.PIECE, index, begin)


def encode(msg: Message) -> bytes:
    """The wire bytes of one message (length prefix included).

    Raises :class:`LocalProtocolError` for a value that does not fit its field.
    """
    try:
        bare = _BARE.get(type(msg))
        if bare is not None:
            return bare
        if isinstance(msg, Have | Suggest | AllowedFast):
            return _LEN_ID_U32.pack(5, _ONE_INT[type(msg)], msg.index)
        if isinstance(msg, Request | Cancel | RejectRequest):
            return _LEN_ID_3U32.pack(13, _THREE_INTS[type(msg)], msg.index, msg.begin, msg.length)
        if isinstance(msg, Piece):
            return encode_piece_header(msg.index, msg.begin, len(msg.data)) + msg.data
        if isinstance(msg, BitfieldMsg):
            return _LEN_ID.pack(1 + len(msg.data), MessageId.BITFIELD) + msg.data
        if isinstance(msg, Port):
            return _LEN_ID_U16.pack(3, MessageId.PORT, msg.port)
        if isinstance(msg, Extended):
            return _LEN_ID_U8.pack(2 + len(msg.payload), MessageId.EXTENDED, msg.ext_id) + msg.payload
        if isinstance(msg, HashRequest | Hashes | HashReject):
            return encode_hash_message(msg)
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode {msg!r}: {exc}") from None
    raise LocalProtocolError(f"not a wire message: {msg!r}")


# ---------------------------------------------------------------------------
# BEP 6 allowed-fast set


def allowed_fast_set(ipv4: bytes, info_hash: bytes, num_pieces: int, k: int) -> list[int]:
    """BEP 6's canonical allowed-fast set of ``k`` pieces for the peer at ``ipv4`` (4 bytes)."""
    if len(ipv4) != 4 or num_pieces <= 0:
        return []
    k = min(k, num_pieces)
    x = bytes(ipv4[:3]) + b"\x00" + info_hash
    result: list[int] = []
    seen: set[int] = set()
    while len(result) < k:
        x = hashlib.sha1(x).digest()
        for i in range(5):
            if len(result) >= k:
                break
            index = _U32.unpack_from(x, i * 4)[0] % num_pieces
            if index not in seen:
                seen.add(index)
                result.append(index)
    return result


# ---------------------------------------------------------------------------
# BEP 20 peer ids


def make_peer_id() -> bytes:
    """A fresh peer id: ``-PS0100-`` followed by 12 random bytes."""
    return PEER_ID_PREFIX + random_bytes(12)


_AZUREUS_CLIENTS = {
    "AG": "Ares",
    "AR": "Arctic",
    "AZ": "Vuze",
    "BC": "BitComet",
    "BT": "BitTorrent",
    "DE": "Deluge",
    "KT": "KTorrent",
    "LT": "libtorrent",
    "lt": "libTorrent (rakshasa)",
    "PS": "p2pshare",
    "qB": "qBittorrent",
    "TR": "Transmission",
    "UT": "\u00b5Torrent",
    "UW": "\u00b5Torrent Web",
    "WW": "WebTorrent",
    "WD": "WebTorrent Desktop",
    "XL": "Xunlei",
}
_AZUREUS = re.compile(rb"-([A-Za-z~]{2})([0-9A-Za-z]{4})-")
_MAINLINE = re.compile(rb"([MQ])(\d{1,3})-(\d{1,3})-(\d{1,3})-")
_ARIA2 = re.compile(rb"A2-(\d{1,3})-(\d{1,3})-(\d{1,3})-")


def _version_char(c: str) -> int:
    return int(c) if c.isdigit() else (ord(c.upper()) - ord("A") + 10)


def _azureus_version(code: str, ver: str) -> str:
    if code == "TR":  # Transmission: major digit, two-digit minor, then 0 / Z (beta) / X (dev)
        tag = {"Z": "+", "X": "+"}.get(ver[3], "")
        return f"{ver[0]}.{ver[1:3]}{tag}"
    parts = [_version_char(c) for c in ver]
    keep = 3 if code == "PS" else 2  # p2pshare reads as its __version__ does: 0.1.0
    while len(parts) > keep and parts[-1] == 0:
        parts.pop()
    return ".".join(str(p) for p in parts)


def client_name(peer_id: bytes, v: bytes | str | None = None) -> str:
    """A display name for a peer: the BEP 10 ``v`` string if given, else decoded from the peer id."""
    if v:
        text = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        text = "".join(ch for ch in text if ch.isprintable())[:64]
        if text:
            return text
    m = _AZUREUS.match(peer_id)
    if m:
        code, ver = m.group(1).decode(), m.group(2).decode()
        name = _AZUREUS_CLIENTS.get(code, f"unknown client {code!r}")
        return f"{name} {_azureus_version(code, ver)}"
    m = _ARIA2.match(peer_id)
    if m:
        return "aria2 " + ".".join(g.decode() for g in m.groups())
    m = _MAINLINE.match(peer_id)
    if m:
        name = "Mainline" if m.group(1) == b"M" else "Queen Bee"
        return f"{name} " + ".".join(g.decode() for g in m.groups()[1:])
    prefix = peer_id[:8]
    if all(32 <= b < 127 for b in prefix):
        return f"unknown ({prefix.decode()})"
    return f"unknown ({prefix.hex()})"
