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
import json
import random
import re
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
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
    port: int | None = None
    scanned: int = 0  #: output lines already looked at
    stopping_since: float | None = None
    peak: float = 0.0

    def scan(self, now: float) -> None:
        """Look at the new output lines only: the listening port, and done."""
        lines = self.proc.out
        while self.scanned < len(lines):
            line = lines[self.scanned]
            self.scanned += 1
            if self.port is None and '"event":"listening"' in line:
                self.port = json.loads(line).get("port")
            elif self.done_at is None and '"event":"done"' in line:
                self.done_at = now


def _parse_size(text: str) -> int:
    units = {"K": 1024, "M": MiB, "G": 1024 * MiB}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def _reason_key(event: dict[str, object]) -> str:
    kind = event.get("kind")
    if isinstance(kind, str) and kind:
        return kind
    return re.sub(r"\d+", "N", str(event.get("reason", "?")))[:70]


class Sampler:
    """Samples the RSS of the origin and of every live leecher every SAMPLE_EVERY seconds, in a thread."""

    def __init__(self, started: float, origin_pid: int, live: list[Leecher]) -> None:
        self.started = started
        self.origin_pid = origin_pid
        self.live = live
        self.origin: list[tuple[float, float]] = []
        self.minute_peaks: dict[int, float] = collections.defaultdict(float)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            t = time.monotonic() - self.started
            minute = int(t // 60)
            origin = rss_mib(self.origin_pid)
            self.origin.append((t, origin))
            self.minute_peaks[minute] = max(self.minute_peaks[minute], origin)
            for leecher in list(self.live):
                value = rss_mib(leecher.proc.pid)
                leecher.peak = max(leecher.peak, value)
                self.minute_peaks[minute] = max(self.minute_peaks[minute], value)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _begin_stop(leecher: Leecher, rng: random.Random, now: float) -> None:
    """SIGKILL one in four, SIGINT the others; reaped later without blocking the loop."""
    leecher.stopping_since = now
    if rng.random() < 0.25:
        leecher.proc.signal(signal.SIGKILL)
    else:
        leecher.proc.signal(signal.SIGINT)


def _reap(stopping: list[Leecher], now: float, force: bool = False) -> None:
    for leecher in list(stopping):
        ended = leecher.proc.p.poll() is not None
        if ended or force or now - (leecher.stopping_since or now) > 10:
            leecher.proc.kill()  # SIGKILL if still running, then close its pipes
            stopping.remove(leecher)


def run(minutes: float, n_peers: int, size: int, out: Path) -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    rng = random.Random(7)
    started = time.monotonic()
    end = started + minutes * 60
    live: list[Leecher] = []
    stopping: list[Leecher] = []
    gone: list[Leecher] = []
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
            seeding = [p for p in live if p.done_at is not None and p.port]
            for other in rng.sample(seeding, min(3, len(seeding))):
                peers.append(f"{other.host}:{other.port}")
            args = ["get", str(shared.torrent), "-o", str(WORK / f"out{serial}"), "--no-dht"]
            args += ["--host", host, "--seed", "--json", "--timeout", "120"]
            for p in peers:
                args += ["--peer", p]
            proc = start(procs, args, WORK / f"state{serial}")
            now = time.monotonic()
            return Leecher(proc, host, now, now + rng.uniform(20, 60))

        sampler = Sampler(started, shared.proc.pid, live)
        for _ in range(n_peers):
            live.append(new_leecher())
        while time.monotonic() < end:
            time.sleep(0.5)
            now = time.monotonic()
            for leecher in list(live):
                leecher.scan(now)
                if now >= leecher.stop_at or leecher.proc.p.poll() is not None:
                    _begin_stop(leecher, rng, now)
                    live.remove(leecher)
                    stopping.append(leecher)
                    gone.append(leecher)
                    live.append(new_leecher())
            _reap(stopping, now)
            if not flood.is_alive() and now < end - 5:
                flood_rounds += 1
                flood = request_flood(shared, FLOOD_HOST, 1_000_000, stop, flood_result)
        sampler.stop()
        stop.set()
        now = time.monotonic()
        for leecher in live:
            leecher.scan(now)
            _begin_stop(leecher, rng, now)
            stopping.append(leecher)
            gone.append(leecher)
        deadline = time.monotonic() + 15
        while stopping and time.monotonic() < deadline:
            time.sleep(0.2)
            _reap(stopping, time.monotonic())
        _reap(stopping, time.monotonic(), force=True)
        lori.join(timeout=10)
        flood.join(timeout=10)
        liar.close()
        bans: collections.Counter[str] = collections.Counter()
        honest_drops: collections.Counter[str] = collections.Counter()
        attacker_drops: collections.Counter[str] = collections.Counter()
        banned_hosts: collections.Counter[str] = collections.Counter()
        examples: dict[str, str] = {}  #: one reason text per kind of honest drop that broke a rule
        attackers = (LIAR_HOST, FLOOD_HOST, SLOWLORIS_HOST)
        for proc in procs:
            for e in proc.events():
                host = str(e.get("address", "")).rsplit(":", 1)[0]
                if e.get("event") == "peer_banned":
                    bans[_reason_key(e)] += 1
                    banned_hosts[host] += 1
                elif e.get("event") == "peer_disconnected":
                    (attacker_drops if host in attackers else honest_drops)[_reason_key(e)] += 1
                    if host not in attackers and e.get("kind"):
                        examples.setdefault(str(e["kind"]), str(e.get("reason", ""))[:100])
        origin_end = rss_mib(shared.proc.pid)
    elapsed = time.monotonic() - started
    finished = [g for g in gone if g.done_at is not None]
    times = sorted(g.done_at - g.started for g in finished if g.done_at is not None)
    honest_banned = {h: n for h, n in banned_hosts.items() if h not in attackers}
    peaks = sampler.minute_peaks
    lines = [
        f"soak: {minutes:.1f} min of churn ({elapsed / 60:.1f} min with start and stop), {n_peers} leechers "
        f"at a time ({len(gone)} in all), payload {size // MiB} MiB in 256 KiB pieces, loopback",
        "attackers: liar 127.0.0.9 (smart-ban adversary), slowloris 127.0.0.10 (100 connections), "
        f"flooder 127.0.0.11 ({flood_rounds + 1} rounds of up to 1,000,000 unread requests)",
        "",
        f"downloads: {len(finished)}/{len(gone)} completed; time to complete "
        + (f"median {times[len(times) // 2]:.1f} s, max {times[-1]:.1f} s" if times else "n/a"),
        f"leechers stopped before done: {len(gone) - len(finished)} "
        "(each lives 20-60 s, then SIGINT, or SIGKILL for one in four)",
        "",
        "peak RSS per minute over every p2pshare process (MiB): "
        + ", ".join(f"m{m}={v:.0f}" for m, v in sorted(peaks.items())),
        "origin seeder RSS (MiB), every 30 s: "
        + ", ".join(f"{t:.0f}s={v:.0f}" for t, v in sampler.origin[:: max(1, int(30 / SAMPLE_EVERY))]),
        f"origin seeder RSS at the end: {origin_end:.0f} MiB",
        f"leecher peak RSS: max {max((g.peak for g in gone), default=0):.0f} MiB",
        "",
        "bans by reason: " + (", ".join(f"{k}: {v}" for k, v in bans.most_common()) or "none"),
        "banned hosts: " + (", ".join(f"{k}: {v}" for k, v in banned_hosts.most_common()) or "none"),
        "honest hosts banned: " + (", ".join(honest_banned) or "none"),
        "attackers dropped, by reason: " + ", ".join(f"{k}: {v}" for k, v in attacker_drops.most_common(8)),
        "honest peers dropped, by reason: " + ", ".join(f"{k}: {v}" for k, v in honest_drops.most_common(8)),
        *(f"  e.g. {kind}: {text}" for kind, text in sorted(examples.items())),
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    shutil.rmtree(WORK, ignore_errors=True)
    values = list(peaks.values())
    flat = not values or max(values) <= min(values) + 40
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
