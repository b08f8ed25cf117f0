"""scripts/check-interop-skips.py: CI fails on any skipped interop cell, encrypted cells included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.procs import ROOT

SCRIPT = ROOT / "scripts" / "check-interop-skips.py"


def report(tmp_path: Path, *cases: str) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(f'<testsuites><testsuite name="pytest">{"".join(cases)}</testsuite></testsuites>')
    return path


def case(module: str, name: str, skip: str | None = None) -> str:
    inner = f'<skipped type="pytest.skip" message="{skip}"/>' if skip is not None else ""
    return f'<testcase classname="tests.{module}" name="{name}">{inner}</testcase>'


def check(path: Path) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(SCRIPT), str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def test_all_cells_ran_passes(tmp_path: Path) -> None:
    """A report where every interop cell ran passes."""
    result = check(report(tmp_path, case("interop.test_engines_aria2", "a"), case("core.test_x", "b", "any")))
    assert result.returncode == 0, result.stderr
    assert "1 interop cell(s) ran" in result.stdout


def test_engine_missing_skip_fails(tmp_path: Path) -> None:
    """An interop cell skipped because its engine is missing fails the check and is named."""
    skip = "engine missing: aria2c is not installed"
    result = check(report(tmp_path, case("interop.test_a", "a"), case("interop.test_x", "b", skip)))
    assert result.returncode == 1
    assert "tests.interop.test_x::b" in result.stderr and "engine missing" in result.stderr


def test_encrypted_cell_skip_fails(tmp_path: Path) -> None:
    """An encrypted cell that skipped fails the check like any other (the old exception is gone)."""
    skip = "needs_encryption: no --encryption option yet"
    result = check(report(tmp_path, case("interop.test_a", "plain"), case("interop.test_a", "enc", skip)))
    assert result.returncode == 1
    assert "tests.interop.test_a::enc" in result.stderr


def test_no_interop_cell_fails(tmp_path: Path) -> None:
    """A report with no interop cell at all fails: the interop suite did not run."""
    assert check(report(tmp_path, case("core.test_x", "a"))).returncode == 1


def test_unreadable_report_fails(tmp_path: Path) -> None:
    """A missing report fails the check."""
    assert check(tmp_path / "absent.xml").returncode == 1
