"""Soak: a churning swarm of p2pshare processes under three attackers, memory sampled throughout.

Usage: python benchmarks/soak_bench.py [--minutes 10] [--peers 20] [--size 8M]
                                       [--out benchmarks/results/soak.txt]

One origin seeder (``p2pshare share``, 127.0.0.2) and ``--peers`` p2pshare leechers
(``get --seed``, each on its own 127.0.1.x) that live 20-60 s and are then stopped
(SIGINT, or SIGKILL for one in four) and replaced by a fresh one: peers join and leave
for ``--minutes``.  Each new leecher is given the origin, the liar and up to three live
peers.  Against them:

* a liar (127.0.0.9) that every leecher dials: it serves good blocks but corrupts one
  block in each piece that an honest peer shares with it (the smart-ban adversary);
* a slowloris group (127.0.0.10): 100 connections trickling handshakes into the origin;
* a request flooder (127.0.0.11): 1,000,000 requests into the origin without reading a
  byte, reconnecting each time it is dropped.

Reported: the RSS of every p2pshare process sampled every 5 s (the origin's series, and
per minute the peak over all processes: it must be flat), every honest download's
completion (done or not, and how long), and the bans and drops by reason.  Everything
binds 127.0.0.x and every process is killed by its PID at the end.
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work" / "soak"
sys.path.insert(0, str(ROOT))

from tests.e2e.procs import Proc, processes, start  # noqa: E402
from tests.hostile.harness import (  # noqa: E402
    LIAR_HOST,
    MiB,
    RawServer,
    Shared,
    rss_mib,
    start_seeder,
)
from tests.hostile.peers import mixing_liar, request_flood, slowloris  # noqa: E402

SLOWLORIS_HOST = "127.0.0.10"
FLOOD_HOST = "127.0.0.11"
SAMPLE_EVERY = 5.0


@dataclass
class Leecher:
    proc: Proc
    host: str
    started: float
    stop_at: float
    done_at: float | None = None
    peak: float = 0.0
    samples: list[tuple[float, float]] = field(default_factory=list)


def _parse_size(text: str) -> int:
    units = {"K": 1024, "M": MiB, "G": 1024 * MiB}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def _reason_key(event: dict[str, object]) -> str:
    kind = event.get("kind")
    if isinstance(kind, str) and kind:
        return kind
    return re.sub(r"\d+", "N", str(event.get("reason", "?")))[:70]


def _stop(leecher: Leecher, rng: random.Random) -> None:
    if rng.random() < 0.25:
        leecher.proc.kill()
    else:
        leecher.proc.signal(signal.SIGINT)
        try:
            leecher.proc.wait(10)
        except AssertionError:
            leecher.proc.kill()
    leecher.proc.kill()  # closes its pipes; a no-op on an ended process


def run(minutes: float, n_peers: int, size: int, out: Path) -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    rng = random.Random(7)
    started = time.monotonic()
    end = started + minutes * 60
    live: list[Leecher] = []
    gone: list[Leecher] = []
    origin_series: list[tuple[float, float]] = []
    minute_peaks: dict[int, float] = collections.defaultdict(float)
    stop = threading.Event()
    flood_rounds = 0
    serial = 0
    with processes() as procs:
        shared: Shared = start_seeder(procs, WORK / "origin", size=size, piece_size="256KiB")
        liar = RawServer(LIAR_HOST, mixing_liar(shared)).start()
        lori = slowloris((shared.host, shared.port), SLOWLORIS_HOST, 100, stop, shared.info.info_hash.value)
        flood_result: dict[str, object] = {}
        flood = request_flood(shared, FLOOD_HOST, 1_000_000, stop, flood_result)

        def new_leecher() -> Leecher:
            nonlocal serial
            serial += 1
            host = f"127.0.1.{1 + serial % 250}"
            peers = [shared.address, liar.address]
            seeding = [p for p in live if p.done_at is not None]
            for other in rng.sample(seeding, min(3, len(seeding))):
                port = next((e["port"] for e in other.proc.events() if e.get("event") == "listening"), None)
                if port:
                    peers.append(f"{other.host}:{port}")
            args = ["get", str(shared.torrent), "-o", str(WORK / f"out{serial}"), "--no-dht"]
            args += ["--host", host, "--seed", "--json", "--timeout", "120"]
            for p in peers:
                args += ["--peer", p]
            proc = start(procs, args, WORK / f"state{serial}")
            now = time.monotonic()
            return Leecher(proc, host, now, now + rng.uniform(20, 60))

        for _ in range(n_peers):
            live.append(new_leecher())
            time.sleep(0.2)
        next_sample = time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.5)
            now = time.monotonic()
            for leecher in live:
                if leecher.done_at is None and any(e.get("event") == "done" for e in leecher.proc.events()):
                    leecher.done_at = now
            for leecher in list(live):
                if now >= leecher.stop_at or leecher.proc.p.poll() is not None:
                    _stop(leecher, rng)
                    live.remove(leecher)
                    gone.append(leecher)
                    live.append(new_leecher())
            if not flood.is_alive() and now < end - 5:
                flood_rounds += 1
                flood = request_flood(shared, FLOOD_HOST, 1_000_000, stop, flood_result)
            if now >= next_sample:
                next_sample = now + SAMPLE_EVERY
                minute = int((now - started) // 60)
                origin = rss_mib(shared.proc.pid)
                origin_series.append((now - started, origin))
                minute_peaks[minute] = max(minute_peaks[minute], origin)
                for leecher in live:
                    value = rss_mib(leecher.proc.pid)
                    leecher.samples.append((now - started, value))
                    leecher.peak = max(leecher.peak, value)
                    minute_peaks[minute] = max(minute_peaks[minute], value)
        stop.set()
        for leecher in live:
            _stop(leecher, rng)
            gone.append(leecher)
        lori.join(timeout=10)
        flood.join(timeout=10)
        liar.close()
        bans: collections.Counter[str] = collections.Counter()
        drops: collections.Counter[str] = collections.Counter()
        banned_hosts: collections.Counter[str] = collections.Counter()
        for proc in procs:
            for e in proc.events():
                if e.get("event") == "peer_banned":
                    bans[_reason_key(e)] += 1
                    banned_hosts[str(e["address"]).rsplit(":", 1)[0]] += 1
                elif e.get("event") == "peer_disconnected":
                    drops[_reason_key(e)] += 1
        origin_end = rss_mib(shared.proc.pid)
    elapsed = time.monotonic() - started
    finished = [g for g in gone if g.done_at is not None]
    times = sorted(g.done_at - g.started for g in finished if g.done_at is not None)
    honest_banned = {h: n for h, n in banned_hosts.items() if h not in (LIAR_HOST, FLOOD_HOST)}
    lines = [
        f"soak: {elapsed / 60:.1f} min, {n_peers} leechers at a time ({len(gone)} in all), "
        f"payload {size // MiB} MiB in 256 KiB pieces, loopback",
        "attackers: liar 127.0.0.9 (smart-ban adversary), slowloris 127.0.0.10 (100 connections), "
        f"flooder 127.0.0.11 ({flood_rounds + 1} rounds of up to 1,000,000 unread requests)",
        "",
        f"downloads: {len(finished)}/{len(gone)} completed; time to complete "
        + (f"median {times[len(times) // 2]:.1f} s, max {times[-1]:.1f} s" if times else "n/a"),
        f"leechers stopped before done: {len(gone) - len(finished)} "
        "(each lives 20-60 s; one in four is SIGKILLed)",
        "",
        "peak RSS per minute over every p2pshare process (MiB): "
        + ", ".join(f"m{m}={v:.0f}" for m, v in sorted(minute_peaks.items())),
        "origin seeder RSS (MiB), every 30 s: "
        + ", ".join(f"{t:.0f}s={v:.0f}" for t, v in origin_series[:: max(1, int(30 / SAMPLE_EVERY))]),
        f"origin seeder RSS at the end: {origin_end:.0f} MiB",
        f"leecher peak RSS: max {max((g.peak for g in gone), default=0):.0f} MiB",
        "",
        "bans by reason: " + (", ".join(f"{k}: {v}" for k, v in bans.most_common()) or "none"),
        "banned hosts: " + (", ".join(f"{k}: {v}" for k, v in banned_hosts.most_common()) or "none"),
        "honest hosts banned: " + (", ".join(honest_banned) or "none"),
        "drops by reason: " + ", ".join(f"{k}: {v}" for k, v in drops.most_common(12)),
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    shutil.rmtree(WORK, ignore_errors=True)
    peaks = list(minute_peaks.values())
    flat = not peaks or max(peaks) <= min(peaks) + 40
    return 0 if flat and finished and not honest_banned else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--peers", type=int, default=20)
    parser.add_argument("--size", default="8M")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "soak.txt")
    args = parser.parse_args()
    return run(args.minutes, args.peers, _parse_size(args.size), args.out)


if __name__ == "__main__":
    sys.exit(main())
