"""What the engine tells the outside: events as they happen, and status snapshots.

Events are frozen, slotted dataclasses named for what happened.  The CLI renders
them (rich, plain lines, or NDJSON through :func:`event_to_dict`); the engine never
prints.  Snapshots are polled a few times a second for live views.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from p2pshare.core.types import Addr
from p2pshare.errors import Violation

__all__ = [
    "DemoStep",
    "DhtReady",
    "DhtSearch",
    "Ready",
    "Completed",
    "EngineEvent",
    "Listening",
    "MetadataReceived",
    "PeerBanned",
    "PeerConnected",
    "PeerDisconnected",
    "PeerStatus",
    "PeersFound",
    "Phase",
    "PhaseChanged",
    "PieceFailed",
    "PieceVerified",
    "TorrentStatus",
    "event_to_dict",
]


class Phase(StrEnum):
    """Where a torrent (or the command running it) is."""

    STARTING = "starting"
    FINDING_PEERS = "finding_peers"  #: the runner looks for peers before the torrent starts
    CHECKING = "checking"  #: hashing what is already on disk
    FETCHING_METADATA = "fetching_metadata"  #: a magnet: the manifest comes from peers (BEP 9)
    DOWNLOADING = "downloading"
    SEEDING = "seeding"


@dataclass(frozen=True, slots=True)
class Listening:
    """The session accepts peers on ``port`` for ``info_hash``."""

    info_hash: str
    port: int


@dataclass(frozen=True, slots=True)
class PhaseChanged:
    """The torrent moved to a new phase."""

    phase: Phase


@dataclass(frozen=True, slots=True)
class PeersFound:
    """New peer addresses were learned (from the DHT, a magnet link or --peer)."""

    count: int
    source: str


@dataclass(frozen=True, slots=True)
class MetadataReceived:
    """The manifest arrived from peers and matched the info hash."""

    name: str
    total_size: int
    num_pieces: int


@dataclass(frozen=True, slots=True)
class PeerConnected:
    address: str
    client: str


@dataclass(frozen=True, slots=True)
class PeerDisconnected:
    """A connection ended; ``kind`` names the rule the peer broke, None when it broke none."""

    address: str
    reason: str
    kind: Violation | None = None


@dataclass(frozen=True, slots=True)
class PeerBanned:
    """A peer broke a rule badly enough to be refused for the rest of the session."""

    address: str
    reason: str
    kind: Violation


@dataclass(frozen=True, slots=True)
class PieceVerified:
    index: int


@dataclass(frozen=True, slots=True)
class PieceFailed:
    """A piece failed its hash check and will be fetched again."""

    index: int
    peers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Completed:
    """Every piece is verified and written."""

    total_size: int


@dataclass(frozen=True, slots=True)
class PeerCompleted:
    """A connected peer now has every piece (learned from its bitfield or its last ``have``)."""

    address: str


EngineEvent = (
    Listening
    | PhaseChanged
    | PeersFound
    | MetadataReceived
    | PeerConnected
    | PeerDisconnected
    | PeerBanned
    | PieceVerified
    | PieceFailed
    | Completed
    | PeerCompleted
)

_NAMES = {
    Listening: "listening",
    PhaseChanged: "phase",
    PeersFound: "peers_found",
    MetadataReceived: "metadata",
    PeerConnected: "peer_connected",
    PeerDisconnected: "peer_disconnected",
    PeerBanned: "peer_banned",
    PieceVerified: "piece_verified",
    PieceFailed: "piece_failed",
    Completed: "completed",
    PeerCompleted: "peer_completed",
}


def event_to_dict(event: EngineEvent) -> dict[str, Any]:
    """``{"event": name, **fields}`` for NDJSON output."""
    d: dict[str, Any] = {"event": _NAMES[type(event)]}
    for f in fields(event):
        value = getattr(event, f.name)
        d[f.name] = list(value) if isinstance(value, tuple) else value
    return d


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One connected peer, as a live view shows it."""

    address: str
    client: str
    down_rate: float
    up_rate: float
    downloaded: int
    uploaded: int
    pieces: int  #: how many pieces the peer has
    choking_us: bool
    choked_by_us: bool
    interested: bool
    snubbed: bool
    outgoing: bool


@dataclass(frozen=True, slots=True)
class TorrentStatus:
    """A snapshot of one torrent."""

    info_hash: str
    name: str | None
    phase: Phase
    total_size: int
    num_pieces: int
    have_pieces: int
    verified_bytes: int
    downloaded: int  #: payload bytes received (including discarded)
    uploaded: int
    down_rate: float
    up_rate: float
    peers: tuple[PeerStatus, ...] = ()
    known_peers: int = 0
    pieces_failed: int = 0
    wasted: int = 0
    file_progress: tuple[tuple[str, int, int], ...] = field(default=())  #: (path, done, length)

    @property
    def progress(self) -> float:
        return self.verified_bytes / self.total_size if self.total_size else 0.0


# ---------------------------------------------------------------------- events the runner adds


@dataclass(frozen=True, slots=True)
class DhtReady:
    """Our DHT node is bound on ``host:port`` (UDP)."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Ready:
    """The torrent is added and the session accepts peers on ``host:port`` (TCP)."""

    info_hash: str
    host: str
    port: int
    dht_port: int | None
    public: Addr | None = None  #: our address as the Internet sees it (a router mapped it)


@dataclass(frozen=True, slots=True)
class DemoStep:
    """One step of the demo: ``kind`` (bootstrap, seeder, announce, downloader, verify) and what happened."""

    kind: str
    message: str
    address: str | None = None


@dataclass(frozen=True, slots=True)
class DhtSearch:
    """How the DHT search for peers goes: what "finding peers" shows."""

    nodes: int  #: DHT nodes in our routing table
    lookups_done: int  #: peer lookups that ended
    lookups_running: int
    peers_found: int  #: peer addresses the DHT gave so far

    @property
    def unreachable(self) -> bool:
        """A lookup ended and no DHT node is known: the DHT could not be reached at all."""
        return self.lookups_done > 0 and self.nodes == 0
