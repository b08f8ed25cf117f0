"""Without libtorrent installed, the interop tests skip cleanly instead of failing to collect."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).name


def test_interop_modules_skip_when_libtorrent_is_missing(tmp_path: Path) -> None:
    """With libtorrent hidden, collecting tests/interop reports skips and no errors."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "libtorrent.py").write_text(
        'raise ModuleNotFoundError("hidden by the test", name="libtorrent")\n'
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hide), str(ROOT)]))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co", "-rs", "tests/interop"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "error" not in out.lower(), out
    others = [p for p in (ROOT / "tests" / "interop").glob("test_*.py") if p.name != THIS]
    # The engine cells of aria2, transmission and webtorrent need no libtorrent: they collect.
    needs_lt = [p for p in others if "libtorrent" in p.read_text() or "ltpeer" in p.read_text()]
    skipped = sum(int(n) for n in re.findall(r"^SKIPPED \[(\d+)\]", out, flags=re.M))
    assert len(needs_lt) >= 4 and skipped == len(needs_lt), out  # every module that needs it skipped itself
    if len(needs_lt) == len(others):
        assert "1 test collected" in out, out  # only this module's own test
