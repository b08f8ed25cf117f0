"""KRPC, the DHT's message format (BEP 5), with BEP 32, 42 and 43 fields.

A KRPC message is one bencoded dictionary per UDP datagram:

* query: ``{"t": tid, "y": "q", "q": method, "a": {"id": ..., ...}}`` (+ ``"ro": 1`` from a
  BEP 43 read-only node, + ``"v"`` client version);
* response: ``{"t": tid, "y": "r", "r": {"id": ..., ...}}`` (+ BEP 42 ``"ip"``, ``"v"``);
* error: ``{"t": tid, "y": "e", "e": [code, message]}``.

:func:`decode_message` turns a datagram into a :class:`Query`, :class:`Response` or
:class:`ErrorMessage`, or raises :class:`KrpcError` (a
:class:`~p2pshare.errors.RemoteProtocolError`) for anything oversized, malformed or
mistyped; nothing else escapes.  Queries of the four BEP 5 methods and of BEP 44
``get``/``put`` have their arguments checked here, so the node only sees well-typed
values.  :attr:`KrpcError.query` is set only for a sound query envelope whose
arguments are wrong: garbage is never answered (see ``answers.py``).

Compact encodings: node info is id + IP + port (26 bytes for IPv4, 38 for IPv6 per
BEP 32), peer info is IP + port (6 or 18 bytes).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from p2pshare.config import BencodeLimits
from p2pshare.core import bencode
from p2pshare.core.types import Addr
from p2pshare.errors import BencodeError, RemoteProtocolError

__all__ = [
    "Addr",
    "ERROR_GENERIC",
    "ERROR_CAS_MISMATCH",
    "ERROR_INVALID_SIGNATURE",
    "ERROR_METHOD_UNKNOWN",
    "ERROR_PROTOCOL",
    "ERROR_SALT_TOO_BIG",
    "ERROR_SEQ_TOO_LOW",
    "ERROR_SERVER",
    "ERROR_VALUE_TOO_BIG",
    "AnnouncePeerArgs",
    "ErrorMessage",
    "FindNodeArgs",
    "GetArgs",
    "GetPeersArgs",
    "KrpcError",
    "Message",
    "NodeInfo",
    "PingArgs",
    "PutArgs",
    "Query",
    "Response",
    "decode_message",
    "encode_error",
    "encode_query",
    "encode_response",
    "pack_addr",
    "pack_nodes",
    "response_nodes",
    "response_token",
    "response_values",
    "unpack_addr",
    "unpack_nodes",
]

#: A node as compact node info carries it: (id, address).
NodeInfo = tuple[bytes, Addr]

ERROR_GENERIC = 201
ERROR_SERVER = 202
ERROR_PROTOCOL = 203
ERROR_METHOD_UNKNOWN = 204
# BEP 44
ERROR_VALUE_TOO_BIG = 205
ERROR_INVALID_SIGNATURE = 206
ERROR_SALT_TOO_BIG = 207
ERROR_CAS_MISMATCH = 301
ERROR_SEQ_TOO_LOW = 302

_MAX_TID = 32  #: longer transaction ids are refused (ours are 2 bytes)
_MAX_TOKEN = 64  #: longer write tokens are refused
_MAX_ERROR_TEXT = 256  #: error strings are truncated to this when decoded
_DEPTH = 12  #: BEP 5 needs dict > dict > list > bytes; a BEP 44 ``v`` nests further
_MAX_INT64 = (1 << 63) - 1  #: BEP 44: a seq beyond this may be refused (we do)


class KrpcError(RemoteProtocolError):
    """A datagram that is not acceptable KRPC.

    ``tid`` is the transaction id if one could be read (so a 203 error can be sent
    back), ``code`` the KRPC error code that describes the problem, and ``query``
    whether the datagram was a query (only those deserve an error reply).
    """

    def __init__(
        self, message: str, *, tid: bytes | None = None, code: int = ERROR_PROTOCOL, query: bool = False
    ) -> None:
        super().__init__(message)
        self.tid = tid
        self.code = code
        self.query = query


@dataclass(frozen=True, slots=True)
class PingArgs:
    """Arguments of ``ping``: none besides the sender id."""


@dataclass(frozen=True, slots=True)
class FindNodeArgs:
    """Arguments of ``find_node``."""

    target: bytes
    want: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class GetPeersArgs:
    """Arguments of ``get_peers``."""

    info_hash: bytes
    want: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class AnnouncePeerArgs:
    """Arguments of ``announce_peer``."""

    info_hash: bytes
    port: int
    token: bytes
    implied_port: bool


@dataclass(frozen=True, slots=True)
class GetArgs:
    """Arguments of BEP 44 ``get``: ``seq`` asks for the value only if newer than that."""

    target: bytes
    seq: int | None
    want: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class PutArgs:
    """Arguments of BEP 44 ``put``; ``key`` is None for an immutable item.

    ``value`` is the canonical bencoding of ``v`` (the decoder refuses non-canonical
    integers and lengths, and unsorted dict keys are refused here), so it is exactly
    the bytes that were hashed or signed.
    """

    token: bytes
    value: bytes
    key: bytes | None
    salt: bytes
    seq: int | None
    sig: bytes | None
    cas: int | None


QueryArgs = PingArgs | FindNodeArgs | GetPeersArgs | AnnouncePeerArgs | GetArgs | PutArgs | None


@dataclass(frozen=True, slots=True)
class Query:
    """A query; ``args`` is None for a method we do not know."""

    tid: bytes
    method: bytes
    sender_id: bytes
    args: QueryArgs
    read_only: bool
    version: bytes | None


@dataclass(frozen=True, slots=True)
class Response:
    """A response; ``body`` is the ``r`` dictionary, checked lazily by the helpers below."""

    tid: bytes
    sender_id: bytes
    body: dict[bytes, Any]
    ip: Addr | None
    version: bytes | None


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """A KRPC error reply."""

    tid: bytes
    code: int
    text: str


Message = Query | Response | ErrorMessage


# -- compact encodings --------------------------------------------------------------


def pack_addr(addr: Addr) -> bytes:
    """(ip, port) to compact form: 6 bytes for IPv4, 18 for IPv6."""
    host, port = addr
    return ipaddress.ip_address(host).packed + port.to_bytes(2, "big")


def unpack_addr(data: bytes) -> Addr:
    """Compact IPv4 (6 bytes) or IPv6 (18 bytes) address to (ip, port)."""
    if len(data) == 6:
        return (str(ipaddress.IPv4Address(data[:4])), int.from_bytes(data[4:], "big"))
    if len(data) == 18:
        return (str(ipaddress.IPv6Address(data[:16])), int.from_bytes(data[16:], "big"))
    raise KrpcError(f"a compact address is 6 or 18 bytes, got {len(data)}")


def pack_nodes(nodes: list[NodeInfo]) -> bytes:
    """Compact node info for several nodes of one family (26 or 38 bytes each)."""
    return b"".join(node_id + pack_addr(addr) for node_id, addr in nodes)


def unpack_nodes(data: bytes, *, ipv6: bool = False) -> list[NodeInfo]:
    """Split compact node info; a length that is not a whole number of entries is an error."""
    size = 38 if ipv6 else 26
    if len(data) % size:
        raise KrpcError(f"compact node info is a multiple of {size} bytes, got {len(data)}")
    return [(data[i : i + 20], unpack_addr(data[i + 20 : i + size])) for i in range(0, len(data), size)]


# -- encoding ------------------------------------------------------------------------


def encode_query(
    tid: bytes,
    method: bytes,
    args: dict[bytes, Any],
    *,
    read_only: bool = False,
    version: bytes | None = None,
) -> bytes:
    """Bencode a query; ``args`` must already hold ``id``."""
    msg: dict[bytes, Any] = {b"t": tid, b"y": b"q", b"q": method, b"a": args}
    if read_only:
        msg[b"ro"] = 1
    if version is not None:
        msg[b"v"] = version
    return bytes(bencode.encode(msg))


def encode_response(
    tid: bytes, body: dict[bytes, Any], *, ip: Addr | None = None, version: bytes | None = None
) -> bytes:
    """Bencode a response; ``ip`` is the requester's address (BEP 42)."""
    msg: dict[bytes, Any] = {b"t": tid, b"y": b"r", b"r": body}
    if ip is not None:
        msg[b"ip"] = pack_addr(ip)
    if version is not None:
        msg[b"v"] = version
    return bytes(bencode.encode(msg))


