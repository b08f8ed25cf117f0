"""Packaging: `make install` takes no test tools; the metadata builds without warnings."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_takes_no_test_tools(tmp_path: Path) -> None:
    """`make install` installs the package alone (no `[test]` extra) into its own prefix and links it."""
    out = subprocess.run(
        ["make", "-n", "install", f"PREFIX={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    installs = [line for line in out.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs, out
    assert all("[test]" not in line and line.rstrip().endswith(" .") for line in installs), installs
    assert f"{tmp_path}/bin/p2pshare" in out


def test_license_is_spdx() -> None:
    """The license is an SPDX string (a TOML table makes setuptools warn), and the text ships."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
