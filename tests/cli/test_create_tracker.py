"""`p2pshare create --tracker`: trackers go into the manifest, bad URLs are usage errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from p2pshare.cli.app import app
from p2pshare.core.magnet import parse_magnet
from p2pshare.core.metainfo import parse_torrent
from p2pshare.errors import ExitCode


def test_create_with_trackers_writes_announce_and_one_tier_each(tmp_path: Path) -> None:
    """Two --tracker options give announce = the first and announce-list = one tier each, in order."""
    (tmp_path / "f.txt").write_bytes(b"hello trackers")
    out = tmp_path / "f.torrent"
    result = CliRunner().invoke(app, [
        "create", str(tmp_path / "f.txt"), "-o", str(out), "--json",
        "--tracker", "udp://127.0.0.1:6969/announce", "-t", "http://127.0.0.1:8000/announce",
        "--tracker", "udp://127.0.0.1:6969/announce",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = parse_torrent(out.read_bytes())
    assert meta.announce == "udp://127.0.0.1:6969/announce"
    assert meta.announce_list == (("udp://127.0.0.1:6969/announce",), ("http://127.0.0.1:8000/announce",))
    summary = json.loads(result.stdout)
    assert summary["trackers"] == ["udp://127.0.0.1:6969/announce", "http://127.0.0.1:8000/announce"]
    assert parse_magnet(summary["magnet"]).trackers == tuple(summary["trackers"])


def test_create_with_one_tracker_has_no_announce_list(tmp_path: Path) -> None:
    """A single tracker is written as announce only."""
    (tmp_path / "f.txt").write_bytes(b"x")
    out = tmp_path / "f.torrent"
    result = CliRunner().invoke(
        app, ["create", str(tmp_path / "f.txt"), "-o", str(out), "-t", "http://t/announce"]
    )
    assert result.exit_code == 0, result.output
    meta = parse_torrent(out.read_bytes())
    assert (meta.announce, meta.announce_list) == ("http://t/announce", ())


def test_create_refuses_an_unusable_tracker_url(tmp_path: Path) -> None:
    """A tracker URL with an unsupported scheme is a usage error, and no .torrent is written."""
    (tmp_path / "f.txt").write_bytes(b"x")
    out = tmp_path / "f.torrent"
    result = CliRunner().invoke(
        app, ["create", str(tmp_path / "f.txt"), "-o", str(out), "-t", "wss://t/announce"]
    )
    assert result.exit_code == ExitCode.USAGE
    assert "only http, https and udp" in result.output + result.stderr
    assert not out.exists()