def encode_error(tid: bytes, code: int, text: str, *, version: bytes | None = None) -> bytes:
    """Bencode an error reply."""
    msg: dict[bytes, Any] = {b"t": tid, b"y": b"e", b"e": [code, text.encode()]}
    if version is not None:
        msg[b"v"] = version
    return bytes(bencode.encode(msg))


# -- decoding ------------------------------------------------------------------------


def _id(value: object, what: str, tid: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != 20:
        raise KrpcError(f"{what} must be a 20-byte string", tid=tid)
    return value


def _want(args: dict[bytes, Any], tid: bytes) -> frozenset[bytes]:
    want = args.get(b"want")
    if want is None:
        return frozenset()
    if not isinstance(want, list) or len(want) > 8 or not all(isinstance(w, bytes) for w in want):
        raise KrpcError("want must be a short list of strings", tid=tid)
    return frozenset(want)


def _query_args(method: bytes, args: dict[bytes, Any], tid: bytes) -> QueryArgs:
    if method == b"ping":
        return PingArgs()
    if method == b"find_node":
        return FindNodeArgs(_id(args.get(b"target"), "target", tid), _want(args, tid))
    if method == b"get_peers":
        return GetPeersArgs(_id(args.get(b"info_hash"), "info_hash", tid), _want(args, tid))
    if method == b"announce_peer":
        info_hash = _id(args.get(b"info_hash"), "info_hash", tid)
        port = args.get(b"port")
        implied = args.get(b"implied_port", 0)
        token = args.get(b"token")
        if not isinstance(implied, int) or isinstance(implied, bool):
            raise KrpcError("implied_port must be an integer", tid=tid)
        if not isinstance(token, bytes) or len(token) > _MAX_TOKEN:
            raise KrpcError("token must be a short string", tid=tid)
        port_ok = isinstance(port, int) and 0 < port < 65536
        if not port_ok and not implied:
            raise KrpcError("port must be an integer in 1..65535", tid=tid)
        # With implied_port the datagram's source port is used, so a bad port is harmless.
        return AnnouncePeerArgs(
            info_hash, port if isinstance(port, int) and port_ok else 0, token, bool(implied)
        )
    if method == b"get":
        seq = args.get(b"seq")
        if seq is not None and not _is_int(seq):
            raise KrpcError("seq must be an integer", tid=tid)
        return GetArgs(_id(args.get(b"target"), "target", tid), seq, _want(args, tid))
    if method == b"put":
        return _put_args(args, tid)
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_canonical(value: object) -> bool:
    """Whether re-encoding ``value`` gives back what was received: every dict's keys sorted."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            keys = list(v)
            if keys != sorted(keys):
                return False
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return True


def _put_args(args: dict[bytes, Any], tid: bytes) -> PutArgs:
    token = args.get(b"token")
    if not isinstance(token, bytes) or len(token) > _MAX_TOKEN:
        raise KrpcError("token must be a short string", tid=tid)
    if b"v" not in args:
        raise KrpcError("put needs a value v", tid=tid)
    v = args[b"v"]
    if not is_canonical(v):
        raise KrpcError("v is not canonical bencode (unsorted keys)", tid=tid)
    value = bytes(bencode.encode(v))
    key = args.get(b"k")
    salt = args.get(b"salt", b"")
    seq = args.get(b"seq")
    sig = args.get(b"sig")
    cas = args.get(b"cas")
    if not isinstance(salt, bytes):
        raise KrpcError("salt must be a string", tid=tid)
    if key is None:
        return PutArgs(token, value, None, b"", None, None, None)
    if not isinstance(key, bytes) or len(key) != 32:
        raise KrpcError("k must be a 32-byte ed25519 public key", tid=tid)
    if not isinstance(sig, bytes) or len(sig) != 64:
        raise KrpcError("sig must be a 64-byte ed25519 signature", tid=tid)
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= _MAX_INT64:
        raise KrpcError("seq must be an integer in 0..2**63-1", tid=tid)
    if cas is not None and not _is_int(cas):
        raise KrpcError("cas must be an integer", tid=tid)
    return PutArgs(token, value, key, salt, seq, sig, cas)


def decode_message(data: bytes, *, max_packet: int) -> Message:
    """Parse one datagram; raise :class:`KrpcError` for anything unacceptable."""
    if len(data) > max_packet:
        raise KrpcError(f"datagram of {len(data)} bytes exceeds the {max_packet}-byte limit")
    try:
        msg = bencode.decode(data, BencodeLimits(max_depth=_DEPTH, max_input=max_packet))
    except BencodeError as exc:
        raise KrpcError(f"not bencode: {exc}") from None
    if not isinstance(msg, dict):
        raise KrpcError("a KRPC message is a dictionary")
    tid = msg.get(b"t")
    if not isinstance(tid, bytes) or len(tid) > _MAX_TID:
        raise KrpcError("missing or invalid transaction id")
    kind = msg.get(b"y")
    version = msg.get(b"v")
    if not isinstance(version, bytes):
        version = None
    if kind == b"q":
        method = msg.get(b"q")
        args = msg.get(b"a")
        if not isinstance(method, bytes) or not isinstance(args, dict):
            raise KrpcError("a query needs a method name and an argument dictionary", tid=tid)
        sender = _id(args.get(b"id"), "id", tid)
        ro = msg.get(b"ro")
        # Only a sound query envelope (method, arguments, sender id) earns an error reply:
        # anything less is garbage and gets no answer at all (no reflection).
        try:
            return Query(tid, method, sender, _query_args(method, args, tid), ro == 1, version)
        except KrpcError as exc:
            exc.query = True
            raise
    if kind == b"r":
        body = msg.get(b"r")
        if not isinstance(body, dict):
            raise KrpcError("a response needs an r dictionary", tid=tid)
        sender = _id(body.get(b"id"), "id", tid)
        ip_raw = msg.get(b"ip")
        ip: Addr | None = None
        if isinstance(ip_raw, bytes) and len(ip_raw) in (6, 18):
            ip = unpack_addr(ip_raw)
        return Response(tid, sender, body, ip, version)
    if kind == b"e":
        err = msg.get(b"e")
        if not isinstance(err, list) or len(err) < 2 or not isinstance(err[0], int):
            raise KrpcError("an error needs [code, message]", tid=tid)
        text = err[1]
        text_s = text[:_MAX_ERROR_TEXT].decode("utf-8", "replace") if isinstance(text, bytes) else ""
        return ErrorMessage(tid, err[0], text_s)
    raise KrpcError("unknown message type", tid=tid)


def response_nodes(resp: Response, *, ipv6: bool = False) -> list[NodeInfo]:
    """The ``nodes`` (or ``nodes6``) of a response; absent means none."""
    raw = resp.body.get(b"nodes6" if ipv6 else b"nodes")
    if raw is None:
        return []
    if not isinstance(raw, bytes):
        raise KrpcError("nodes must be a string", tid=resp.tid)
    return unpack_nodes(raw, ipv6=ipv6)


def response_values(resp: Response) -> list[Addr]:
    """The peers (``values``) of a get_peers response; malformed entries are skipped."""
    raw = resp.body.get(b"values")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise KrpcError("values must be a list", tid=resp.tid)
    peers = []
    for item in raw:
        if isinstance(item, bytes) and len(item) in (6, 18):
            addr = unpack_addr(item)
            if addr[1] != 0:
                peers.append(addr)
    return peers


def response_token(resp: Response) -> bytes | None:
    """The write token of a get_peers response, if a usable one is present."""
    token = resp.body.get(b"token")
    if isinstance(token, bytes) and 0 < len(token) <= _MAX_TOKEN:
        return token
    return None
