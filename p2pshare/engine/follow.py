"""Following an updatable share (BEP 46): ``get 'magnet:?xs=urn:btpk:<key>' [--follow] [--delete]``.

The follower looks the publisher's mutable item up in the DHT, downloads the version
it points at, and with ``follow`` keeps looking every ``follow_interval`` seconds.
For each new ``seq`` it fetches the new manifest by its v2 hash and compares file
roots with the version it holds (:func:`~p2pshare.core.updatable.diff_versions`):
pieces of files whose root did not change, and whose local copy is untouched since
the last sync (same size and mtime as recorded then), count as present without
being fetched or re-hashed; only changed files are downloaded.  Files gone upstream
are deleted only with ``delete``.  The record of the last synced version lives in
the state folder (``follow/``), so a restarted follower goes on where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from p2pshare.core.bitfield import Bitfield
from p2pshare.core.metainfo import Info
from p2pshare.core.types import PeerAddress
from p2pshare.core.updatable import Followed, diff_versions, file_roots, parse_pointer, trusted_pieces
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.runner import EventSink, Swarm, SwarmOptions, check_writable
from p2pshare.engine.session import Session
from p2pshare.engine.state import StateDir
from p2pshare.engine.torrent import Torrent
from p2pshare.errors import MetainfoError, NoPeersError, RemoteProtocolError, UsageError
from p2pshare.io.files import atomic_write
from p2pshare.io.storage import safe_join

__all__ = ["Synced", "VersionSeen", "follow"]

log = logging.getLogger("p2pshare.follow")

#: path ("a/b.txt") -> [length, pieces root hex or "", size on disk, mtime_ns on disk]
Record = dict[str, list[Any]]


@dataclass(frozen=True, slots=True)
class VersionSeen:
    """A new version of the followed share: what changed against the one we hold."""

    seq: int
    info_hash: str
    changed_files: tuple[str, ...]
    removed_files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {
            "event": "version",
            **d,
            "changed_files": list(d["changed_files"]),
            "removed_files": list(d["removed_files"]),
        }


@dataclass(frozen=True, slots=True)
class Synced:
    """The local folder holds version ``seq``, every piece verified."""

    seq: int
    info_hash: str
    path: str
    downloaded: int  #: payload bytes fetched for this version
    deleted_files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"event": "synced", **asdict(self), "deleted_files": list(self.deleted_files)}


def _rel(path: tuple[str, ...]) -> str:
    return "/".join(path)


def _local(out_dir: Path, info: Info, path: tuple[str, ...]) -> Path:
    return safe_join(out_dir, [info.name] if info.single_file else [info.name, *path])


class _Follower:
    def __init__(
        self,
        followed: Followed,
        session: Session,
        options: SwarmOptions,
        out_dir: Path,
        state: StateDir | None,
    ) -> None:
        self.followed = followed
        self.session = session
        self.options = options
        self.out_dir = out_dir
        key = hashlib.sha1(followed.public_key + followed.salt + str(out_dir).encode()).hexdigest()[:20]
        self.record_path = state.root / "follow" / f"{key}.json" if state is not None else None
        self.state = state
        self.seq = -1
        self.info_hash = ""
        self.files: Record = {}
        self.torrent: Torrent | None = None
        self._load()

    def _load(self) -> None:
        if self.record_path is None:
            return
        try:
            data = json.loads(self.record_path.read_text())
            self.seq, self.info_hash, self.files = (
                int(data["seq"]),
                str(data["info_hash"]),
                dict(data["files"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return

    def _save(self) -> None:
        if self.record_path is None:
            return
        data = {"seq": self.seq, "info_hash": self.info_hash, "files": self.files}
        try:
            atomic_write(self.record_path, json.dumps(data).encode())
        except OSError as exc:
            log.warning("could not save the follow record: %s", exc)

    def known_pieces(self, info: Info) -> Bitfield:
        """Pieces of unchanged files whose local copies are as we left them."""
        keep = []
        for path, (length, root) in file_roots(info).items():
            rec = self.files.get(_rel(path))
            if rec is None or rec[0] != length or rec[1] != (root.hex() if root else ""):
                continue
            try:
                st = _local(self.out_dir, info, path).stat()
            except OSError:
                continue
            if (st.st_size, st.st_mtime_ns) == (rec[2], rec[3]):
                keep.append(path)
        return trusted_pieces(info, keep)

    def old_roots(self) -> dict[tuple[str, ...], tuple[int, bytes | None]]:
        return {
            tuple(p.split("/")): (r[0], bytes.fromhex(r[1]) if r[1] else None) for p, r in self.files.items()
        }


async def follow(
    followed: Followed,
    options: SwarmOptions,
    *,
    out_dir: Path,
    keep_following: bool = False,
    delete: bool = False,
    peers: Sequence[PeerAddress] = (),
    timeout: float | None = None,
    on_event: EventSink,
    on_version: Callable[[VersionSeen], None],
    on_synced: Callable[[Synced], None],
    on_swarm: Callable[[Swarm], None] | None = None,
) -> Synced | None:
    """Download the share's latest version; with ``keep_following`` go on until cancelled."""
    if options.bootstrap is None:
        raise UsageError("following a public key needs the DHT: drop --no-dht")
    out_dir = check_writable(out_dir)
    cfg = options.config.updatable
    deadline = time.monotonic() + timeout if timeout is not None else None
    async with _open_session(options) as session:
        f = _Follower(followed, session, options, out_dir, options.state)
        assert session.dht is not None
        last: Synced | None = None
        while True:
            item = await session.dht.get_item(
                (followed.public_key, followed.salt), timeout=cfg.lookup_timeout
            )
            if item is not None and item.seq > f.seq:
                try:
                    pointer = parse_pointer(item.value)
                except RemoteProtocolError as exc:
                    log.warning("the share's item seq %d is not usable: %s", item.seq, exc)
                else:
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    last = await _sync(
                        f, item.seq, pointer, peers, delete, left, on_event, on_version, on_synced, on_swarm
                    )
            if last is not None and not keep_following:
                return last
            if deadline is not None and time.monotonic() >= deadline:
                raise NoPeersError(
                    "the share's item was not found in the DHT in time; check the key and --bootstrap"
                )
            await asyncio.sleep(cfg.follow_interval)


