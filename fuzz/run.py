"""Run the fuzz targets: ``python -m fuzz.run [--inputs N] [--engine builtin|atheris] [TARGET ...]``.

The builtin engine mutates inputs grown from each target's valid seeds (structure-aware
for bencode, byte-level for everything) and keeps a small, bounded corpus of inputs
that got past the first checks.  With ``--engine atheris`` (when atheris is
installed) each target runs in a child process under libFuzzer's coverage guidance,
with the same mutations offered as its custom mutator.

Findings: any exception a target does not allow, an input that runs longer than
``--input-timeout``, and resident memory that grows by more than ``--max-growth`` MiB
between the first 10,000 inputs and the end.  Each finding is saved under
``fuzz/findings/`` (never committed) and the run exits 1.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from fuzz.mutate import mutate
from fuzz.targets import TARGETS, Target

ROOT = Path(__file__).resolve().parents[1]
FINDINGS = ROOT / "fuzz" / "findings"
RESULTS = ROOT / "benchmarks" / "results" / "fuzz.txt"
MiB = 1024 * 1024
MAX_CORPUS = 512  #: inputs kept besides the seeds (bounded memory of the fuzzer itself)
WARMUP = 10_000  #: inputs before the memory baseline is taken


class InputTimeout(Exception):
    """One input ran longer than the bound: a hang."""


@dataclass
class Report:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    rejected: int = 0  #: inputs that raised an allowed (typed) error
    findings: list[str] = field(default_factory=list)
    rss_start: int = 0
    rss_end: int = 0

    def line(self) -> str:
        rate = self.inputs / self.seconds if self.seconds else 0.0
        growth = (self.rss_end - self.rss_start) / MiB
        return (
            f"{self.target:12s} {self.inputs:>9,d} inputs {rate:>8,.0f}/s  rejected {self.rejected:>9,d}  "
            f"findings {len(self.findings)}  rss {self.rss_start / MiB:.1f} -> {self.rss_end / MiB:.1f} MiB "
            f"({growth:+.1f})"
        )


def rss() -> int:
    """Resident memory of this process in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise InputTimeout


def fuzz_builtin(
    target: Target, inputs: int, seed: int, input_timeout: float = 2.0, save: bool = True
) -> Report:
    """Run ``inputs`` mutated inputs through ``target``; return what happened."""
    rng = random.Random(seed)
    seeds = target.seeds()
    corpus = list(seeds)
    report = Report(target.name)
    old = signal.signal(signal.SIGALRM, _on_alarm)
    start = time.perf_counter()
    try:
        for i in range(inputs):
            if i == min(WARMUP, inputs // 2):
                report.rss_start = rss()
            data = seeds[i] if i < len(seeds) else mutate(rng.choice(corpus), rng, corpus, target.structured)
            signal.setitimer(signal.ITIMER_REAL, input_timeout)
            try:
                target.run(data)
            except target.allowed:
                report.rejected += 1
            except InputTimeout:
                report.findings.append(_save(target, data, f"hang: over {input_timeout} s", save))
            except Exception as exc:  # the finding a fuzzer exists for
                report.findings.append(_save(target, data, "".join(traceback.format_exception(exc)), save))
            else:
                if rng.random() < 0.01:  # accepted: worth mutating further
                    if len(corpus) < len(seeds) + MAX_CORPUS:
                        corpus.append(data)
                    else:
                        corpus[len(seeds) + rng.randrange(MAX_CORPUS)] = data
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, old)
    report.inputs = inputs
    report.seconds = time.perf_counter() - start
    report.rss_end = rss()
    return report


def _save(target: Target, data: bytes, why: str, save: bool) -> str:
    first = why.strip().splitlines()[-1][:200] if why.strip() else "?"
    if save:
        FINDINGS.mkdir(parents=True, exist_ok=True)
        import hashlib

        name = f"{target.name}-{hashlib.sha1(data).hexdigest()[:12]}"
        (FINDINGS / f"{name}.bin").write_bytes(data)
        (FINDINGS / f"{name}.txt").write_text(why)
        return f"{first} (saved {name}.bin)"
    return first


def fuzz_atheris(target: Target, inputs: int, seed: int) -> int:
    """Run one target under atheris in a child process; its exit code (0: no finding)."""
    cmd = [
        sys.executable,
        "-m",
        "fuzz.atheris_main",
        target.name,
        f"-runs={inputs}",
        f"-seed={seed}",
        "-rss_limit_mb=1024",
        "-timeout=5",
        f"-artifact_prefix={FINDINGS}/{target.name}-",
    ]
    FINDINGS.mkdir(parents=True, exist_ok=True)
    return subprocess.call(cmd, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help=f"targets (default: all): {', '.join(TARGETS)}")
    ap.add_argument("--inputs", type=int, default=1_000_000, help="inputs per target")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--engine", choices=("builtin", "atheris"), default="builtin")
    ap.add_argument("--input-timeout", type=float, default=2.0, help="seconds one input may take")
    ap.add_argument("--max-growth", type=float, default=32.0, help="MiB of RSS growth that counts as a leak")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    names = args.targets or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s): {', '.join(unknown)}")
    lines: list[str] = []
    failed = False
    for name in names:
        target = TARGETS[name]
        if args.engine == "atheris":
            code = fuzz_atheris(target, args.inputs, args.seed)
            verdict = "ok" if code == 0 else f"FINDING (exit {code})"
            line = f"{name:12s} atheris {args.inputs:,d} runs: {verdict}"
            failed |= code != 0
        else:
            report = fuzz_builtin(target, args.inputs, args.seed, args.input_timeout)
            leak = report.rss_end - report.rss_start > args.max_growth * MiB
            line = report.line() + ("  MEMORY GROWS" if leak else "")
            failed |= bool(report.findings) or leak
            for finding in report.findings[:5]:
                line += f"\n    {finding}"
        print(line, flush=True)
        lines.append(line)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    header = f"# fuzz, {stamp}, engine {args.engine}, {args.inputs:,d} inputs per target, seed {args.seed}\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(header + "\n".join(lines) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
