"""Magnet links (BEP 9): ``magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>&x.pe=HOST:PORT``.

``tr=`` may repeat; the trackers keep the link's order (the engine puts each in its own
BEP 12 tier, after a manifest's own, see :func:`p2pshare.core.tracker.tiers_from`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

from p2pshare.core.types import InfoHash, PeerAddress, parse_host_port
from p2pshare.errors import TargetError

__all__ = ["Magnet", "make_magnet", "parse_magnet"]


@dataclass(frozen=True, slots=True)
class Magnet:
    """What a magnet link tells us: the info hash, maybe a name, peers and trackers."""

    info_hash: InfoHash
    name: str | None = None
    peers: tuple[PeerAddress, ...] = ()
    trackers: tuple[str, ...] = ()


def make_magnet(
    info_hash: InfoHash,
    name: str | None = None,
    peers: tuple[PeerAddress, ...] = (),
    trackers: tuple[str, ...] = (),
) -> str:
    """Build a magnet link with the hex btih, a display name, ``tr`` trackers and ``x.pe`` peer hints."""
    parts = [f"xt=urn:btih:{info_hash.hex}"]
    if name:
        parts.append("dn=" + quote(name, safe=""))
    parts.extend("tr=" + quote(url, safe="") for url in trackers)
    parts.extend("x.pe=" + quote(str(p), safe=":[]") for p in peers)
    return "magnet:?" + "&".join(parts)


def parse_magnet(text: str) -> Magnet:
    """Parse a magnet link, or a bare 40-hex / 32-base32 info hash.

    Raises :class:`~p2pshare.errors.TargetError` with a message that says what is wrong.
    """
    text = text.strip()
    if not text.lower().startswith("magnet:"):
        try:
            return Magnet(InfoHash.parse(text))
        except ValueError as exc:
            raise TargetError(str(exc)) from None
    query = urlsplit(text).query
    info_hash: InfoHash | None = None
    name = None
    peers: list[PeerAddress] = []
    trackers: list[str] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        key = key.lower()
        if key == "xt" or key.startswith("xt."):
            if value.lower().startswith("urn:btih:"):
                try:
                    info_hash = InfoHash.parse(value[9:])
                except ValueError as exc:
                    raise TargetError(f"magnet link has a bad btih: {exc}") from None
        elif key == "dn":
            name = value
        elif key == "x.pe":
            try:
                peers.append(parse_host_port(value))
            except ValueError:
                continue  # a bad hint is not worth refusing the link for
        elif (key == "tr" or key.startswith("tr.")) and value.strip() and value.strip() not in trackers:
            trackers.append(value.strip())
    if info_hash is None:
        raise TargetError("magnet link has no 'xt=urn:btih:' info hash (only BitTorrent v1 is supported)")
    return Magnet(info_hash, name, tuple(peers), tuple(trackers))
