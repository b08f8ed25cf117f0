"""Write a large payload deterministically (never committed): seeded random 1 MiB blocks.

Usage: python benchmarks/gen_payload.py [--size 2GiB] [--seed 1] [--out benchmarks/.work/payload.bin]

The same size and seed always give the same bytes.  An existing file with the right
size and a matching ``.stamp`` beside it is kept, so repeated benchmark runs are fast.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

BLOCK = 1024 * 1024
HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / ".work" / "payload.bin"

__all__ = ["ensure_payload", "parse_size"]


def parse_size(text: str) -> int:
    """``2GiB``, ``512MiB``, ``1048576`` -> bytes."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = 1
    if t and t[-1] in "kmgt":
        factor = 1024 ** ("kmgt".index(t[-1]) + 1)
        t = t[:-1]
    return int(t) * factor


def ensure_payload(size: int, seed: int = 1, out: Path = DEFAULT_OUT) -> Path:
    """Create ``out`` with ``size`` deterministic bytes unless it already holds them."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = out.with_suffix(out.suffix + ".stamp")
    want = f"size={size} seed={seed} block={BLOCK}\n"
    if out.exists() and out.stat().st_size == size and stamp.exists() and stamp.read_text() == want:
        return out
    rng = random.Random(seed)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "wb") as f:
        left = size
        while left > 0:
            n = min(BLOCK, left)
            f.write(rng.randbytes(n))
            left -= n
    tmp.replace(out)
    stamp.write_text(want)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="2GiB")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    path = ensure_payload(parse_size(args.size), args.seed, args.out)
    print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
