"""What a torrent starts with, and what the session that runs it provides.

:class:`TorrentParams` is one value object for everything a torrent is added with
(libtorrent's ``add_torrent_params``), instead of keyword arguments threaded from
the runner through the session into the torrent.  :class:`TorrentHost` is the
small surface a :class:`~p2pshare.engine.torrent.Torrent` needs from its session:
identity, configuration, ports, the DHT, and a way to reach a peer.  How a peer
is reached (TCP today; uTP or an encrypted stream later) is the host's business:
the torrent only ever receives a :class:`~p2pshare.io.link.Link`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from p2pshare.config import Config
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.metainfo import Info
from p2pshare.core.selection import FileSelection
from p2pshare.core.types import InfoHash, InfoHashV2, PeerAddress
from p2pshare.engine.file_choice import choose
from p2pshare.io.link import Link
from p2pshare.io.parts_storage import PartsStorage
from p2pshare.io.storage import FileStorage, Storage

__all__ = ["StorageFactory", "TorrentHost", "TorrentParams", "file_storage"]

#: Opens the storage for a manifest (called once the manifest is known).
StorageFactory = Callable[[Info], Storage]


@dataclass(frozen=True, slots=True)
class TorrentParams:
    """Everything one torrent is added with."""

    info_hash: InfoHash
    info: Info | None = None  #: None: fetch the manifest from peers (BEP 9)
    download_dir: Path = Path(".")
    file_paths: Sequence[Path] | None = None  #: where each file lives (seeding a folder in place)
    assume_complete: bool = False  #: trust the files without hashing them (we just hashed them)
    resume_path: Path | None = None  #: where the resume state is kept (None: nowhere)
    trackers: tuple[tuple[str, ...], ...] = ()  #: tracker tiers (BEP 12), manifest's then magnet's
    select: FileSelection | None = None  #: files to download (None: all); the rest are not created
    sequential: bool = False  #: pieces in file order (a read-ahead window first), for streaming
    info_hash_v2: InfoHashV2 | None = None  #: a btmh magnet: the manifest is checked by SHA-256
    piece_layers: Mapping[bytes, bytes] | None = None  #: BEP 52 layers of a v2 .torrent (else fetched)
    #: pieces already known good once the manifest is known (a follower's unchanged files)
    known_pieces: Callable[[Info], Bitfield] | None = None
    overwrite: bool = False  #: may overwrite existing files that are not ours (``--overwrite``)


def file_storage(params: TorrentParams, config: Config) -> StorageFactory:
    """The default storage: the torrent's files under ``params.download_dir``."""

    def open_storage(info: Info) -> Storage:
        paths = list(params.file_paths) if params.file_paths is not None else None
        max_open = config.storage.max_open_files
        chosen = choose(info, params.select).selected
        if chosen is None:
            return FileStorage(info, params.download_dir, paths=paths, max_open_files=max_open)
        parts = params.download_dir / f".{info.info_hash.hex}{config.stream.parts_suffix}"
        return PartsStorage(info, params.download_dir, chosen, parts, paths=paths, max_open_files=max_open)

    return open_storage


class TorrentHost(Protocol):
    """What a session hands each of its torrents."""

    @property
    def peer_id(self) -> bytes: ...

    @property
    def config(self) -> Config: ...

    def tcp_port(self) -> int:
        """The port peers can reach us on (0 while not listening)."""
        ...

    def dht_port(self) -> int | None:
        """Our DHT node's UDP port, or None without a DHT node."""
        ...

    def add_dht_node(self, address: PeerAddress) -> None:
        """A peer named its DHT node (BEP 5 ``port``): the DHT may ping it."""
        ...

    def pex_flags(self, address: PeerAddress, flags: int) -> None:
        """BEP 11 hook: PEX named ``address`` with ``added.f`` ``flags`` (0x01: prefers encryption)."""
        ...

    async def connect(self, address: PeerAddress, info_hash: bytes) -> Link:
        """Open a link to ``address`` for ``info_hash`` (the MSE SKEY); raises OSError or TimeoutError."""
        ...

    def note_utp(self, address: PeerAddress) -> None:
        """A peer says ``address`` speaks uTP (the PEX flag): dial it over uTP first."""
        ...

    def link_failed(self, address: PeerAddress, link: Link) -> None:
        """An outgoing ``link`` to ``address`` closed before the handshake (the transport did not work)."""
        ...

    async def connect_utp(self, address: PeerAddress) -> Link:
        """Open a uTP link to ``address`` at once (BEP 55 hole punch); OSError or TimeoutError."""
        ...
