"""LEDBAT yields: through a 20 Mbit/s router uTP leaves a TCP flow the link, then takes it back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _lab_possible() -> bool:
    if not (shutil.which("unshare") and shutil.which("tc") and shutil.which("ip")):
        return False
    probe = subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True, timeout=10)
    return probe.returncode == 0


def test_utp_keeps_under_30_percent_beside_tcp_and_takes_the_link_back() -> None:
    """Alone uTP fills the link; beside TCP it takes at most 30%; once TCP stops it takes the link back."""
    if not _lab_possible():
        if os.environ.get("CI") == "true":
            pytest.fail("CI must be able to make network namespaces (unshare -m -n) and run tc")
        pytest.skip("needs unshare -m -n (root) and tc")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        ["unshare", "-m", "-n", sys.executable, "-m", "tests.io.ledbat_shaped"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    link = r["link"]
    assert r["utp_alone"] >= 0.7 * link, r
    assert r["utp_both"] <= 0.3 * link, r
    assert r["tcp_both"] >= 0.5 * link, r
    assert r["utp_after"] >= 0.7 * link, r