async def _sync(
    f: _Follower,
    seq: int,
    pointer: Any,
    peers: Sequence[PeerAddress],
    delete: bool,
    timeout: float | None,
    on_event: EventSink,
    on_version: Callable[[VersionSeen], None],
    on_synced: Callable[[Synced], None],
    on_swarm: Callable[[Swarm], None] | None,
) -> Synced | None:
    session = f.session
    cfg = f.options.config.updatable
    if f.torrent is not None and f.torrent.info_hash == pointer.info_hash:
        f.seq = seq  # republished with a new seq, same manifest
        return None
    prev_info = f.torrent.info if f.torrent is not None else None
    if f.torrent is not None:  # stop seeding the old version: its changed files are about to be rewritten
        await session.remove_torrent(f.torrent)
        f.torrent = None
    resume = f.state.resume_path(pointer.info_hash.hex, f.out_dir) if f.state is not None else None
    params = TorrentParams(
        pointer.info_hash,
        download_dir=f.out_dir,
        resume_path=resume,
        info_hash_v2=pointer.info_hash_v2,
        known_pieces=f.known_pieces,
    )
    torrent = await session.add_torrent(params, on_event=on_event)
    if on_swarm is not None:
        on_swarm(Swarm(session, torrent, f.options))
    torrent.add_peers([*f.followed.peers, *peers], "magnet")
    finder = asyncio.create_task(session.find_peers_forever(torrent), name="follow-find-peers")
    try:
        try:
            async with asyncio.timeout(cfg.metadata_timeout if timeout is None else timeout):
                await torrent.metadata_ready.wait()
        except TimeoutError:
            log.warning("version seq %d: no manifest in time; trying again later", seq)
            await session.remove_torrent(torrent)
            return None
        info = torrent.info
        assert info is not None
        try:
            roots = file_roots(info)
        except MetainfoError as exc:
            log.warning("version seq %d is not a v2 manifest: %s", seq, exc)
            await session.remove_torrent(torrent)
            return None
        diff = diff_versions(f.old_roots() if f.files else None, roots)
        on_version(
            VersionSeen(
                seq, info.info_hash.hex, tuple(map(_rel, diff.changed)), tuple(map(_rel, diff.removed))
            )
        )
        async with asyncio.timeout(timeout):
            await torrent.completed.wait()
    finally:
        finder.cancel()
    deleted = []
    if delete and prev_info is not None:
        for path in diff.removed:
            with contextlib.suppress(OSError):
                _local(f.out_dir, prev_info, path).unlink()
                deleted.append(_rel(path))
    f.torrent = torrent
    f.seq, f.info_hash = seq, info.info_hash.hex
    f.files = {}
    for path, (length, root) in roots.items():
        st = _local(f.out_dir, info, path).stat()
        f.files[_rel(path)] = [length, root.hex() if root else "", st.st_size, st.st_mtime_ns]
    f._save()
    synced = Synced(seq, info.info_hash.hex, str(f.out_dir / info.name), torrent.downloaded, tuple(deleted))
    on_synced(synced)
    return synced


@contextlib.asynccontextmanager
async def _open_session(options: SwarmOptions) -> AsyncIterator[Session]:
    """A session with a DHT node, for as long as the share is followed."""
    session = Session(options.config, listen_host=options.host, listen_port=options.port, state_dir=None)
    try:
        await session.start()
        assert options.bootstrap is not None
        await session.start_dht(bootstrap=options.bootstrap, host=options.host, port=options.dht_port or 0)
        yield session
    finally:
        await asyncio.shield(session.close())
