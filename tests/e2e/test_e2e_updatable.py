"""End to end: `share --format v2`, `share --publish` and `get <btpk> --follow` as processes on loopback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.procs import SAMPLE, listening, processes, same_tree, start

pytestmark = pytest.mark.slow


def test_v2_share_downloaded_from_its_btmh_magnet(tmp_path: Path) -> None:
    """A folder shared with --format v2 is downloaded, byte for byte, from its btmh magnet link alone."""
    with processes() as procs:
        sharer = start(
            procs,
            ["share", str(SAMPLE), "--format", "v2", "--host", "127.0.0.2", "--no-dht", "--json"],
            tmp_path / "s-share",
        )
        magnet = listening(sharer)["magnet"]
        assert "xt=urn:btmh:1220" in magnet and "btih" not in magnet and "x.pe=127.0.0.2" in magnet
        out = tmp_path / "out"
        getter = start(
            procs,
            ["get", magnet, "-o", str(out), "--host", "127.0.0.3", "--no-dht", "--json", "--timeout", "60"],
            tmp_path / "s-get",
        )
        assert getter.wait(90) == 0, getter.describe()
        assert same_tree(SAMPLE, out / "sample_files")


def test_publish_and_follow_two_versions(tmp_path: Path) -> None:
    """A follower of a published folder syncs it, then gets the next version with only the changed file."""
    folder = tmp_path / "pub" / "photos"
    shutil.copytree(SAMPLE, folder)
    with processes() as procs:
        dht = start(procs, ["dht", "--host", "127.0.0.1", "--port", "0", "--json"], tmp_path / "s-dht")
        boot = f"127.0.0.1:{listening(dht)['port']}"
        sharer = start(
            procs,
            ["share", str(folder), "--publish", "--host", "127.0.0.2", "--bootstrap", boot, "--json"],
            tmp_path / "s-share",
        )
        ready = listening(sharer)
        assert len(ready["public_key"]) == 64 and ready["magnet"].startswith(
            "magnet:?xs=urn:btpk:" + ready["public_key"]
        )
        first = sharer.wait_for_event(lambda e: e["event"] == "published", 30)
        assert first["seq"] == 1
        out = tmp_path / "out"
        follower = start(
            procs,
            [
                "get",
                ready["magnet"],
                "--follow",
                "--delete",
                "-o",
                str(out),
                "--host",
                "127.0.0.3",
                "--bootstrap",
                boot,
                "--json",
            ],
            tmp_path / "s-get",
        )
        synced = follower.wait_for_event(lambda e: e["event"] == "synced", 60)
        assert synced["seq"] == 1
        assert same_tree(folder, out / "photos")
        victim = sorted(p for p in folder.rglob("*") if p.is_file())[0]
        victim.write_bytes(b"a new version of this file\n" * 1000)
        version = follower.wait_for_event(lambda e: e["event"] == "version" and e["seq"] == 2, 60)
        rel = str(victim.relative_to(folder))
        assert version["changed_files"] == [rel]
        synced = follower.wait_for_event(lambda e: e["event"] == "synced" and e["seq"] == 2, 60)
        assert synced["downloaded"] < 2 * victim.stat().st_size + 64 * 1024
        assert same_tree(folder, out / "photos")
