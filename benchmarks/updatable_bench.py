"""Updatable shares (BEP 46): how much a follower fetches, and how soon it sees a new version.

Usage: ``python benchmarks/updatable_bench.py [--files 100] [--total 1GiB] [--changed 10MiB]``

On loopback (127.0.0.80-82): a DHT node, a publisher (``share --publish``'s engine,
default timings of :class:`~p2pshare.config.UpdatableConfig`) of ``--files`` files of
``--total`` bytes together, and a follower (``get <btpk> --follow``).  Once the
follower holds version 1, one file of ``--changed`` bytes is rewritten with new
bytes.  Measured: payload bytes the follower fetched for version 2 against the
changed bytes, the time from the write to the follower seeing version 2 (its
``version`` event) and to holding it (``synced``), and the publisher's re-hash.

Targets (issue 15): fetched <= 1.1 x changed bytes; version 2 visible <= 10 s.
Exits 1 when one is missed.  Files live in ``benchmarks/.work/`` and are removed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2pshare.config import DEFAULT_CONFIG, DhtConfig
from p2pshare.core.dht.items import public_key_of
from p2pshare.core.types import PeerAddress
from p2pshare.core.updatable import Followed
from p2pshare.engine.create import parse_size
from p2pshare.engine.dht_node import DhtService
from p2pshare.engine.follow import Synced, VersionSeen, follow
from p2pshare.engine.publish import IncrementalBuilder, Published, publish
from p2pshare.engine.runner import Swarm, SwarmOptions
from p2pshare.engine.state import StateDir
from p2pshare.io.dht_keys import generate_private_key

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "updatable.txt"
WORK = HERE / ".work" / "updatable"
MiB = 1024 * 1024
BOUND = 600.0  #: seconds: every wait below is bounded by this


def _make_files(root: Path, files: int, total: int, changed: int) -> None:
    """``files`` files summing to ``total`` bytes; ``changed.bin`` holds exactly ``changed`` bytes."""
    rng = random.Random(46)
    rest = total - changed
    cuts = sorted(rng.randrange(1, rest) for _ in range(files - 2))
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, rest], strict=True)]
    block = rng.randbytes(MiB)
    for i, size in enumerate([changed, *sizes]):
        path = root / ("changed.bin" if i == 0 else f"dir{i % 7}/file{i:03d}.bin")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            f.write(i.to_bytes(4, "big"))  # every file differs
            left = size - 4
            while left > 0:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n


async def _next(queue: asyncio.Queue[object], kind: type) -> tuple[object, float]:
    async with asyncio.timeout(BOUND):
        while True:
            item = await queue.get()
            if isinstance(item, kind):
                return item, time.monotonic()


async def run(files: int, total: int, changed: int) -> list[str]:
    config = replace(DEFAULT_CONFIG, dht=DhtConfig(bootstrap=()))  # loopback only: no public routers
    root = WORK / "pub" / "share"
    t0 = time.monotonic()
    _make_files(root, files, total, changed)
    lines = [f"payload: {files} files, {total / MiB:.0f} MiB; changed file {changed / MiB:.1f} MiB"]
    lines.append(f"  written in {time.monotonic() - t0:.1f} s")
    boot = await DhtService.start(host="127.0.0.80", bootstrap=[], state_dir=None, config=config.dht)
    events: asyncio.Queue[object] = asyncio.Queue()
    seeds: list[Swarm] = []
    key = generate_private_key()
    builder = IncrementalBuilder(root)
    pub_opts = SwarmOptions(config, host="127.0.0.81", bootstrap=[boot.address], state=StateDir(WORK / "ps"))
    t0 = time.monotonic()
    publisher = asyncio.create_task(
        publish(
            builder,
            pub_opts,
            private_key=key,
            state=pub_opts.state,
            on_event=lambda e: None,
            on_published=events.put_nowait,
            on_swarm=seeds.append,
        )
    )
    follower: asyncio.Task[object] | None = None
    try:
        first, t_pub = await _next(events, Published)
        assert isinstance(first, Published)
        lines.append(
            f"version 1: hashed {builder.files_hashed} files in {t_pub - t0:.1f} s "
            f"(piece {builder.piece_length // 1024} KiB), put to {first.stored} DHT node(s)"
        )
        fol_opts = SwarmOptions(
            config, host="127.0.0.82", bootstrap=[boot.address], state=StateDir(WORK / "fs")
        )
        followed = Followed(public_key_of(key), peers=(PeerAddress("127.0.0.81", seeds[0].port),))
        t0 = time.monotonic()
        follower = asyncio.create_task(
            follow(
                followed,
                fol_opts,
                out_dir=WORK / "follower",
                keep_following=True,
                on_event=lambda e: None,
                on_version=events.put_nowait,
                on_synced=events.put_nowait,
            )
        )
        s1, t1 = await _next(events, Synced)
        assert isinstance(s1, Synced)
        lines.append(
            f"version 1 synced: {s1.downloaded / MiB:.0f} MiB in {t1 - t0:.1f} s "
            f"({s1.downloaded / MiB / (t1 - t0):.0f} MiB/s)"
        )
        data = random.Random(2).randbytes(changed)
        t_write = time.monotonic()
        (root / "changed.bin").write_bytes(data)
        p2, t_p2 = await _next(events, Published)
        v2, t_v2 = await _next(events, VersionSeen)
        s2, t_s2 = await _next(events, Synced)
        assert isinstance(p2, Published) and isinstance(v2, VersionSeen) and isinstance(s2, Synced)
        ratio = s2.downloaded / changed
        visible = t_v2 - t_write
        lines += [
            f"version 2: publisher re-hashed {builder.files_hashed} file(s), "
            f"published {t_p2 - t_write:.2f} s after the write",
            f"  follower saw it after {visible:.2f} s, synced after {t_s2 - t_write:.2f} s",
            f"  changed files {list(v2.changed_files)}; "
            f"fetched {s2.downloaded} bytes = {ratio:.3f} x changed",
            f"targets: fetched <= 1.1 x changed ({'ok' if ratio <= 1.1 else 'MISSED'}), "
            f"visible <= 10 s ({'ok' if visible <= 10 else 'MISSED'})",
        ]
        ok = ratio <= 1.1 and visible <= 10 and v2.changed_files == ("changed.bin",)
        lines.append("result: " + ("ok" if ok else "MISSED"))
        return lines
    finally:
        for task in (publisher, follower):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (publisher, follower) if t is not None), return_exceptions=True)
        await boot.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--total", default="1GiB")
    parser.add_argument("--changed", default="10MiB")
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    try:
        lines = asyncio.run(run(args.files, parse_size(args.total), parse_size(args.changed)))
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(f"# updatable_bench.py ({os.cpu_count()} cores)\n" + text)
    return 0 if lines[-1] == "result: ok" else 1


if __name__ == "__main__":
    sys.exit(main())
