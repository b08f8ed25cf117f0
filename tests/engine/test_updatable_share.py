"""BEP 46 end to end on loopback: a publisher changes its folder, a follower gets each version,
fetching only the files whose merkle roots changed."""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import replace
from pathlib import Path

import pytest

from p2pshare.config import DEFAULT_CONFIG, Config, DhtConfig
from p2pshare.core.dht.items import public_key_of
from p2pshare.core.types import PeerAddress
from p2pshare.core.updatable import Followed
from p2pshare.engine.dht_node import DhtService
from p2pshare.engine.follow import Synced, VersionSeen, follow
from p2pshare.engine.publish import IncrementalBuilder, Published, publish
from p2pshare.engine.runner import Swarm, SwarmOptions
from p2pshare.engine.state import StateDir
from p2pshare.io.dht_keys import generate_private_key

pytestmark = pytest.mark.timeout(90)

KiB = 1024


def _config() -> Config:
    c = DEFAULT_CONFIG
    return replace(
        c,
        dht=DhtConfig(bootstrap=()),
        swarm=replace(c.swarm, status_interval=0.1),
        updatable=replace(
            c.updatable, watch_interval=0.1, settle_time=0.1, follow_interval=0.2, lookup_timeout=2
        ),
    )


def _write(path: Path, data: bytes, mtime_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


async def _next(queue: asyncio.Queue[object], kind: type, what: str) -> object:
    async with asyncio.timeout(30):
        while True:
            item = await queue.get()
            if isinstance(item, kind):
                return item
    raise AssertionError(what)


def test_incremental_builder_hashes_only_changed_files(tmp_path: Path) -> None:
    """A rebuild after one file changed hashes that file alone, and the others keep their roots."""
    root = tmp_path / "share"
    rng = random.Random(1)
    for i in range(5):
        _write(root / f"f{i}.bin", rng.randbytes(40 * KiB + i), 10**18 + i)
    builder = IncrementalBuilder(root, piece_length=16 * KiB)
    first, hashed = builder.build()
    assert len(hashed) == 5 and builder.files_hashed == 5
    _write(root / "f2.bin", rng.randbytes(50 * KiB), 2 * 10**18)
    second, hashed = builder.build()
    assert hashed == ("f2.bin",)
    roots1 = {f.path: f.pieces_root for f in first.info.files if not f.pad}
    roots2 = {f.path: f.pieces_root for f in second.info.files if not f.pad}
    assert [p for p in roots1 if roots1[p] != roots2[p]] == [("f2.bin",)]
    assert second.info.info_hash != first.info.info_hash
    assert builder.build()[1] == ()


async def test_follower_sees_three_versions_fetching_only_changes(tmp_path: Path) -> None:
    """A follower syncs three versions in a row; each time it downloads only the changed files'
    bytes and, with --delete, removes the file that vanished upstream."""
    config = _config()
    boot = await DhtService.start(host="127.0.0.70", bootstrap=[], state_dir=None, config=config.dht)
    root = tmp_path / "pub" / "share"
    rng = random.Random(7)
    sizes = {"a.bin": 300 * KiB, "b.bin": 200 * KiB + 5, "c.txt": 3 * KiB, "d/e.bin": 100 * KiB}
    for i, (name, size) in enumerate(sizes.items()):
        _write(root / name, rng.randbytes(size), 10**18 + i)
    key = generate_private_key()
    events: asyncio.Queue[object] = asyncio.Queue()
    seed_swarm: list[Swarm] = []

    pub_opts = SwarmOptions(
        config, host="127.0.0.71", bootstrap=[boot.address], state=StateDir(tmp_path / "ps")
    )
    builder = IncrementalBuilder(root, piece_length=16 * KiB)
    publisher = asyncio.create_task(
        publish(
            builder,
            pub_opts,
            private_key=key,
            state=pub_opts.state,
            on_event=lambda e: None,
            on_published=events.put_nowait,
            on_swarm=seed_swarm.append,
        )
    )
    follower: asyncio.Task[Synced | None] | None = None
    out = tmp_path / "follower"
    try:
        first = await _next(events, Published, "the first version to be published")
        assert isinstance(first, Published) and first.seq == 1 and first.stored >= 1
        fol_opts = SwarmOptions(
            config, host="127.0.0.72", bootstrap=[boot.address], state=StateDir(tmp_path / "fs")
        )
        followed = Followed(public_key_of(key), peers=(PeerAddress("127.0.0.71", seed_swarm[0].port),))
        follower = asyncio.create_task(
            follow(
                followed,
                fol_opts,
                out_dir=out,
                keep_following=True,
                delete=True,
                on_event=lambda e: None,
                on_version=events.put_nowait,
                on_synced=events.put_nowait,
            )
        )
        v1 = await _next(events, VersionSeen, "version 1 seen")
        assert isinstance(v1, VersionSeen) and v1.seq == 1 and len(v1.changed_files) == 4
        s1 = await _next(events, Synced, "version 1 synced")
        assert isinstance(s1, Synced) and s1.downloaded >= sum(sizes.values())
        for name in sizes:
            assert (out / "share" / name).read_bytes() == (root / name).read_bytes()

        new_b = rng.randbytes(150 * KiB + 1)
        _write(root / "b.bin", new_b, 3 * 10**18)
        p2 = await _next(events, Published, "version 2 published")
        assert isinstance(p2, Published) and p2.seq == 2 and p2.changed_files == ("b.bin",)
        v2 = await _next(events, VersionSeen, "version 2 seen")
        assert isinstance(v2, VersionSeen) and v2.changed_files == ("b.bin",) and v2.removed_files == ()
        s2 = await _next(events, Synced, "version 2 synced")
        assert isinstance(s2, Synced) and len(new_b) <= s2.downloaded <= 1.1 * len(new_b) + 16 * KiB
        assert (out / "share" / "b.bin").read_bytes() == new_b

        (root / "c.txt").unlink()
        new_f = rng.randbytes(64 * KiB)
        _write(root / "f.bin", new_f, 4 * 10**18)
        p3 = await _next(events, Published, "version 3 published")
        assert isinstance(p3, Published) and p3.seq == 3
        v3 = await _next(events, VersionSeen, "version 3 seen")
        assert (
            isinstance(v3, VersionSeen) and v3.changed_files == ("f.bin",) and v3.removed_files == ("c.txt",)
        )
        s3 = await _next(events, Synced, "version 3 synced")
        assert isinstance(s3, Synced) and len(new_f) <= s3.downloaded <= 1.1 * len(new_f) + 16 * KiB
        assert s3.deleted_files == ("c.txt",) and not (out / "share" / "c.txt").exists()
        assert (out / "share" / "f.bin").read_bytes() == new_f
        assert (out / "share" / "a.bin").read_bytes() == (root / "a.bin").read_bytes()
    finally:
        for task in (publisher, follower):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (publisher, follower) if t is not None), return_exceptions=True)
        await boot.close()


