"""Fixtures for the NAT lab tests: run one scenario in fresh private namespaces and return its facts.

A lab test skips only where this machine cannot make namespaces or lacks the lab's tools
(``unshare -m -n true`` fails, or ip/nft/miniupnpd are missing), and never when CI=true:
there a missing capability is a failure (scripts/install-lab.sh installs the tools).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB_TIMEOUT = 100.0  #: one scenario, lab build and teardown included (under pytest-timeout's 120 s)


def _lab_unavailable() -> str | None:
    for tool in ("unshare", "ip", "nft", "miniupnpd"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (scripts/install-lab.sh installs the lab's tools)"
    try:
        probe = subprocess.run(["unshare", "-m", "-n", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -m -n failed: {exc}"
    if probe.returncode != 0:
        return f"this machine cannot make namespaces: {probe.stderr.decode(errors='replace').strip()}"
    return None


@pytest.fixture(scope="session")
def lab_ready() -> None:
    reason = _lab_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the NAT lab cannot run in CI: {reason}")
    pytest.skip(reason)


def run_scenario(scenario: str, variant: str = "both") -> dict[str, Any]:
    """Run ``python -m tests.lab.run`` under ``unshare -m -n``; kill its whole process group on timeout."""
    argv = ["unshare", "-m", "-n", sys.executable, "-m", "tests.lab.run", scenario, "--variant", variant]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=LAB_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"lab scenario {scenario} ran over {LAB_TIMEOUT} s\n{out[-3000:]}\n{err[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"lab scenario {scenario} printed no result (exit {proc.returncode})\n{err[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert "error" not in result, f"{result['error']}\n{result.get('logs', '')}"
    assert proc.returncode == 0, err[-4000:]
    return result


@pytest.fixture
def scenario(lab_ready: None) -> Callable[..., dict[str, Any]]:
    return run_scenario
