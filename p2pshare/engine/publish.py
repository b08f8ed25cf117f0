"""Publishing an updatable share (BEP 46): ``share DIR --publish``.

The folder is shared as a v2 manifest (a merkle root per file) and the current info
hash is signed into a BEP 44 mutable item under the share's ed25519 key.  While it
runs, the folder is watched by polling (no extra dependency; a change is picked up
within ``watch_interval``): once it changed and stayed still for ``settle_time``,
:class:`IncrementalBuilder` re-hashes only the files whose size or mtime moved, so
every other file keeps its root, the new version is seeded in place of the old one,
and the item is put again with ``seq + 1``.  The item is republished every
``republish_interval`` because DHT nodes expire items.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from p2pshare.config import MetainfoLimits
from p2pshare.core.dht.items import public_key_of
from p2pshare.core.metainfo import build_info_v2, choose_piece_length, encode_torrent
from p2pshare.core.types import PeerAddress
from p2pshare.core.updatable import make_btpk_magnet, pointer_value
from p2pshare.engine.create import CREATED_BY, CreatedTorrent
from p2pshare.engine.runner import EventSink, Swarm, SwarmOptions, open_swarm, seed_params
from p2pshare.engine.state import StateDir
from p2pshare.errors import UsageError
from p2pshare.io.dht_keys import load_or_create_private_key, load_private_key
from p2pshare.io.files import atomic_write, collect_files
from p2pshare.io.hasher import hash_files_v2

__all__ = ["IncrementalBuilder", "Published", "publish", "share_key"]

log = logging.getLogger("p2pshare.publish")

#: rel path -> (size, mtime_ns, merkle piece hashes)
_Hashed = dict[str, tuple[int, int, list[bytes]]]


@dataclass(frozen=True, slots=True)
class Published:
    """A version of the share was signed and put into the DHT."""

    seq: int
    info_hash: str
    info_hash_v2: str
    public_key: str
    magnet: str
    changed_files: tuple[str, ...]
    stored: int  #: DHT nodes that took the item

    def to_dict(self) -> dict[str, Any]:
        return {"event": "published", **asdict(self), "changed_files": list(self.changed_files)}


class IncrementalBuilder:
    """Builds v2 manifests of one folder, hashing only files that changed since the last build."""

    def __init__(
        self,
        path: Path,
        *,
        piece_length: int | None = None,
        include_hidden: bool = False,
        workers: int | None = None,
        limits: MetainfoLimits | None = None,
    ) -> None:
        self.path = Path(path)
        self.piece_length = piece_length
        self.include_hidden = include_hidden
        self.workers = workers
        self.limits = limits or MetainfoLimits()
        self._hashed: _Hashed = {}
        self.files_hashed = 0  #: files hashed by the last build (tests and benchmarks look)

    def fingerprint(self) -> list[tuple[str, int, int]]:
        """(rel path, size, mtime_ns) of every file: what a change of the folder changes."""
        selection = collect_files(self.path, include_hidden=self.include_hidden)
        out = []
        for f in selection.files:
            st = f.path.stat()
            out.append(("/".join(f.parts), st.st_size, st.st_mtime_ns))
        return out

    def build(self) -> tuple[CreatedTorrent, tuple[str, ...]]:
        """The manifest of the folder now, and the files hashed for it (blocking)."""
        selection = collect_files(self.path, include_hidden=self.include_hidden)
        if self.piece_length is None:  # chosen once: piece layers stay comparable across versions
            self.piece_length = choose_piece_length(selection.total_length, self.limits)
        stats = {"/".join(f.parts): f.path.stat() for f in selection.files}
        todo = [
            f
            for f in selection.files
            if (rel := "/".join(f.parts)) not in self._hashed
            or self._hashed[rel][:2] != (stats[rel].st_size, stats[rel].st_mtime_ns)
        ]
        hashes = hash_files_v2(
            [f.path for f in todo],
            [stats["/".join(f.parts)].st_size for f in todo],
            self.piece_length,
            workers=self.workers,
        )
        todo_names = {"/".join(f.parts) for f in todo}
        fresh: _Hashed = {rel: v for rel, v in self._hashed.items() if rel in stats and rel not in todo_names}
        for f, piece_hashes in zip(todo, hashes.piece_hashes, strict=True):
            rel = "/".join(f.parts)
            fresh[rel] = (stats[rel].st_size, stats[rel].st_mtime_ns, piece_hashes)
        self._hashed = fresh
        self.files_hashed = len(todo)
        listed: list[tuple[tuple[str, ...], int]]
        if selection.single_file:
            listed = [((selection.name,), fresh["/".join(selection.files[0].parts)][0])]
        else:
            listed = [(f.parts, fresh["/".join(f.parts)][0]) for f in selection.files]
        info, layers = build_info_v2(
            selection.name,
            listed,
            self.piece_length,
            [fresh["/".join(f.parts)][2] for f in selection.files],
            single_file=selection.single_file,
        )
        torrent = encode_torrent(
            info, created_by=CREATED_BY, creation_date=int(time.time()), piece_layers=layers
        )
        return CreatedTorrent(selection, info, torrent, layers), tuple("/".join(f.parts) for f in todo)


def share_key(state: StateDir, path: Path, key_file: Path | None) -> bytes:
    """The share's private key: ``key_file`` when given, else the one kept for this folder (made once)."""
    if key_file is not None:
        if not key_file.exists():
            raise UsageError(f"no such key file: {key_file}")
        return load_private_key(key_file)
    where = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:16]
    return load_or_create_private_key(state.root / "keys" / f"{where}.key")