async def test_publisher_republishes_the_same_seq(tmp_path: Path) -> None:
    """With nothing changed, the item is put again after the republish interval, with the same seq."""
    config = _config()
    config = replace(config, updatable=replace(config.updatable, republish_interval=0.3))
    boot = await DhtService.start(host="127.0.0.73", bootstrap=[], state_dir=None, config=config.dht)
    root = tmp_path / "share"
    _write(root / "a.bin", random.Random(3).randbytes(40 * KiB), 10**18)
    events: asyncio.Queue[object] = asyncio.Queue()
    state = StateDir(tmp_path / "ps")
    opts = SwarmOptions(config, host="127.0.0.74", bootstrap=[boot.address], state=state)
    key = generate_private_key()
    task = asyncio.create_task(
        publish(
            IncrementalBuilder(root),
            opts,
            private_key=key,
            state=state,
            on_event=lambda e: None,
            on_published=events.put_nowait,
        )
    )
    try:
        first = await _next(events, Published, "the first put")
        again = await _next(events, Published, "the republish")
        assert isinstance(first, Published) and isinstance(again, Published)
        assert (first.seq, again.seq) == (1, 1) and again.changed_files == () and again.stored >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # A restarted publisher goes on from the saved seq.
    while not events.empty():  # republishes queued before the first publisher stopped
        events.get_nowait()
    task = asyncio.create_task(
        publish(
            IncrementalBuilder(root),
            opts,
            private_key=key,
            state=state,
            on_event=lambda e: None,
            on_published=events.put_nowait,
        )
    )
    try:
        restarted = await _next(events, Published, "the put after a restart")
        assert isinstance(restarted, Published) and restarted.seq == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await boot.close()
