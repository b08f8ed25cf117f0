"""A swarm, not a star: staggered downloaders found through the DHT only trade pieces while they download."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.swarm_procs import run_coop

MiB = 1 << 20


def test_staggered_downloaders_that_leave_when_done_trade_pieces(tmp_path: Path) -> None:
    """Four `get`s 1 s apart off one capped `share`: each uploads something; the seed sends <= 2.5 copies."""
    size = 24 * MiB
    result = run_coop(tmp_path, downloaders=4, stagger=1.0, size=size, cap=4 * MiB, timeout=90)
    assert [d.exit_code for d in result.downloaders] == [0, 0, 0, 0], result
    assert all(d.uploaded > 0 for d in result.downloaders), result
    assert 0 < result.seed_uploaded <= 2.5 * size, f"the seed sent {result.seed_copies:.2f} copies"
