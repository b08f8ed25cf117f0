"""`get --list/--select/--stdout/--no-trackers` and `share --tracker` through the CLI, on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from p2pshare.cli.app import app
from p2pshare.core.metainfo import parse_torrent
from p2pshare.engine.create import create_torrent
from p2pshare.errors import ExitCode
from tests.e2e.procs import SAMPLE, listening, processes, start
from tests.helpers.http_tracker import HttpTracker


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test keeps its state in a temporary folder, never in ~."""
    monkeypatch.setenv("P2PSHARE_STATE_DIR", str(tmp_path / "state"))
    for name in ("P2PSHARE_BOOTSTRAP", "P2PSHARE_PORT", "P2PSHARE_HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "state"


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.stdout and "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def user_error(result: Any, code: int, *words: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    line = result.stderr.strip()
    assert line.startswith("p2pshare: error: ") and "\n" not in line, line
    for word in words:
        assert word in line, line


@pytest.fixture
def sample_torrent(tmp_path: Path) -> Path:
    created = create_torrent(SAMPLE, piece_length=16384)
    path = tmp_path / "sample.torrent"
    path.write_bytes(created.torrent)
    return path


@pytest.fixture
def tracker() -> Iterator[HttpTracker]:
    """An HTTP tracker on 127.0.10.1, served from its own thread (the CLI runs its own loop)."""
    with HttpTracker("127.0.10.1") as server:
        yield server


def test_list_prints_indices_and_paths(sample_torrent: Path) -> None:
    """--list prints one row per real file with the index --select takes, and downloads nothing."""
    result = run("get", str(sample_torrent), "--list", "--no-dht", "--no-trackers")
    assert result.exit_code == 0, result.stderr
    info = parse_torrent(sample_torrent.read_bytes()).info
    for i, parts in enumerate(info.file_paths()):
        row = next(line for line in result.stdout.splitlines() if line.rstrip().endswith("/".join(parts)))
        assert row.split()[0] == str(i)


def test_list_as_json(sample_torrent: Path) -> None:
    """--list --json gives a files event with index, path and length."""
    result = run("get", str(sample_torrent), "--list", "--json", "--no-dht")
    event = json.loads(result.stdout.strip().splitlines()[-1])
    assert event["event"] == "files"
    assert [f["index"] for f in event["files"]] == list(range(len(event["files"])))
    assert sum(f["length"] for f in event["files"]) == sum(
        p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file()
    )


def test_select_matching_nothing_is_a_usage_error(sample_torrent: Path) -> None:
    """A --select term that names no file exits 2 and names the term."""
    result = run("get", str(sample_torrent), "--select", "99,*.iso", "--no-dht", "--peer", "127.0.0.1:9")
    user_error(result, ExitCode.USAGE, "99", "*.iso", "--list")


def test_stdout_needs_exactly_one_file(sample_torrent: Path) -> None:
    """--stdout with several chosen files exits 2 and says to pick one."""
    result = run(
        "get", str(sample_torrent), "--stdout", "--select", "*.bin", "--no-dht", "--peer", "127.0.0.1:9"
    )
    user_error(result, ExitCode.USAGE, "--stdout", "--select")


def test_no_trackers_and_no_dht_leave_no_source(sample_torrent: Path, tmp_path: Path) -> None:
    """With --no-dht and --no-trackers and no --peer there is no way to find peers."""
    magnet = f"magnet:?xt=urn:btih:{'ab' * 20}&tr=http://127.0.10.9:1/a"
    result = run("get", magnet, "--no-dht", "--no-trackers", "-o", str(tmp_path / "o"))
    user_error(result, ExitCode.USAGE, "no-trackers")


def test_share_rejects_a_bad_tracker(tmp_path: Path) -> None:
    """share --tracker with an unusable URL exits 2 naming --tracker."""
    user_error(
        run("share", str(SAMPLE), "--tracker", "ftp://x/announce", "--no-dht"), ExitCode.USAGE, "--tracker"
    )


def test_share_with_tracker_and_get_by_magnet_through_it(tracker: HttpTracker, tmp_path: Path) -> None:
    """share --tracker writes it into the .torrent and magnet; get finds the sharer through it alone."""
    with processes() as procs:
        sharer = start(procs, ["share", str(SAMPLE), "--host", "127.0.10.2", "--no-dht", "--json",
                               "--tracker", tracker.announce_url], tmp_path / "s1")  # fmt: skip
        ready = listening(sharer)
        assert f"tr={tracker.announce_url}".replace(":", "%3A").replace("/", "%2F") in ready["magnet"]
        meta = parse_torrent(Path(ready["torrent"]).read_bytes())
        assert meta.announce == tracker.announce_url
        shown = sharer.wait_for_event(lambda e: e.get("event") == "tracker", 10)  # the view reports it
        assert (shown["url"], shown["state"], shown["tier"]) == (tracker.announce_url, "working", 0)
        out = tmp_path / "out"
        magnet = f"magnet:?xt=urn:btih:{ready['info_hash']}&tr={tracker.announce_url}&so=3"
        result = run(
            "-q", "get", magnet, "-o", str(out), "--no-dht", "--host", "127.0.10.3", "--timeout", "30"
        )
    assert result.exit_code == 0, result.stderr
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
    info = meta.info
    assert files == [Path(*info.file_paths()[3])]
    assert (out / Path(*info.file_paths()[3])).read_bytes() == (
        SAMPLE / Path(*info.file_paths()[3][1:])
    ).read_bytes()
    events = [a.event for a in tracker.announced(bytes.fromhex(ready["info_hash"]))]
    assert "stopped" in events  # the getter left the swarm on exit ...
    assert "completed" not in events  # ... having chosen one file: not a seed, no 'completed'


def test_get_stdout_streams_the_file(tmp_path: Path) -> None:
    """`get --select FILE --stdout` writes exactly that file's bytes to stdout, messages to stderr."""
    with processes() as procs:
        sharer = start(
            procs, ["share", str(SAMPLE), "--host", "127.0.10.4", "--no-dht", "--json"], tmp_path / "s"
        )
        ready = listening(sharer)
        cmd = [sys.executable, "-m", "p2pshare", "get", ready["info_hash"], "--no-dht", "--peer",
               f"127.0.10.4:{ready['port']}", "--select", "noise.bin", "--stdout", "-o", str(tmp_path / "o"),
               "--timeout", "30", "--host", "127.0.10.5"]  # fmt: skip
        env = {"P2PSHARE_STATE_DIR": str(tmp_path / "state2"), "PATH": "/usr/bin:/bin"}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        got = subprocess.run(cmd, capture_output=True, timeout=60, env=env, check=False)
    assert got.returncode == 0, got.stderr.decode()[-2000:]
    assert got.stdout == (SAMPLE / "images" / "noise.bin").read_bytes()
    assert b"done" in got.stderr


def test_list_of_a_magnet_fetches_the_manifest_and_writes_nothing(tmp_path: Path) -> None:
    """--list with only a hash fetches the manifest from the peer, prints the files, and creates no file."""
    with processes() as procs:
        sharer = start(
            procs, ["share", str(SAMPLE), "--host", "127.0.10.6", "--no-dht", "--json"], tmp_path / "s"
        )
        ready = listening(sharer)
        peer = f"127.0.10.6:{ready['port']}"
        result = run("get", ready["info_hash"], "--list", "--json", "--no-dht", "--peer", peer, "-o",
                     str(tmp_path / "o"), "--timeout", "20", "--host", "127.0.10.7")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    event = json.loads(result.stdout.strip().splitlines()[-1])
    assert event["event"] == "files" and event["name"] == "sample_files"
    paths = {f["path"] for f in event["files"]}
    assert "sample_files/images/noise.bin" in paths
    assert not (tmp_path / "o").exists()


def test_the_choice_is_described_in_one_line(sample_torrent: Path) -> None:
    """The line get prints for --select counts chosen files among the real ones, with their size."""
    from p2pshare.cli.file_options import describe_choice
    from p2pshare.cli.views import human_size
    from p2pshare.core.selection import FileSelection

    info = parse_torrent(sample_torrent.read_bytes()).info
    files = [p for p in SAMPLE.rglob("*") if p.is_file()]
    bins = [p for p in files if p.suffix == ".bin"]
    line = describe_choice(info, FileSelection.parse(["*.bin"]))
    size = human_size(sum(p.stat().st_size for p in bins))
    assert line == f"chosen: {len(bins)} of {len(files)} file(s), {size}"


def test_tracker_changes_are_reported_once_each() -> None:
    """A tracker is reported when it starts working or fails, not again while nothing changes."""
    from types import SimpleNamespace

    from p2pshare.cli.tracker_view import TrackerWatch, tracker_dict, tracker_line
    from p2pshare.engine.trackers import TrackerState, TrackerStatus

    now: list[TrackerStatus] = [TrackerStatus("udp://t:1", 0, TrackerState.ANNOUNCING)]
    swarm: Any = SimpleNamespace(trackers=SimpleNamespace(status=lambda: now))
    watch = TrackerWatch()
    assert watch.changes(swarm) == []  # still announcing: nothing to say yet
    now[0] = TrackerStatus("udp://t:1", 0, TrackerState.WORKING, peers=3, seeders=1, leechers=2)
    assert watch.changes(swarm) == [now[0]]
    assert watch.changes(swarm) == []
    assert tracker_line(now[0]) == "tracker udp://t:1: 3 peer(s) (1 seeder(s), 2 leecher(s))"
    now[0] = TrackerStatus("udp://t:1", 0, TrackerState.FAILED, message="timed out")
    assert watch.changes(swarm) == [now[0]]
    assert tracker_line(now[0]) == "tracker udp://t:1: failed: timed out"
    assert tracker_dict(now[0])["state"] == "failed"
