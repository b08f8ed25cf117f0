"""Micro-benchmark: pick_blocks on a 4096-piece torrent with 50 peers.

Run: ``.venv/bin/python benchmarks/picker_bench.py``.  Simulates a download: each
round a random peer asks for 16 more blocks, then a random part of its outstanding
blocks arrive (so partial pieces pile up) and finished pieces are verified; the run
goes through endgame to the last piece.  Prints the mean and worst time of one ``pick_blocks(peer, 16)`` call.
"""

from __future__ import annotations

import random
import time
from collections.abc import Hashable

from p2pshare.config import PickerConfig
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import BlockRef, Geometry
from p2pshare.core.picker import PiecePicker


def main(pieces: int = 4096, peers: int = 50, piece_length: int = 256 * 1024, seed: int = 1) -> None:
    rng = random.Random(seed)
    geometry = Geometry(piece_length, [pieces * piece_length - 1000])
    picker = PiecePicker(geometry, Bitfield(pieces), PickerConfig(), random.Random(seed))
    t0 = time.perf_counter()
    for p in range(peers):
        if p % 10 == 0:
            picker.add_peer(p, Bitfield(pieces, full=True))
        else:
            density = rng.uniform(0.05, 0.95)
            picker.add_peer(
                p, Bitfield.from_indices(pieces, (i for i in range(pieces) if rng.random() < density))
            )
    add_time = time.perf_counter() - t0
    in_flight: dict[Hashable, list[BlockRef]] = {p: [] for p in range(peers)}
    times: list[float] = []
    verified = 0
    while not picker.complete and len(times) < 200_000:
        peer = rng.randrange(peers)
        t = time.perf_counter()
        blocks = picker.pick_blocks(peer, 16)
        times.append(time.perf_counter() - t)
        in_flight[peer].extend(blocks)
        # deliver a random part of what this peer has in flight (pieces stay partial a while)
        pending = in_flight[peer]
        rng.shuffle(pending)
        keep = rng.randrange(len(pending) + 1) if pending else 0
        for block in pending[keep:]:
            result = picker.block_received(peer, block)
            for other in result.cancel:
                in_flight[other].remove(block)
            if result.piece_complete:
                picker.piece_verified(block.piece)
                verified += 1
        del pending[keep:]
    times_us = sorted(x * 1e6 for x in times)
    mean = sum(times_us) / len(times_us)
    print(f"add {peers} peers: {add_time * 1e3:.1f} ms")
    print(
        f"pick_blocks(16): {len(times_us)} calls, mean {mean:.1f} us, "
        f"median {times_us[len(times_us) // 2]:.1f} us, "
        f"p99 {times_us[int(len(times_us) * 0.99)]:.1f} us, max {times_us[-1]:.1f} us; "
        f"{verified} pieces verified"
    )


if __name__ == "__main__":
    main()
