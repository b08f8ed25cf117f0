"""Time to map a TCP and a UDP port in the NAT lab, per mapping protocol, and time to give up.

Runs the lab scenarios of tests/lab (each in its own ``unshare -m -n``) a few times and
records, from h1's agent, the seconds from ``PortMapper.start()`` until the service settled
(every port mapped, or every method given up).  Python start-up and the lab build are not
counted.

Targets (medians): NAT-PMP/PCP maps both ports in under 0.5 s, UPnP IGD (SSDP search,
description, GetExternalIPAddress, two AddPortMapping) in under 1.5 s, and a router with
neither is given up on in under 3 s (the SSDP search waits 2 s in the lab's agent; NAT-PMP
ends at the ICMP port unreachable).
Then ``p2pshare get`` on h2 fetches 4 MiB from ``p2pshare share`` on h1 through both NATs,
h1's port mapped by UPnP or NAT-PMP: the time from starting ``get`` to its first peer and to
``done`` (target: done within 5 s, Python start-up included).
Results go to benchmarks/results/portmap_lab.txt.  Skips (exit 0) where namespaces cannot be made.

Usage: python benchmarks/portmap_lab_bench.py [--repeat 3]
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = [  # (label, scenario, variant, target seconds)
    ("NAT-PMP/PCP", "portmap-natpmp", "natpmp", 0.5),
    ("NAT-PMP v0", "portmap-natpmp-v0", "natpmp", 0.5),
    ("UPnP IGD", "portmap-upnp", "upnp", 1.5),
    ("both offered", "portmap", "both", 0.5),
    ("neither (give up)", "portmap", "none", 3.0),
]
DOWNLOADS = [  # (label, scenario, variant, target seconds from starting `get` to `done`)
    ("get via UPnP map", "share-get-upnp", "upnp", 5.0),
    ("get via NAT-PMP map", "share-get-natpmp", "natpmp", 5.0),
]


def run(scenario: str, variant: str) -> dict[str, object]:
    argv = ["unshare", "-m", "-n", sys.executable, "-m", "tests.lab.run", scenario, "--variant", variant]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=200, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{scenario}/{variant} printed nothing: {done.stderr[-2000:]}")
    result: dict[str, object] = json.loads(lines[-1])
    if "error" in result:
        raise RuntimeError(f"{scenario}/{variant}: {result['error']}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True, check=False).returncode != 0:
        print("portmap_lab_bench: cannot make namespaces here; skipped")
        return 0
    lines = [
        "p2pshare port mapping in the NAT lab (tests/lab): seconds from PortMapper.start() to settled",
        f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, "
        f"Python {platform.python_version()}, miniupnpd on r1 (tests/lab/netlab.py)",
        f"{'case':20s} {'median':>8s} {'min':>8s} {'max':>8s} {'target':>8s}  result",
    ]
    ok = True
    for label, scenario, variant, target in CASES:
        times = []
        for _ in range(args.repeat):
            result = run(scenario, variant)
            settled = result["settled"]
            assert isinstance(settled, dict)
            times.append(float(settled["seconds"]))
        median = statistics.median(times)
        passed = median <= target
        ok &= passed
        verdict = "ok" if passed else "MISSED"
        lines.append(f"{label:20s} {median:8.3f} {min(times):8.3f} {max(times):8.3f} {target:8.1f} {verdict}")
        print(lines[-1], flush=True)
    lines.append("")
    lines.append("p2pshare get on h2 from p2pshare share on h1 (4 MiB, --peer r1's address, no DHT):")
    lines.append("seconds from starting `get` (Python start-up included) to the first peer and to `done`")
    lines.append(f"{'case':20s} {'peer':>8s} {'done':>8s} {'target':>8s}  result")
    for label, scenario, variant, target in DOWNLOADS:
        marks = []
        for _ in range(args.repeat):
            result = run(scenario, variant)
            assert result["exit_code"] == 0 and result["identical"], result["final"]
            mark = result["marks"]
            assert isinstance(mark, dict)
            marks.append((float(mark["first_peer"]), float(mark["end"])))
        peer = statistics.median(m[0] for m in marks)
        done = statistics.median(m[1] for m in marks)
        passed = done <= target
        ok &= passed
        verdict = "ok" if passed else "MISSED"
        lines.append(f"{label:20s} {peer:8.3f} {done:8.3f} {target:8.1f}  {verdict}")
        print(lines[-1], flush=True)
    out = HERE / "results" / "portmap_lab.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"written to {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
