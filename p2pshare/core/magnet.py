"""Magnet links (BEP 9, BEP 52): ``magnet:?xt=urn:btih:<hash>&xt=urn:btmh:1220<sha256>&dn=<name>&tr=<url>``.

A link may carry the v1 hash (``btih``), the v2 hash (``btmh``, a multihash:
``12`` = SHA2-256, ``20`` = 32 bytes, then the hash in hex), or both for a hybrid.
:attr:`Magnet.info_hash` is always the 20-byte swarm id: the v1 hash when there is
one, else the v2 hash truncated to 20 bytes (what the DHT and handshake use).

``tr=`` may repeat; the trackers keep the link's order (the engine puts each in its own
BEP 12 tier, after a manifest's own, see :func:`p2pshare.core.tracker.tiers_from`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlsplit

from p2pshare.core.selection import MAX_SELECT_TERMS, parse_index_ranges
from p2pshare.core.types import InfoHash, InfoHashV2, PeerAddress, parse_host_port
from p2pshare.errors import TargetError, UsageError

if TYPE_CHECKING:
    from p2pshare.core.metainfo import Info

__all__ = ["Magnet", "make_magnet", "magnet_for_info", "parse_magnet"]

#: Multihash prefix of a SHA2-256 digest: function code 0x12, length 0x20.
BTMH_PREFIX = "1220"


@dataclass(frozen=True, slots=True)
class Magnet:
    """What a magnet link tells us: the hashes, maybe a name, peers and trackers."""

    info_hash: InfoHash  #: the swarm id: the v1 hash, or the truncated v2 hash
    name: str | None = None
    peers: tuple[PeerAddress, ...] = ()
    trackers: tuple[str, ...] = ()
    info_hash_v2: InfoHashV2 | None = None
    has_v1: bool = True  #: the link carried a btih
    select_only: tuple[tuple[int, int], ...] = ()  #: BEP 53 ``so=``: file index ranges (inclusive)

    @property
    def info_hash_v1(self) -> InfoHash | None:
        return self.info_hash if self.has_v1 else None


def make_magnet(
    info_hash: InfoHash | None,
    name: str | None = None,
    peers: tuple[PeerAddress, ...] = (),
    *,
    info_hash_v2: InfoHashV2 | None = None,
    trackers: tuple[str, ...] = (),
) -> str:
    """Build a magnet link: the hex btih and/or the btmh, a display name, ``tr`` trackers, ``x.pe`` hints."""
    parts = []
    if info_hash is not None:
        parts.append(f"xt=urn:btih:{info_hash.hex}")
    if info_hash_v2 is not None:
        parts.append(f"xt=urn:btmh:{BTMH_PREFIX}{info_hash_v2.hex}")
    if not parts:
        raise ValueError("a magnet link needs a v1 or a v2 info hash")
    if name:
        parts.append("dn=" + quote(name, safe=""))
    parts.extend("tr=" + quote(url, safe="") for url in trackers)
    parts.extend("x.pe=" + quote(str(p), safe=":[]") for p in peers)
    return "magnet:?" + "&".join(parts)


def magnet_for_info(info: Info, peers: tuple[PeerAddress, ...] = (), trackers: tuple[str, ...] = ()) -> str:
    """The magnet link of a manifest: btih for v1, btmh for v2, both for hybrid; ``tr`` trackers."""
    return make_magnet(info.info_hash_v1, info.name, peers, info_hash_v2=info.info_hash_v2, trackers=trackers)


def _parse_btmh(value: str) -> InfoHashV2:
    text = value.strip()
    if not text[:4].lower() == BTMH_PREFIX:
        raise TargetError(
            f"magnet link has a btmh that is not a SHA2-256 multihash (must start with 1220): {text[:16]!r}"
        )
    try:
        return InfoHashV2.from_hex(text[4:])
    except ValueError as exc:
        raise TargetError(f"magnet link has a bad btmh: {exc}") from None


def parse_magnet(text: str) -> Magnet:
    """Parse a magnet link, or a bare 40-hex / 32-base32 (v1) or 64-hex (v2) info hash.

    Raises :class:`~p2pshare.errors.TargetError` with a message that says what is wrong.
    """
    text = text.strip()
    if not text.lower().startswith("magnet:"):
        if len(text) == 64:
            try:
                v2 = InfoHashV2.from_hex(text)
            except ValueError as exc:
                raise TargetError(str(exc)) from None
            return Magnet(v2.truncated, info_hash_v2=v2, has_v1=False)
        try:
            return Magnet(InfoHash.parse(text))
        except ValueError as exc:
            raise TargetError(str(exc)) from None
    query = urlsplit(text).query
    info_hash: InfoHash | None = None
    info_hash_v2: InfoHashV2 | None = None
    name = None
    peers: list[PeerAddress] = []
    trackers: list[str] = []
    select_only: list[tuple[int, int]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        key = key.lower()
        if key == "xt" or key.startswith("xt."):
            lowered = value.lower()
            if lowered.startswith("urn:btih:"):
                try:
                    info_hash = InfoHash.parse(value[9:])
                except ValueError as exc:
                    raise TargetError(f"magnet link has a bad btih: {exc}") from None
            elif lowered.startswith("urn:btmh:"):
                info_hash_v2 = _parse_btmh(value[9:])
        elif key == "dn":
            name = value
        elif key == "x.pe":
            try:
                peers.append(parse_host_port(value))
            except ValueError:
                continue  # a bad hint is not worth refusing the link for
        elif (key == "tr" or key.startswith("tr.")) and value.strip() and value.strip() not in trackers:
            trackers.append(value.strip())
        elif key == "so":
            try:
                select_only.extend(parse_index_ranges(value, max_terms=MAX_SELECT_TERMS))
            except UsageError as exc:
                raise TargetError(f"magnet link has a bad so= (BEP 53): {exc}") from None
    if info_hash is None and info_hash_v2 is None:
        raise TargetError("magnet link has no 'xt=urn:btih:' (v1) or 'xt=urn:btmh:' (v2) info hash")
    if info_hash is None:
        assert info_hash_v2 is not None
        return Magnet(
            info_hash_v2.truncated, name, tuple(peers), tuple(trackers), info_hash_v2,
            has_v1=False, select_only=tuple(select_only),
        )  # fmt: skip
    return Magnet(
        info_hash, name, tuple(peers), tuple(trackers), info_hash_v2, select_only=tuple(select_only)
    )
