"""Usage errors from the argument parser are one `p2pshare: error:` line with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from p2pshare import __version__
from p2pshare.cli.app import app
from p2pshare.errors import ExitCode


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["get", "0" * 40, "--timeout", "-1"], "--timeout"),
        (["share", ".", "--port", "70000"], "--port"),
        (["info", "--no-such-option"], "--no-such-option"),
        (["no-such-command"], "no-such-command"),
        (["get"], "TARGET"),
    ],
)
def test_usage_error_is_one_line(args: list[str], needle: str) -> None:
    """A bad option, value, command or a missing argument prints one line naming it and exits 2."""
    result = CliRunner().invoke(app, args)
    assert result.exit_code == ExitCode.USAGE, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("p2pshare: error: ")
    assert needle in lines[0]
    assert "--help" in lines[0]
    assert result.stdout == ""


def test_usage_error_through_the_installed_entry_point() -> None:
    """The console entry point (not only the test runner) prints the one line and exits 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "p2pshare", "get", "0" * 40, "--timeout", "-1"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == ExitCode.USAGE
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("p2pshare: error: ")
    assert "Traceback" not in proc.stderr


def test_bare_command_shows_help_with_usage_code() -> None:
    """`p2pshare` alone prints the help and exits 2, as before."""
    result = CliRunner().invoke(app, [])
    assert result.exit_code == ExitCode.USAGE
    assert "share" in result.output and "get" in result.output


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_short_and_long(flag: str) -> None:
    """`-V` is a short form of `--version`."""
    result = CliRunner().invoke(app, [flag])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"p2pshare {__version__}"


def test_help_exits_zero() -> None:
    """`--help` on a command prints its help and exits 0."""
    result = CliRunner().invoke(app, ["get", "--help"])
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: p2pshare get")
