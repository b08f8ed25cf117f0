"""Streaming benchmark: time to the first byte of ``get --stdout``, and its rate against a plain download.

One p2pshare seeder on 127.0.0.31 serves a generated file; a downloader on 127.0.0.32
fetches it three ways, each into a fresh folder, ``--repeat`` times interleaved:

* plain: rarest first, the rate every other download gets;
* sequential: ``--sequential`` (the read-ahead window only);
* stream: ``--select FILE --stdout`` into a sink that counts bytes, noting when the
  first byte came out and when the last did.

Targets: the first streamed byte comes within 10% of the plain download's time (a
player starts long before the end), and streaming keeps >= 0.6x the plain rate (the
window costs some parallelism).  Figures go to ``benchmarks/results/stream.txt``; exit 1
on a missed target.  Loopback only.

Usage: python benchmarks/stream_bench.py [--size 64MiB] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from gen_payload import ensure_payload, parse_size  # noqa: E402

from p2pshare.config import DEFAULT_CONFIG  # noqa: E402
from p2pshare.core.selection import FileSelection  # noqa: E402
from p2pshare.core.types import PeerAddress  # noqa: E402
from p2pshare.engine import runner  # noqa: E402
from p2pshare.engine.create import CreatedTorrent, create_torrent  # noqa: E402
from p2pshare.engine.streamer import StreamRequest  # noqa: E402

RESULTS = HERE / "results" / "stream.txt"
FIRST_BYTE_SHARE = 0.10
RATE_RATIO = 0.6
SEED_HOST, LEECH_HOST = "127.0.0.31", "127.0.0.32"


def options(host: str) -> runner.SwarmOptions:
    return runner.SwarmOptions(config=DEFAULT_CONFIG, host=host, port=0, bootstrap=None, state=None)


class Sink:
    def __init__(self) -> None:
        self.bytes = 0
        self.first: float | None = None

    def write(self, data: bytes) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.bytes += len(data)


async def one(created: CreatedTorrent, port: int, mode: str, work: Path) -> tuple[float, float | None]:
    """Seconds for one download in ``mode``, and (stream) seconds to the first byte."""
    out = Path(tempfile.mkdtemp(dir=work))
    sink = Sink()
    t0 = time.perf_counter()
    await runner.download(
        created.info.info_hash,
        options(LEECH_HOST),
        out_dir=out,
        info=created.info,
        peers=[PeerAddress(SEED_HOST, port)],
        sequential=mode == "sequential",
        select=FileSelection.parse(["0"]) if mode == "stream" else None,
        stream=StreamRequest(sink.write) if mode == "stream" else None,
        timeout=600,
    )
    elapsed = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    if mode == "stream":
        assert sink.bytes == created.info.total_length, "the stream lost bytes"
        assert sink.first is not None
        return elapsed, sink.first - t0
    return elapsed, None


async def run(size: int, repeat: int) -> int:
    work = ROOT / "benchmarks" / ".work" / "stream"
    work.mkdir(parents=True, exist_ok=True)
    payload = ensure_payload(size, seed=5, out=work / "movie.bin")
    created = create_torrent(payload)
    swarms: list[runner.Swarm] = []
    seeding = asyncio.create_task(runner.seed(created, options(SEED_HOST), on_swarm=swarms.append))
    while not swarms:
        await asyncio.sleep(0.01)
    port = swarms[0].port
    times: dict[str, list[float]] = {"plain": [], "sequential": [], "stream": []}
    firsts: list[float] = []
    try:
        for _ in range(repeat):
            for mode in times:
                elapsed, first = await one(created, port, mode, work)
                times[mode].append(elapsed)
                if first is not None:
                    firsts.append(first)
    finally:
        seeding.cancel()
        try:
            await seeding
        except asyncio.CancelledError:
            pass
    mib = size / 2**20
    plain = statistics.median(times["plain"])
    stream = statistics.median(times["stream"])
    first = statistics.median(firsts)
    lines = [
        f"stream benchmark: {mib:.0f} MiB, pieces of {created.info.piece_length // 1024} KiB, loopback, "
        f"median of {repeat} (python {platform.python_version()}, {platform.machine()})",
    ]
    for mode, ts in times.items():
        med = statistics.median(ts)
        lines.append(
            f"  {mode:10s} {med:6.2f} s  {mib / med:7.1f} MiB/s  (runs: {', '.join(f'{t:.2f}' for t in ts)})"
        )
    ok_first = first <= FIRST_BYTE_SHARE * plain
    ok_rate = plain / stream >= RATE_RATIO
    lines.append(
        f"  first streamed byte after {first * 1000:.0f} ms = {first / plain:.1%} of the plain download "
        f"(target <= {FIRST_BYTE_SHARE:.0%}): {'ok' if ok_first else 'MISSED'}"
    )
    lines.append(
        f"  stream rate {plain / stream:.2f}x the plain rate (target >= {RATE_RATIO}x): "
        f"{'ok' if ok_rate else 'MISSED'}"
    )
    text = "\n".join(lines) + "\n"
    print(text, end="")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return 0 if ok_first and ok_rate else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="64MiB")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    return asyncio.run(run(parse_size(args.size), args.repeat))


if __name__ == "__main__":
    sys.exit(main())
