"""The state directory: saved manifests of shared folders, .torrent files, resume files.

Where it is: ``$P2PSHARE_STATE_DIR``, else ``$XDG_STATE_HOME/p2pshare``, else
``~/.local/state/p2pshare``.  Layout::

    torrents/<info hash>.torrent     every manifest `share` made (printed to the user)
    manifests/<key>.json             the manifest cache: which folder, which flags, which files
    resume/<info hash>-<dir>.resume  verified pieces of a download into one folder
    dht.lock                         held by the process whose DHT node uses the saved node id

The manifest cache lets ``share`` skip hashing an unchanged folder.  Its key is the
resolved path, the include flags and the requested piece size; an entry is valid
only while every file still has the same relative path, size and ``mtime_ns`` it had
when it was hashed (the fingerprint is taken *before* hashing, so a file changed
during hashing is hashed again next time).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from p2pshare.config import MetainfoLimits
from p2pshare.core.metainfo import Format, parse_torrent
from p2pshare.core.tracker.tiers import tiers_from
from p2pshare.engine.create import DEFAULT_FORMAT, CreatedTorrent, create_torrent
from p2pshare.errors import MetainfoError
from p2pshare.io.dht_state import default_state_dir
from p2pshare.io.files import Selection, atomic_write, collect_files
from p2pshare.io.hasher import ProgressCallback

__all__ = ["SharedManifest", "StateDir", "default_state_dir", "fingerprint"]

log = logging.getLogger("p2pshare.state")

_MAX_CACHE_ENTRY = 64 * 1024 * 1024  # a fingerprint of ~1M files; bigger is not ours


def fingerprint(selection: Selection) -> list[list[Any]]:
    """``[[relative path, size, mtime_ns], ...]`` of every file in the selection."""
    rows: list[list[Any]] = []
    for f in selection.files:
        st = f.path.stat()
        rows.append(["/".join(f.parts), st.st_size, st.st_mtime_ns])
    return rows


@dataclass(frozen=True)
class SharedManifest:
    """A manifest ready to seed, and whether it came from the cache."""

    created: CreatedTorrent
    torrent_path: Path | None  #: where the .torrent was written (None: the state dir is not writable)
    reused: bool


class StateDir:
    """One state directory; created lazily, and never required (failures only log)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_state_dir()
        self._lock_file: IO[bytes] | None = None

    # ------------------------------------------------------------------ paths

    def torrent_path(self, info_hash_hex: str) -> Path:
        return self.root / "torrents" / f"{info_hash_hex}.torrent"

    def resume_path(self, info_hash_hex: str, download_dir: Path) -> Path:
        where = hashlib.sha1(str(Path(download_dir).resolve()).encode()).hexdigest()[:10]
        return self.root / "resume" / f"{info_hash_hex}-{where}.resume"

    def _cache_path(self, key: str) -> Path:
        return self.root / "manifests" / f"{hashlib.sha1(key.encode()).hexdigest()}.json"

    @staticmethod
    def cache_key(
        path: Path,
        include_hidden: bool,
        include_symlinks: bool,
        piece_length: int | None,
        trackers: Sequence[str] = (),
        format: Format = DEFAULT_FORMAT,
    ) -> str:
        where = str(Path(path).resolve())
        fields: list[Any] = [where, include_hidden, include_symlinks, piece_length or "auto"]
        if trackers:  # (without trackers the key is what it always was: old caches stay valid)
            fields.append(list(trackers))
        if format != "v1":  # v1 keys stay as they were: caches made before --format still hit
            fields.append(format)
        return json.dumps(fields)

    # ------------------------------------------------------------------ manifest cache

    def cached_manifest(
        self, selection: Selection, key: str, limits: MetainfoLimits | None = None
    ) -> CreatedTorrent | None:
        """The cached manifest for this folder and flags, if no file changed since it was made."""
        path = self._cache_path(key)
        try:
            if path.stat().st_size > _MAX_CACHE_ENTRY:
                return None
            entry = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(entry, dict) or entry.get("key") != key:
                return None
            if entry.get("fingerprint") != fingerprint(selection):
                log.info("manifest cache: %s changed since it was hashed", selection.root)
                return None
            hex_hash = str(entry.get("info_hash", ""))
            torrent = self.torrent_path(hex_hash).read_bytes()
            metainfo = parse_torrent(torrent, limits or MetainfoLimits())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, MetainfoError) as exc:
            log.info("manifest cache entry %s unusable: %s", path, exc)
            return None
        if metainfo.info_hash.hex != hex_hash or metainfo.info.name != selection.name:
            return None
        tiers = tiers_from(metainfo.announce, metainfo.announce_list)
        trackers = tuple(url for tier in tiers for url in tier)
        layers = dict(metainfo.piece_layers)
        return CreatedTorrent(selection, metainfo.info, torrent, layers, trackers=trackers)

    def save_manifest(self, created: CreatedTorrent, key: str, prints: list[list[Any]]) -> Path | None:
        """Write the .torrent and the cache entry; return the .torrent path (None if it could not be written).

        A state directory that cannot be written costs only the cache: sharing goes on.
        """
        torrent_path = self.torrent_path(created.info.info_hash.hex)
        try:
            atomic_write(torrent_path, created.torrent)
        except OSError as exc:
            log.warning(
                "cannot write %s: %s; set P2PSHARE_STATE_DIR to a writable folder",
                torrent_path,
                exc.strerror or exc,
            )
            return None
        entry = {"key": key, "info_hash": created.info.info_hash.hex, "fingerprint": prints}
        try:
            atomic_write(self._cache_path(key), json.dumps(entry).encode())
        except OSError as exc:
            log.warning("could not save the manifest cache: %s", exc)
        return torrent_path

    def manifest_for(
        self,
        path: Path,
        *,
        piece_length: int | None = None,
        include_hidden: bool = False,
        include_symlinks: bool = False,
        progress: ProgressCallback | None = None,
        on_total: Any = None,
        trackers: Sequence[str] = (),
        format: Format = DEFAULT_FORMAT,
    ) -> SharedManifest:
        """The manifest of ``path``: from the cache when nothing changed, else hashed now (blocking).

        ``on_total(total_bytes)`` is called before hashing starts (not for a cache hit).
        """
        selection = collect_files(path, include_hidden=include_hidden, include_symlinks=include_symlinks)
        key = self.cache_key(
            path, include_hidden, include_symlinks, piece_length, trackers=trackers, format=format
        )
        cached = self.cached_manifest(selection, key)
        if cached is not None and cached.trackers != tuple(dict.fromkeys(t.strip() for t in trackers)):
            cached = None  # the .torrent was saved since with other trackers: build it again
        if cached is not None:
            return SharedManifest(cached, self.torrent_path(cached.info.info_hash.hex), reused=True)
        prints = fingerprint(selection)
        if on_total is not None:
            on_total(selection.total_length)
        created = create_torrent(
            path,
            piece_length=piece_length,
            include_hidden=include_hidden,
            include_symlinks=include_symlinks,
            progress=progress,
            trackers=trackers,
            format=format,
        )
        return SharedManifest(created, self.save_manifest(created, key, prints), reused=False)

    # ------------------------------------------------------------------ DHT identity

    def claim_dht_state(self) -> Path | None:
        """The state dir for the DHT node id, or None when another process already uses it.

        Two processes with one node id would confuse the DHT, so the second one runs
        with a fresh id (and saves nothing).
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            f = open(self.root / "dht.lock", "ab")  # noqa: SIM115 - held for the process lifetime
        except OSError as exc:
            log.info("no DHT state (state dir unusable: %s)", exc)
            return None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            log.info("another p2pshare process uses the saved DHT node id; using a fresh one")
            return None
        self._lock_file = f
        return self.root

    def release(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
