"""Updatable shares (BEP 46), sans I/O: the pointer item, btpk magnets, and what changed.

A publisher signs a BEP 44 mutable item under its ed25519 public key whose value
points at the current version's manifest: ``{"ih": <20-byte swarm id>}`` as BEP 46
has it, plus ``"ih2"``: the 32-byte v2 info hash, so a follower checks the manifest
it fetches by SHA-256.  Each new version is published with ``seq + 1``.

Followers name the share with ``magnet:?xs=urn:btpk:<public key hex>`` (and
``s=<salt hex>`` when a salt is used).  Because a v2 manifest carries a merkle root
per file, :func:`diff_versions` tells which files changed between two versions
without touching their bytes, and :func:`trusted_pieces` says which pieces of the
new version a follower already holds (the pieces of unchanged files, whose local
copies it verified when it synced the previous version).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

from p2pshare.core import bencode
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.metainfo import Info
from p2pshare.core.types import InfoHash, InfoHashV2, PeerAddress, parse_host_port
from p2pshare.errors import BencodeError, MetainfoError, RemoteProtocolError, TargetError, Violation

__all__ = [
    "Followed",
    "Pointer",
    "VersionDiff",
    "diff_versions",
    "file_roots",
    "make_btpk_magnet",
    "parse_btpk_magnet",
    "parse_pointer",
    "pointer_value",
    "trusted_pieces",
]

_KEY_HEX = 64
_MAX_SALT = 64  #: BEP 44: a salt is at most 64 bytes

#: (path under the share's name, length, pieces root or None for an empty file)
FileKey = tuple[int, bytes | None]


@dataclass(frozen=True, slots=True)
class Pointer:
    """What one version of an updatable share points at."""

    info_hash: InfoHash  #: the 20-byte swarm id (v1 hash, or the truncated v2 hash)
    info_hash_v2: InfoHashV2 | None = None


def pointer_value(info: Info) -> dict[bytes, bytes]:
    """The mutable item's value for a manifest (BEP 46 ``ih``, plus ``ih2`` for v2)."""
    value = {b"ih": info.info_hash.value}
    if info.info_hash_v2 is not None:
        value[b"ih2"] = info.info_hash_v2.value
    return value


def parse_pointer(raw: bytes) -> Pointer:
    """Decode a mutable item's bencoded value; RemoteProtocolError when it is not a pointer."""
    try:
        value = bencode.decode(raw)
    except BencodeError as exc:
        raise RemoteProtocolError(
            f"the share's item is not bencode: {exc}", kind=Violation.MALFORMED
        ) from None
    if not isinstance(value, dict):
        raise RemoteProtocolError("the share's item is not a dictionary", kind=Violation.MALFORMED)
    ih = value.get(b"ih")
    ih2 = value.get(b"ih2")
    if not isinstance(ih, bytes) or len(ih) != 20:
        raise RemoteProtocolError("the share's item has no 20-byte 'ih'", kind=Violation.MALFORMED)
    if ih2 is not None and (not isinstance(ih2, bytes) or len(ih2) != 32 or ih2[:20] != ih):
        raise RemoteProtocolError("the share's item has a bad 'ih2'", kind=Violation.MALFORMED)
    return Pointer(InfoHash(ih), InfoHashV2(ih2) if ih2 is not None else None)


@dataclass(frozen=True, slots=True)
class Followed:
    """A btpk magnet link: the publisher's key, an optional salt, a name and peer hints."""

    public_key: bytes
    salt: bytes = b""
    name: str | None = None
    peers: tuple[PeerAddress, ...] = ()


def make_btpk_magnet(
    public_key: bytes, name: str | None = None, peers: Iterable[PeerAddress] = (), salt: bytes = b""
) -> str:
    """``magnet:?xs=urn:btpk:<key hex>`` with ``s=``, ``dn=`` and ``x.pe=`` when given."""
    parts = [f"xs=urn:btpk:{public_key.hex()}"]
    if salt:
        parts.append(f"s={salt.hex()}")
    if name:
        parts.append("dn=" + quote(name, safe=""))
    parts.extend("x.pe=" + quote(str(p), safe=":[]") for p in peers)
    return "magnet:?" + "&".join(parts)


