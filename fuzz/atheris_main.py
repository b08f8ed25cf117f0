"""One fuzz target under atheris (libFuzzer coverage guidance): `python -m fuzz.atheris_main NAME -runs=N`."""

from __future__ import annotations

import random
import sys

import atheris

with atheris.instrument_imports():
    import p2pshare.core  # noqa: F401  (instrument the parsers before the targets import them)
    from fuzz.mutate import mutate
    from fuzz.targets import TARGETS


def main() -> None:
    target = TARGETS[sys.argv[1]]
    seeds = target.seeds()
    rng = random.Random(0)

    def one_input(data: bytes) -> None:
        try:
            target.run(data)
        except target.allowed:
            pass

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng.seed(seed)
        if not data or rng.random() < 0.1:
            data = rng.choice(seeds)
        if rng.random() < 0.5:
            return atheris.Mutate(data, max_size)
        return mutate(data, rng, seeds, target.structured)[:max_size]

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
