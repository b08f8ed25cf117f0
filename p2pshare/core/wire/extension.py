"""BEP 10 extension handshake: the bencoded dict sent as extended message 0.

Decoding ignores keys it does not know (BEP 10 says to) but is strict on the types
of the keys it does use, and bounded: ``m`` may hold at most
``limits.max_extensions`` entries, ``v`` is cut to ``limits.max_client_name``
bytes, and the whole payload may not exceed ``limits.max_extended_message``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pshare.config import WireLimits
from p2pshare.core import bencode
from p2pshare.errors import BencodeError, RemoteProtocolError, Violation

__all__ = ["UT_METADATA", "UT_METADATA_ID", "ExtensionHandshake"]

#: The BEP 9 extension name.
UT_METADATA = "ut_metadata"
#: The extended message id we ask peers to use for ut_metadata sent to us.
UT_METADATA_ID = 1

_DEFAULT_LIMITS = WireLimits()


def _opt_int(d: dict[bytes, object], key: bytes) -> int | None:
    value = d.get(key)
    if value is None:
        return None
    if type(value) is not int:
        raise RemoteProtocolError(
            f"extension handshake field {key.decode()!r} must be an integer", kind=Violation.MALFORMED
        )
    return value


@dataclass(frozen=True, slots=True)
class ExtensionHandshake:
    """One BEP 10 handshake.  ``m`` maps extension names to the sender's message ids (0 = disabled)."""

    m: dict[str, int] = field(default_factory=dict)
    v: str | None = None  #: client name and version
    p: int | None = None  #: the sender's TCP listen port
    reqq: int | None = None  #: requests the sender will queue without dropping
    metadata_size: int | None = None  #: BEP 9: bytes of the info dict
    yourip: bytes | None = None  #: the receiver's address as the sender sees it (4 or 16 bytes)

    def ext_id(self, name: str) -> int | None:
        """The sender's id for extension ``name``, or ``None`` when absent or disabled."""
        value = self.m.get(name)
        return value if value else None

    def encode(self) -> bytes:
        """The bencoded dict (the payload after the extended id byte)."""
        d: dict[bytes, object] = {b"m": {k.encode(): v for k, v in self.m.items()}}
        if self.v is not None:
            d[b"v"] = self.v.encode()
        if self.p is not None:
            d[b"p"] = self.p
        if self.reqq is not None:
            d[b"reqq"] = self.reqq
        if self.metadata_size is not None:
            d[b"metadata_size"] = self.metadata_size
        if self.yourip is not None:
            d[b"yourip"] = self.yourip
        return bencode.encode(d)

    @classmethod
    def decode(cls, payload: bytes, limits: WireLimits = _DEFAULT_LIMITS) -> ExtensionHandshake:
        """Parse a peer's handshake payload; :class:`RemoteProtocolError` when malformed."""
        if len(payload) > limits.max_extended_message:
            raise RemoteProtocolError(
                f"extension handshake of {len(payload)} bytes exceeds {limits.max_extended_message}",
                kind=Violation.TOO_LARGE,
            )
        try:
            d = bencode.decode(payload)
        except BencodeError as exc:
            raise RemoteProtocolError(
                f"extension handshake is not valid bencode: {exc}", kind=Violation.MALFORMED
            ) from None
        if not isinstance(d, dict):
            raise RemoteProtocolError("extension handshake must be a bencoded dict", kind=Violation.MALFORMED)
        raw_m = d.get(b"m", {})
        if not isinstance(raw_m, dict):
            raise RemoteProtocolError("extension handshake 'm' must be a dict", kind=Violation.MALFORMED)
        if len(raw_m) > limits.max_extensions:
            raise RemoteProtocolError(
                f"extension handshake lists {len(raw_m)} extensions (limit {limits.max_extensions})",
                kind=Violation.TOO_LARGE,
            )
        m: dict[str, int] = {}
        for key, value in raw_m.items():
            if type(value) is not int or not 0 <= value <= 255:
                raise RemoteProtocolError(
                    f"extension id for {key[:32]!r} must be an integer 0..255", kind=Violation.MALFORMED
                )
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                continue  # a name we cannot know; BEP 10 says to ignore unknown names
            m[name] = value
        v = d.get(b"v")
        client: str | None = None
        if v is not None:
            if not isinstance(v, bytes):
                raise RemoteProtocolError(
                    "extension handshake 'v' must be a string", kind=Violation.MALFORMED
                )
            client = v[: limits.max_client_name].decode("utf-8", "replace")
        p = _opt_int(d, b"p")
        if p is not None and not 0 < p < 65536:
            p = None  # some clients send 0 or junk; the port is advisory
        reqq = _opt_int(d, b"reqq")
        if reqq is not None and reqq <= 0:
            reqq = None
        metadata_size = _opt_int(d, b"metadata_size")
        if metadata_size is not None and metadata_size < 0:
            raise RemoteProtocolError(f"negative metadata_size {metadata_size}", kind=Violation.MALFORMED)
        yourip = d.get(b"yourip")
        if yourip is not None:
            if not isinstance(yourip, bytes):
                raise RemoteProtocolError(
                    "extension handshake 'yourip' must be a string", kind=Violation.MALFORMED
                )
            if len(yourip) not in (4, 16):
                yourip = None
        return cls(m=m, v=client, p=p, reqq=reqq, metadata_size=metadata_size, yourip=yourip)

    def merged(self, update: ExtensionHandshake) -> ExtensionHandshake:
        """This handshake updated by a later one (BEP 10: ``m`` is additive; 0 disables)."""
        m = dict(self.m)
        m.update(update.m)
        return ExtensionHandshake(
            m={k: v for k, v in m.items() if v},
            v=update.v if update.v is not None else self.v,
            p=update.p if update.p is not None else self.p,
            reqq=update.reqq if update.reqq is not None else self.reqq,
            metadata_size=update.metadata_size if update.metadata_size is not None else self.metadata_size,
            yourip=update.yourip if update.yourip is not None else self.yourip,
        )

    @classmethod
    def ours(
        cls,
        limits: WireLimits = _DEFAULT_LIMITS,
        *,
        metadata_size: int | None = None,
        port: int | None = None,
        client: str | None = "p2pshare 0.1.0",
        yourip: bytes | None = None,
        ut_metadata: bool = True,
    ) -> ExtensionHandshake:
        """The handshake p2pshare sends: ut_metadata as id 1, ``reqq`` from the limits."""
        return cls(
            m={UT_METADATA: UT_METADATA_ID} if ut_metadata else {},
            v=client,
            p=port,
            reqq=limits.max_incoming_requests,
            metadata_size=metadata_size,
            yourip=yourip,
        )
