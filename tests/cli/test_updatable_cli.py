"""The CLI of v2 and updatable shares: share --format/--publish/--key, get with a btpk magnet."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from p2pshare.cli.app import app
from p2pshare.errors import ExitCode

KEY_HEX = "ab" * 32


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("P2PSHARE_STATE_DIR", str(tmp_path / "state"))
    root = tmp_path / "share"
    root.mkdir()
    (root / "a.txt").write_bytes(b"hello" * 1000)
    return root


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["get", "magnet:?xs=urn:btpk:abcd"], ExitCode.BAD_TARGET, "64"),
        (
            ["get", f"magnet:?xs=urn:btpk:{KEY_HEX}", "--no-dht", "--peer", "127.0.0.1:1"],
            ExitCode.USAGE,
            "DHT",
        ),
        (["share", "{folder}", "--publish", "--no-dht"], ExitCode.USAGE, "DHT"),
        (["share", "{folder}", "--publish", "--key", "{folder}/missing.key"], ExitCode.USAGE, "key file"),
        (["share", "{folder}", "--format", "v3"], ExitCode.USAGE, "v1, v2 or hybrid"),
    ],
)
def test_bad_v2_and_publish_options_are_one_line(
    folder: Path, args: list[str], code: int, needle: str
) -> None:
    """A bad btpk link, --publish without DHT, a missing key file or an unknown format is one error line."""
    args = [a.replace("{folder}", str(folder)) for a in args]
    result = CliRunner().invoke(app, [*args, "--host", "127.0.0.1"])
    assert result.exit_code == code, (result.exit_code, result.stderr, result.stdout)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2pshare: error: ") and needle in lines[0], lines
