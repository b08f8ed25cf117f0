"""End to end: `p2pshare dht`, `share`, `get` and `demo` as separate processes on loopback."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.procs import SAMPLE, listening, processes, same_tree, start

pytestmark = pytest.mark.slow


def assert_event_stream(lines: list[str], last: str) -> list[dict[str, Any]]:
    """Every line is one JSON object with an "event" name, and the stream ends with ``last``."""
    events = []
    for line in lines:
        assert line.endswith("\n")
        event = json.loads(line)
        assert isinstance(event, dict) and isinstance(event.get("event"), str), line
        events.append(event)
    assert events and events[-1]["event"] == last, [e["event"] for e in events]
    return events


def test_get_by_hash_through_the_dht(tmp_path: Path) -> None:
    """A share announced on a loopback DHT is found and downloaded by its info hash alone, byte for byte."""
    with processes() as procs:
        dht = start(procs, ["dht", "--host", "127.0.0.1", "--port", "0", "--json"], tmp_path / "s-dht")
        boot = f"127.0.0.1:{listening(dht)['port']}"
        sharer = start(
            procs,
            ["share", str(SAMPLE), "--host", "127.0.0.2", "--bootstrap", boot, "--json"],
            tmp_path / "s-share",
        )
        info_hash = listening(sharer)["info_hash"]
        out = tmp_path / "out"
        getter = start(
            procs,
            [
                "get",
                info_hash,
                "-o",
                str(out),
                "--host",
                "127.0.0.3",
                "--bootstrap",
                boot,
                "--json",
                "--timeout",
                "60",
            ],
            tmp_path / "s-get",
        )
        assert getter.wait(90) == 0, getter.describe()
        assert same_tree(SAMPLE, out / "sample_files")
        events = assert_event_stream(getter.out, "done")
        names = [e["event"] for e in events]
        assert names[0] == "start"
        assert {"phase", "listening", "peer_connected", "metadata"} <= set(names)
        done = events[-1]
        assert done["info_hash"] == info_hash and done["verified"] is True and done["peers_used"] >= 1
        assert any(e["event"] == "peers_found" and e["source"] == "dht" for e in events)
        assert getter.err == []


def test_get_from_a_given_peer_without_dht_prints_plain_lines(tmp_path: Path) -> None:
    """`get --peer` without the DHT downloads everything, and its non-terminal output has no control codes."""
    with processes() as procs:
        sharer = start(
            procs, ["share", str(SAMPLE), "--host", "127.0.0.4", "--no-dht", "--json"], tmp_path / "s1"
        )
        ready = listening(sharer)
        assert ready["dht_port"] is None
        assert "x.pe=127.0.0.4" in ready["magnet"]
        out = tmp_path / "out"
        getter = start(
            procs,
            [
                "get",
                ready["info_hash"],
                "-o",
                str(out),
                "--no-dht",
                "--host",
                "127.0.0.5",
                "--peer",
                f"127.0.0.4:{ready['port']}",
                "--timeout",
                "60",
            ],
            tmp_path / "s2",
        )
        assert getter.wait(90) == 0, getter.describe()
        assert same_tree(SAMPLE, out / "sample_files")
        text = "".join(getter.out) + "".join(getter.err)
        assert "\x1b" not in text and "\r" not in text
        assert "done: sample_files" in text and "pieces verified" in text


def test_get_by_magnet_uses_its_peer_hint(tmp_path: Path) -> None:
    """A magnet link's x.pe hint alone is enough to download, with no DHT and no --peer."""
    with processes() as procs:
        sharer = start(
            procs, ["share", str(SAMPLE), "--host", "127.0.0.6", "--no-dht", "--json"], tmp_path / "s1"
        )
        magnet = listening(sharer)["magnet"]
        out = tmp_path / "out"
        getter = start(procs, ["get", magnet, "-o", str(out), "--no-dht", "--timeout", "60"], tmp_path / "s2")
        assert getter.wait(90) == 0, getter.describe()
        assert same_tree(SAMPLE, out / "sample_files")


def test_share_reuses_the_manifest_of_an_unchanged_folder(tmp_path: Path) -> None:
    """Sharing the same unchanged folder twice hashes it once; changing a file makes it hash again."""
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a" * 50_000)
    state = tmp_path / "state"
    seen = []
    with processes() as procs:
        for round_ in range(3):
            if round_ == 2:
                (folder / "a.txt").write_bytes(b"b" * 50_001)
            proc = start(procs, ["share", str(folder), "--host", "127.0.0.7", "--no-dht", "--json"], state)
            manifest = proc.wait_for_event(lambda e: e["event"] == "manifest", 30)
            seen.append(manifest["reused"])
            assert Path(manifest["torrent"]).is_file()
            listening(proc)
            proc.signal(signal.SIGINT)
            assert proc.wait(30) == 0
    assert seen == [False, True, False]


