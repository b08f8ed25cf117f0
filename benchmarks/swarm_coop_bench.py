"""Cooperation benchmark (issue 9): does a swarm of downloaders feed itself, or lean on the seed?

Usage: python benchmarks/swarm_coop_bench.py [--size 64M] [--cap 8000000] [--downloaders 8] [--stagger 2]
                                             [--skip-libtorrent] [--out benchmarks/results/swarm_coop.txt]

Scenario: one ``p2pshare dht`` node; one ``p2pshare share`` of ``--size`` random bytes
capped with ``--max-up`` at ``--cap`` bytes/s; ``--downloaders`` downloaders started
``--stagger`` seconds apart on 127.0.0.10.., each finding peers through the DHT only
and leaving as soon as it is done.

Run twice, side by side: with ``p2pshare get HASH --bootstrap ...`` processes, then
with libtorrent sessions (magnet by hash, DHT bootstrapped from the same node and
announced every 5 s, each session closed when its torrent completes).  Reported: the
copies the seed sent, each downloader's upload and completion time, and the slowest
completion against one copy's time at the cap.  Goal (p2pshare): seed <= 1.3 copies and slowest <= 1.5x one
copy's time.  Everything binds 127.0.0.x; payloads live in a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "swarm_coop.txt"
sys.path.insert(0, str(ROOT))

from tests.e2e.swarm_procs import CoopResult, Downloader, capped_seed, run_coop, seed_uploaded  # noqa: E402

MiB = 1024 * 1024
GOAL_COPIES = 1.3
GOAL_SLOWEST = 1.5


def _parse_size(text: str) -> int:
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    return int(float(t[:-1] if t[-1:] in "KMG" else t) * mult)


def run_libtorrent(
    tmp: Path, *, downloaders: int, stagger: float, size: int, cap: int, timeout: float
) -> CoopResult:
    """The same scenario with libtorrent downloaders (in this process, one session each)."""
    import libtorrent as lt

    with capped_seed(tmp, size, cap) as (boot, info_hash, sharer, _procs):
        live: list[dict[str, Any]] = []
        result = CoopResult(size=size, cap=cap, seed_uploaded=0)
        t0 = time.monotonic()
        deadline = t0 + downloaders * stagger + timeout
        started = 0
        while (started < downloaders or live) and time.monotonic() < deadline:
            now = time.monotonic()
            if started < downloaders and now >= t0 + started * stagger:
                host = f"127.0.0.{10 + started}"
                ses = lt.session(
                    {
                        "listen_interfaces": f"{host}:0",
                        "outgoing_interfaces": host,
                        "enable_dht": True,
                        "dht_bootstrap_nodes": boot,
                        "dht_restrict_routing_ips": False,
                        "dht_restrict_search_ips": False,
                        "dht_prefer_verified_node_ids": False,
                        "dht_enforce_node_id": False,
                        "dht_ignore_dark_internet": False,
                        "dht_announce_interval": 5,  # like our frequent early lookups (default 15 min)
                        "enable_lsd": False,
                        "enable_upnp": False,
                        "enable_natpmp": False,
                        "enable_incoming_utp": False,
                        "enable_outgoing_utp": False,
                        "allow_multiple_connections_per_ip": True,
                        "user_agent": "libtorrent-bench",
                    }
                )
                params = lt.parse_magnet_uri(f"magnet:?xt=urn:btih:{info_hash}")
                params.save_path = str(tmp / f"lt{started}")
                params.flags &= ~lt.torrent_flags.auto_managed
                params.flags &= ~lt.torrent_flags.paused
                handle = ses.add_torrent(params)
                live.append({"host": host, "ses": ses, "h": handle, "t": now, "began": now - t0})
                started += 1
            for d in list(live):
                st = d["h"].status()
                if st.is_seeding:
                    result.downloaders.append(
                        Downloader(
                            host=d["host"],
                            started=d["began"],
                            elapsed=time.monotonic() - d["t"],
                            downloaded=int(st.total_payload_download),
                            uploaded=int(st.total_payload_upload),
                            exit_code=0,
                        )
                    )
                    d["ses"].remove_torrent(d["h"])
                    live.remove(d)
                    del d["ses"]  # leave: the session closes
            time.sleep(0.05)
        for d in live:  # did not finish in time
            st = d["h"].status()
            result.downloaders.append(
                Downloader(
                    d["host"],
                    d["began"],
                    float("inf"),
                    int(st.total_payload_download),
                    int(st.total_payload_upload),
                    1,
                )
            )
        live.clear()
        result.seed_uploaded = seed_uploaded(sharer)
        return result


def _describe(name: str, r: CoopResult) -> list[str]:
    one = r.one_copy_at_cap
    lines = [
        f"{name}: seed sent {r.seed_copies:.2f} copies (goal <= {GOAL_COPIES}); slowest {r.slowest:.1f} s = "
        f"{r.slowest / one:.2f}x one copy at the cap ({one:.1f} s; goal <= {GOAL_SLOWEST}x)",
    ]
    for d in sorted(r.downloaders, key=lambda d: d.started):
        lines.append(
            f"    {d.host:12s} start +{d.started:4.1f}s  done in {d.elapsed:5.1f}s  "
            f"uploaded {d.uploaded / MiB:6.1f} MiB ({d.uploaded / r.size:.2f} copies)  exit {d.exit_code}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="64M")
    ap.add_argument("--cap", type=int, default=8_000_000, help="the seed's --max-up, bytes/s")
    ap.add_argument("--downloaders", type=int, default=8)
    ap.add_argument("--stagger", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--skip-libtorrent", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    size = _parse_size(args.size)
    kw = {
        "downloaders": args.downloaders,
        "stagger": args.stagger,
        "size": size,
        "cap": args.cap,
        "timeout": args.timeout,
    }
    lines = [
        f"swarm_coop: {size / MiB:.0f} MiB, seed capped at {args.cap / 1e6:.1f} MB/s, "
        f"{args.downloaders} downloaders {args.stagger:g} s apart, DHT only, each leaves when done"
    ]
    with tempfile.TemporaryDirectory(prefix="coop-") as d:
        ours = run_coop(Path(d) / "p2pshare", **kw)
    lines += _describe("p2pshare downloaders", ours)
    if not args.skip_libtorrent:
        try:
            import libtorrent  # noqa: F401
        except ImportError:
            lines.append("libtorrent downloaders: skipped (libtorrent is not installed)")
        else:
            with tempfile.TemporaryDirectory(prefix="coop-lt-") as d:
                theirs = run_libtorrent(Path(d) / "lt", **{**kw, "timeout": min(args.timeout, 60.0)})
            lines += _describe("libtorrent downloaders", theirs)
    ok = ours.seed_copies <= GOAL_COPIES and ours.slowest <= GOAL_SLOWEST * ours.one_copy_at_cap
    ok = ok and all(x.exit_code == 0 for x in ours.downloaders)
    lines.append("goal met" if ok else "GOAL MISSED")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
