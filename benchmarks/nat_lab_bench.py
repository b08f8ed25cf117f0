"""Time to first byte in the NAT lab, per issue 11 scenario, with p2pshare's own mapping and LSD.

Runs tests/lab's ``reach`` scenario (variant ``both``: (a) get by hash through the DHT,
(b) get through LSD with no DHT, (c) libtorrent from share's x.pe address, (d) doctor on
h1 and h2, (e) rules after exit) and ``reach-get`` with only UPnP and only NAT-PMP on r1,
each ``--repeat`` times in its own ``unshare -m -n``.  Seconds are from starting the
downloader (Python start-up included) to its first connected peer, its first byte (the
manifest's arrival for a get by hash; libtorrent's first payload) and ``done``.  Doctor: seconds to
its report.  Every downloader starts at once on 2 shared CPUs in the ``reach`` case.

Targets (medians, first byte): 10 s for a get through the DHT or LSD (a DHT search that
misses waits ``engine.dht_search_pause`` before the next), 5 s for libtorrent given x.pe.
Results go to benchmarks/results/nat_lab.txt.  Skips (exit 0) where namespaces cannot be made.

Usage: python benchmarks/nat_lab_bench.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = [  # (label, scenario, variant, key in the result, target seconds to the first byte)
    ("(a) get by hash, DHT, r1 both", "reach", "both", "h2", 10.0),
    ("(b) get via LSD, no DHT", "reach", "both", "h1b", 10.0),
    ("(c) libtorrent via x.pe", "reach", "both", "lt", 5.0),
    ("(d) doctor on h1", "reach", "both", "doctor-h1", None),
    ("(d) doctor on h2", "reach", "both", "doctor-h2", None),
    ("(a) get by hash, UPnP only", "reach-get", "upnp", "get", 10.0),
    ("(a) get by hash, NAT-PMP only", "reach-get", "natpmp", "get", 10.0),
]


def run(scenario: str, variant: str) -> dict[str, Any]:
    argv = ["unshare", "-m", "-n", sys.executable, "-m", "tests.lab.run", scenario, "--variant", variant]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=200, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{scenario}/{variant} printed nothing: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if "error" in result:
        raise RuntimeError(f"{scenario}/{variant}: {result['error']}")
    return result


def marks_of(result: dict[str, Any], key: str) -> dict[str, float]:
    facts = result[key]
    if key == "lt":  # the agent measures libtorrent itself
        return {k: float(v) for k, v in facts["final"]["marks"].items()}
    return {k: float(v) for k, v in facts["marks"].items()}


def med(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f}" if values else f"{'-':>8s}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True, check=False).returncode != 0:
        print("nat_lab_bench: cannot make namespaces here; skipped")
        return 0
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _, scenario, variant, _, _ in CASES:
        if (scenario, variant) not in runs:
            runs[(scenario, variant)] = [run(scenario, variant) for _ in range(args.repeat)]
    lines = [
        "p2pshare in the NAT lab (tests/lab), issue 11 scenarios: seconds from starting the downloader",
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, "
        f"Python {platform.python_version()}, miniupnpd on r1; medians of {args.repeat} lab builds",
        f"{'case':32s} {'peer':>8s} {'1st byte':>8s} {'done':>8s} {'target':>8s}  result",
    ]
    ok = True
    for label, scenario, variant, key, target in CASES:
        marks = [marks_of(r, key) for r in runs[(scenario, variant)]]
        first = [m["first_byte"] for m in marks if "first_byte" in m]
        if target is None:
            verdict, shown = "report", f"{'-':>8s}"
        else:
            passed = len(first) == len(marks) and statistics.median(first) <= target
            ok &= passed
            verdict, shown = ("ok" if passed else "MISSED"), f"{target:8.1f}"
        row = f"{label:32s} {med([m['first_peer'] for m in marks if 'first_peer' in m])} {med(first)} "
        lines.append(row + f"{med([m['end'] for m in marks if 'end' in m])} {shown}  {verdict}")
        print(lines[-1], flush=True)
    after = [r["after_exit"]["rules"] for rs in runs.values() for r in rs]
    seen = sorted({json.dumps(a) for a in after})
    lines.append(f"(e) miniupnpd rules after share exited, every run: {seen}")
    out = HERE / "results" / "nat_lab.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"written to {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
