"""A cooperating swarm of ``p2pshare`` processes on loopback, found through the DHT only.

One ``p2pshare dht`` node; one ``p2pshare share`` capped with ``--max-up``; downloaders
(``p2pshare get HASH --bootstrap ...``, defaults otherwise, so each leaves when done)
started ``stagger`` seconds apart on distinct 127.0.0.x hosts.  Used by the swarm
test (small) and by ``benchmarks/swarm_coop_bench.py`` (the issue's scenario).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.procs import Proc, listening, processes, start

__all__ = ["CoopResult", "Downloader", "capped_seed", "make_payload_dir", "run_coop", "seed_uploaded"]


@dataclass
class Downloader:
    host: str
    started: float  #: seconds after the first downloader started
    elapsed: float  #: its own start to its done event
    downloaded: int
    uploaded: int
    exit_code: int


@dataclass
class CoopResult:
    size: int
    cap: int
    seed_uploaded: int
    downloaders: list[Downloader] = field(default_factory=list)

    @property
    def seed_copies(self) -> float:
        return self.seed_uploaded / self.size

    @property
    def slowest(self) -> float:
        return max(d.elapsed for d in self.downloaders)

    @property
    def one_copy_at_cap(self) -> float:
        return self.size / self.cap


def make_payload_dir(root: Path, size: int, seed: int = 9) -> Path:
    """A folder with one file of ``size`` deterministic random bytes."""
    folder = root / "share"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    with (folder / "payload.bin").open("wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n
    return folder


def _last(proc: Proc, name: str) -> dict[str, Any] | None:
    found = [e for e in proc.events() if e.get("event") == name]
    return found[-1] if found else None


@contextlib.contextmanager
def capped_seed(tmp: Path, size: int, cap: int) -> Iterator[tuple[str, str, Proc, list[Proc]]]:
    """A DHT node and a ``share`` capped at ``cap``: yields (bootstrap, info hash, sharer, procs)."""
    folder = make_payload_dir(tmp, size)
    with processes() as procs:
        dht = start(procs, ["dht", "--host", "127.0.0.1", "--port", "0", "--json"], tmp / "s-dht")
        boot = f"127.0.0.1:{listening(dht)['port']}"
        args = ["share", str(folder), "--host", "127.0.0.2", "--bootstrap", boot]
        sharer = start(procs, [*args, "--max-up", str(cap), "--json"], tmp / "s-share")
        info_hash = listening(sharer, timeout=60)["info_hash"]
        yield boot, info_hash, sharer, procs


def seed_uploaded(sharer: Proc) -> int:
    """The sharer's upload total after one more progress event."""
    time.sleep(1.5)
    progress = _last(sharer, "progress") or {}
    return int(progress.get("uploaded", 0))


def run_coop(
    tmp: Path, *, downloaders: int, stagger: float, size: int, cap: int, timeout: float = 120.0
) -> CoopResult:
    """Run the scenario with p2pshare downloaders; every process is killed by its PID on the way out."""
    with capped_seed(tmp, size, cap) as (boot, info_hash, sharer, procs):
        getters: list[tuple[str, float, Proc]] = []
        t0 = time.monotonic()
        for i in range(downloaders):
            due = t0 + i * stagger
            time.sleep(max(0.0, due - time.monotonic()))
            host = f"127.0.0.{10 + i}"
            args = ["get", info_hash, "-o", str(tmp / f"out{i}"), "--host", host, "--bootstrap", boot]
            args += ["--json", "--timeout", str(timeout)]
            getters.append((host, time.monotonic() - t0, start(procs, args, tmp / f"s-get{i}")))
        result = CoopResult(size=size, cap=cap, seed_uploaded=0)
        for host, began, proc in getters:
            code = proc.wait(timeout + 30)
            done = _last(proc, "done") or {}
            result.downloaders.append(
                Downloader(
                    host=host,
                    started=began,
                    elapsed=float(done.get("elapsed", float("inf"))),
                    downloaded=int(done.get("downloaded", 0)),
                    uploaded=int(done.get("uploaded", 0)),
                    exit_code=code,
                )
            )
        result.seed_uploaded = seed_uploaded(sharer)
        return result
