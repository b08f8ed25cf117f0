"""`make bench`: run every benchmark program that exists and collect its figures.

Runs, in order, whichever of the known programs are present (others are added by
their own issues) and then any other ``benchmarks/*_bench.py``.  Each program writes
its own figures to ``benchmarks/results/``; this runner prints a summary and exits
non-zero when any program failed or missed its target.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KNOWN = ["create_bench.py", "dht_sim.py", "swarm_bench.py"]


def programs() -> list[Path]:
    """The benchmark programs to run: the known ones first, then any other *_bench.py."""
    found = [HERE / name for name in KNOWN if (HERE / name).is_file()]
    found += sorted(p for p in HERE.glob("*_bench.py") if p.name not in KNOWN)
    return found


def main() -> int:
    progs = programs()
    if not progs:
        print("no benchmark programs found")
        return 0
    results: list[tuple[str, int, float]] = []
    for prog in progs:
        print(f"=== {prog.name}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, str(prog)], cwd=ROOT)
        results.append((prog.name, code, time.perf_counter() - t0))
    print("\n=== summary (figures in benchmarks/results/)")
    for name, code, elapsed in results:
        print(f"  {name:20s} {'ok' if code == 0 else f'FAILED (exit {code})':18s} {elapsed:7.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
