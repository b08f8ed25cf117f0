"""What goes to a tracker and what comes back, shared by the HTTP and UDP codecs.

Frozen, slotted value objects: an announce request, its response (peers, interval,
swarm counts), and a scrape response.  Both protocols parse into the same shapes, so
the engine never cares which one a tracker speaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from p2pshare.core.types import InfoHash, PeerAddress

__all__ = ["AnnounceEvent", "AnnounceRequest", "AnnounceResponse", "ScrapeResponse", "ScrapeStats"]


class AnnounceEvent(Enum):
    """BEP 3 ``event``; the value is its BEP 15 number (0 is a regular re-announce)."""

    NONE = 0
    COMPLETED = 1
    STARTED = 2
    STOPPED = 3

    @property
    def http_name(self) -> str | None:
        """The HTTP ``event=`` value, or None for a regular announce (the key is left out)."""
        return None if self is AnnounceEvent.NONE else self.name.lower()


@dataclass(frozen=True, slots=True)
class AnnounceRequest:
    """One announce: who we are, how far along, and what happened."""

    info_hash: InfoHash
    peer_id: bytes  #: our 20-byte peer id
    port: int  #: the TCP port we accept peers on
    uploaded: int = 0
    downloaded: int = 0
    left: int = 0
    event: AnnounceEvent = AnnounceEvent.NONE
    numwant: int | None = None  #: None: let the tracker choose (UDP sends -1)
    key: int = 0  #: 32-bit value that identifies us across IP changes
    tracker_id: bytes | None = None  #: echoed back when a tracker gave one (HTTP only)

    def __post_init__(self) -> None:
        if len(self.peer_id) != 20:
            raise ValueError("a peer id is exactly 20 bytes")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        if min(self.uploaded, self.downloaded, self.left) < 0:
            raise ValueError("uploaded, downloaded and left are never negative")
        if not 0 <= self.key < 2**32:
            raise ValueError("the key is a 32-bit unsigned number")


@dataclass(frozen=True, slots=True)
class AnnounceResponse:
    """A successful announce: the peers, when to come back, and the swarm's size if told."""

    interval: float  #: seconds until the next regular announce (already clamped to config)
    peers: tuple[PeerAddress, ...] = ()  #: IPv4 and IPv6 together, at most ``max_peers``
    min_interval: float | None = None  #: never announce more often than this
    complete: int | None = None  #: seeders
    incomplete: int | None = None  #: leechers
    tracker_id: bytes | None = None
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class ScrapeStats:
    """What a scrape says about one torrent."""

    complete: int = 0  #: seeders
    downloaded: int = 0  #: completed downloads ever
    incomplete: int = 0  #: leechers


@dataclass(frozen=True, slots=True)
class ScrapeResponse:
    """Per-info-hash counts; hashes the tracker does not know are absent."""

    files: dict[InfoHash, ScrapeStats] = field(default_factory=dict)