def test_ctrl_c_stops_share_cleanly(tmp_path: Path) -> None:
    """Ctrl-C is how `share` stops: exit 0, a final "stopped" event, nothing on stderr."""
    with processes() as procs:
        sharer = start(procs, ["share", str(SAMPLE), "--host", "127.0.0.8", "--no-dht", "--json"], tmp_path)
        listening(sharer)
        sharer.signal(signal.SIGINT)
        assert sharer.wait(30) == 0
        events = assert_event_stream(sharer.out, "stopped")
        assert events[-1]["reason"] == "interrupted"
        assert sharer.err == []


def test_ctrl_c_stops_get_with_exit_130(tmp_path: Path) -> None:
    """Ctrl-C during a `get` that waits for peers exits 130 with an error event and one stderr line."""
    with processes() as procs:
        getter = start(
            procs,
            ["get", "ab" * 20, "-o", str(tmp_path / "out"), "--no-dht", "--peer", "127.0.0.1:1", "--json"],
            tmp_path / "state",
        )
        listening(getter)
        getter.signal(signal.SIGTERM)
        assert getter.wait(30) == 130
        events = assert_event_stream(getter.out, "error")
        assert events[-1]["code"] == 130 and events[-1]["kind"] == "interrupted"
        assert len(getter.err) == 1 and "Traceback" not in getter.err[0]


def test_get_with_seed_keeps_serving_after_done(tmp_path: Path) -> None:
    """`get --seed` reports done, then serves the files to the next downloader until Ctrl-C."""
    with processes() as procs:
        sharer = start(
            procs, ["share", str(SAMPLE), "--host", "127.0.0.24", "--no-dht", "--json"], tmp_path / "s1"
        )
        ready = listening(sharer)
        first = start(
            procs,
            [
                "get",
                ready["info_hash"],
                "-o",
                str(tmp_path / "a"),
                "--no-dht",
                "--host",
                "127.0.0.25",
                "--peer",
                f"127.0.0.24:{ready['port']}",
                "--seed",
                "--json",
                "--timeout",
                "60",
            ],
            tmp_path / "s2",
        )
        port = listening(first)["port"]
        first.wait_for_event(lambda e: e["event"] == "done", 60)
        sharer.signal(signal.SIGINT)
        assert sharer.wait(30) == 0
        second = start(
            procs,
            [
                "get",
                ready["info_hash"],
                "-o",
                str(tmp_path / "b"),
                "--no-dht",
                "--peer",
                f"127.0.0.25:{port}",
                "--timeout",
                "60",
            ],
            tmp_path / "s3",
        )
        assert second.wait(90) == 0, second.describe()
        assert same_tree(SAMPLE, tmp_path / "b" / "sample_files")
        first.signal(signal.SIGINT)
        assert first.wait(30) == 0
        events = assert_event_stream(first.out, "stopped")
        assert events[-1]["uploaded"] > 0


def test_demo_with_a_small_payload(tmp_path: Path) -> None:
    """`p2pshare demo` downloads a generated payload from 2 seeders through the DHT and verifies it."""
    with processes() as procs:
        demo = start(procs, ["demo", "--size", "2000000", "--peers", "2", "--json"], tmp_path / "state")
        assert demo.wait(120) == 0, demo.describe()
        events = assert_event_stream(demo.out, "done")
        done = events[-1]
        assert done["identical"] is True and done["total_size"] == 2_000_000
        assert done["peers_used"] == 2
        steps = [e["step"] for e in events if e["event"] == "demo"]
        assert steps[:3] == ["payload", "bootstrap", "seeder"] and "verify" in steps
        hosts = {e["address"].split(":")[0] for e in events if e["event"] == "demo" and e["address"]}
        assert all(h.startswith("127.") for h in hosts)


def test_demo_plain_output_has_no_control_characters(tmp_path: Path) -> None:
    """The demo's output to a pipe is plain lines: no escape codes, and it ends with the check."""
    with processes() as procs:
        demo = start(procs, ["demo", "--size", "300000", "--peers", "1"], tmp_path / "state")
        assert demo.wait(120) == 0, demo.describe()
        text = "".join(demo.out)
        assert "\x1b" not in text and "\r" not in text
        assert "identical" in text and demo.out[-1].startswith("demo ok")