def parse_btpk_magnet(text: str) -> Followed | None:
    """The followed share of a btpk magnet link; None for any other target; TargetError if malformed."""
    text = text.strip()
    if not text.lower().startswith("magnet:") or "urn:btpk:" not in text.lower():
        return None
    key: bytes | None = None
    salt = b""
    name = None
    peers: list[PeerAddress] = []
    for k, value in parse_qsl(urlsplit(text).query, keep_blank_values=True):
        k = k.lower()
        if k == "xs" and value.lower().startswith("urn:btpk:"):
            hex_key = value[9:]
            if len(hex_key) != _KEY_HEX:
                raise TargetError(f"magnet link has a btpk of {len(hex_key)} hex digits, not 64")
            try:
                key = bytes.fromhex(hex_key)
            except ValueError:
                raise TargetError("magnet link has a btpk that is not hex") from None
        elif k == "s":
            try:
                salt = bytes.fromhex(value)
            except ValueError:
                raise TargetError("magnet link has a salt (s=) that is not hex") from None
            if len(salt) > _MAX_SALT:
                raise TargetError(f"magnet link has a salt of {len(salt)} bytes (at most {_MAX_SALT})")
        elif k == "dn":
            name = value
        elif k == "x.pe":
            try:
                peers.append(parse_host_port(value))
            except ValueError:
                continue
    if key is None:
        raise TargetError("magnet link has no 'xs=urn:btpk:<public key hex>'")
    return Followed(key, salt, name, tuple(peers))


# ---------------------------------------------------------------------- versions


def file_roots(info: Info) -> dict[tuple[str, ...], FileKey]:
    """Every real file of a v2 manifest: path -> (length, pieces root)."""
    if info.meta_version != 2:
        raise MetainfoError("an updatable share needs a v2 manifest: files are compared by merkle root")
    return {f.path: (f.length, f.pieces_root) for f in info.files if not f.pad}


@dataclass(frozen=True, slots=True)
class VersionDiff:
    """How a new version differs from the previous one, file by file."""

    changed: tuple[tuple[str, ...], ...]  #: new files, and files whose root or length changed
    unchanged: tuple[tuple[str, ...], ...]
    removed: tuple[tuple[str, ...], ...]  #: in the previous version, not in this one


def diff_versions(
    old: Mapping[tuple[str, ...], FileKey] | None, new: Mapping[tuple[str, ...], FileKey]
) -> VersionDiff:
    """Compare two versions' :func:`file_roots` (``old`` None: everything is new)."""
    old = old or {}
    changed = tuple(sorted(p for p, key in new.items() if old.get(p) != key))
    unchanged = tuple(sorted(p for p, key in new.items() if old.get(p) == key))
    removed = tuple(sorted(p for p in old if p not in new))
    return VersionDiff(changed, unchanged, removed)


def trusted_pieces(info: Info, unchanged: Iterable[tuple[str, ...]]) -> Bitfield:
    """Pieces of ``info`` that lie wholly in ``unchanged`` files (and pad files): no need to fetch them.

    In a v2 manifest every file starts on a piece boundary, so a file's pieces hold
    only its own bytes and the pad zeros after it.
    """
    keep = set(unchanged)
    geometry = info.geometry
    have = Bitfield(geometry.num_pieces)
    ok_file = [f.pad or f.path in keep for f in info.files]
    for index, f in enumerate(info.files):
        if f.pad or not ok_file[index]:
            continue
        for piece in geometry.pieces_for_file(index):
            if all(ok_file[span.file_index] for span in geometry.piece_spans(piece)):
                have.add(piece)
    return have
