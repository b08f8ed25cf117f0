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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from p2pshare.config import Config
from p2pshare.core.metainfo import Info
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.io.link import Link
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


def file_storage(params: TorrentParams, config: Config) -> StorageFactory:
    """The default storage: the torrent's files under ``params.download_dir``."""

    def open_storage(info: Info) -> Storage:
        paths = list(params.file_paths) if params.file_paths is not None else None
        return FileStorage(
            info, params.download_dir, paths=paths, max_open_files=config.storage.max_open_files
        )

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
