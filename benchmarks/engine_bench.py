"""The engine's own transfer rate, in process: a seed and a leecher joined by in-memory links.

No sockets, no disk (MemoryStorage), no second process: what is left is the
engine's per-block Python work on both sides (wire, picker, buffers, requests,
uploads, hashing in the piece pool) on one event loop.  The swarm benchmark
measures the real thing against libtorrent; this one isolates the engine, so a
slowdown in the rooms shows here first.  Writes ``benchmarks/results/engine.txt``.

Run: python benchmarks/engine_bench.py [--size MiB] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from p2pshare.config import MiB  # noqa: E402
from tests.engine.memory_swarm import make_payload, memory_swarm, until  # noqa: E402

#: Fail (exit 1) below this rate: far under what the engine does, far over a pathological slowdown.
TARGET_MB_S = 40.0


async def one_run(size: int, piece_length: int, work: Path) -> tuple[float, float]:
    """Seconds of wall time and of CPU time to move ``size`` bytes seed -> leecher."""
    info, data = make_payload(size, piece_length, seed=1)
    async with memory_swarm(work) as swarm:
        _, seed_host = await swarm.add("127.0.0.1", info, data=data)
        leech, _ = await swarm.add("127.0.0.2", info)
        w0, c0 = time.perf_counter(), time.process_time()
        leech.add_peers([seed_host.address], "bench")
        await until(leech.completed.is_set, "the transfer", timeout=300)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        assert bytes(swarm.storages["127.0.0.2"].data) == data
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=64, help="MiB to transfer (default 64)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size * MiB
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            results.append(asyncio.run(one_run(size, 1 * MiB, Path(tmp))))
    best_wall = min(w for w, _ in results)
    best_cpu = min(c for _, c in results)
    rate = size / best_wall / 1e6
    lines = [
        f"engine in process, {args.size} MiB seed -> leecher over in-memory links, 1 MiB pieces",
        f"best of {args.runs}: {rate:.0f} MB/s wall ({best_wall:.2f} s), "
        f"{best_cpu / (size / 16384) * 1e6:.1f} us CPU per 16 KiB block (both sides, all threads)",
        f"target: >= {TARGET_MB_S:.0f} MB/s",
    ]
    print("\n".join(lines))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "engine.txt").write_text("\n".join(lines) + "\n")
    return 0 if rate >= TARGET_MB_S else 1


if __name__ == "__main__":
    sys.exit(main())