def _seq_path(state: StateDir, public_key: bytes) -> Path:
    return state.root / "keys" / f"{public_key.hex()}.seq"


def _load_seq(state: StateDir, public_key: bytes) -> int:
    try:
        return int(json.loads(_seq_path(state, public_key).read_text())["seq"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


@dataclass
class _Publisher:
    swarm: Swarm
    private_key: bytes
    public_key: bytes
    hints: tuple[PeerAddress, ...]
    state: StateDir | None
    on_event: EventSink
    on_published: Callable[[Published], None]
    seq: int = 0
    last_put: float = field(default=0.0)

    async def put(self, changed: Sequence[str]) -> None:
        dht = self.swarm.session.dht
        assert dht is not None
        info = self.swarm.torrent.info
        assert info is not None and info.info_hash_v2 is not None
        cfg = self.swarm.options.config.updatable
        result = await dht.put_mutable(
            self.private_key, pointer_value(info), self.seq, timeout=cfg.put_timeout
        )
        self.last_put = time.monotonic()
        if self.state is not None:
            try:
                atomic_write(_seq_path(self.state, self.public_key), json.dumps({"seq": self.seq}).encode())
            except OSError as exc:
                log.warning("could not save the share's seq: %s", exc)
        log.info("published seq %d (%s) to %d DHT nodes", self.seq, info.info_hash, result.stored)
        self.on_published(
            Published(
                self.seq,
                info.info_hash.hex,
                info.info_hash_v2.hex,
                self.public_key.hex(),
                make_btpk_magnet(self.public_key, info.name, self.hints),
                tuple(changed),
                result.stored,
            )
        )


async def publish(
    builder: IncrementalBuilder,
    options: SwarmOptions,
    *,
    private_key: bytes,
    state: StateDir | None = None,
    hints: tuple[PeerAddress, ...] = (),
    on_event: EventSink,
    on_published: Callable[[Published], None],
    on_swarm: Callable[[Swarm], None] | None = None,
    peers: Sequence[PeerAddress] = (),
) -> None:
    """Seed the folder and keep its item current until cancelled (see the module docstring)."""
    if options.bootstrap is None:
        raise UsageError("--publish needs the DHT: drop --no-dht")
    cfg = options.config.updatable
    created, changed = await asyncio.to_thread(builder.build)
    public_key = public_key_of(private_key)
    async with open_swarm(seed_params(created), options, on_event=on_event) as swarm:
        if on_swarm is not None:
            on_swarm(swarm)
        if peers:
            swarm.add_peers(peers, "cli")
        swarm.announce()
        dht = swarm.session.dht
        assert dht is not None
        pub = _Publisher(swarm, private_key, public_key, hints, state, on_event, on_published)
        seen = await dht.get_item((public_key, b""), timeout=cfg.lookup_timeout)
        pub.seq = max(_load_seq(state, public_key) if state is not None else 0, seen.seq if seen else 0) + 1
        await pub.put(changed)
        prints = await asyncio.to_thread(builder.fingerprint)
        while True:
            await asyncio.sleep(cfg.watch_interval)
            now_prints = await asyncio.to_thread(builder.fingerprint)
            if now_prints != prints:
                await asyncio.sleep(cfg.settle_time)
                if await asyncio.to_thread(builder.fingerprint) != now_prints:
                    continue  # still being written: look again next round
                prints = now_prints
                created, changed = await asyncio.to_thread(builder.build)
                if created.info.info_hash != swarm.torrent.info_hash:
                    await _swap(swarm, created, on_event)
                    pub.seq += 1
                    await pub.put(changed)
            elif time.monotonic() - pub.last_put >= cfg.republish_interval:
                await pub.put(())


async def _swap(swarm: Swarm, created: CreatedTorrent, on_event: EventSink) -> None:
    """Seed the new version in place of the old one (the old one's files changed under it)."""
    old = swarm.torrent
    swarm.torrent = await swarm.session.add_torrent(seed_params(created), on_event=on_event)
    await swarm.session.remove_torrent(old)
    swarm.announce()
