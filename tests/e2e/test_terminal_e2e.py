"""The terminal round two end to end: seed, checking, resuming, Ctrl-C, pipes and the JSON stream."""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from p2pshare.engine.create import create_torrent
from tests.e2e.procs import ROOT, SAMPLE, listening, processes, same_tree, start

pytestmark = pytest.mark.slow


def torrent_of_sample(tmp_path: Path) -> tuple[Path, int]:
    created = create_torrent(SAMPLE)
    path = tmp_path / "sample.torrent"
    path.write_bytes(created.torrent)
    return path, created.info.num_pieces


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def test_seed_checks_then_serves_without_any_peer(tmp_path: Path) -> None:
    """`seed X.torrent --data DIR` checks every piece, listens with no peer, serves, exits 0 on Ctrl-C."""
    torrent, num_pieces = torrent_of_sample(tmp_path)
    with processes() as procs:
        seeder = start(
            procs,
            ["seed", str(torrent), "--data", str(ROOT), "--no-dht", "--host", "127.0.0.30", "--json"],
            tmp_path / "s1",
        )
        ready = listening(seeder)
        events = seeder.events()
        checked = next(e for e in events if e["event"] == "checked")
        assert checked["have_pieces"] == num_pieces and checked["checked_bytes"] > 0
        assert events[0]["event"] == "start" and events[0]["name"] == "sample_files"
        assert (
            names(events).index("checking")
            < names(events).index("checked")
            < names(events).index("listening")
        )
        getter = start(
            procs,
            [
                "get",
                str(torrent),
                "-o",
                str(tmp_path / "out"),
                "--no-dht",
                "--peer",
                f"127.0.0.30:{ready['port']}",
            ],
            tmp_path / "s2",
        )
        assert getter.wait(60) == 0, getter.describe()
        assert same_tree(SAMPLE, tmp_path / "out" / "sample_files")
        seeder.signal(signal.SIGINT)
        assert seeder.wait(30) == 0, seeder.describe()
        assert seeder.events()[-1]["event"] == "stopped" and seeder.err == []


def test_get_seed_with_complete_files_starts_without_peers(tmp_path: Path) -> None:
    """`get X.torrent -o DIR --seed --no-dht` over complete files seeds at once; Ctrl-C: stopped sharing."""
    torrent, num_pieces = torrent_of_sample(tmp_path)
    out = tmp_path / "out"
    shutil.copytree(SAMPLE, out / "sample_files")
    with processes() as procs:
        proc = start(
            procs,
            ["get", str(torrent), "-o", str(out), "--seed", "--no-dht", "--host", "127.0.0.31"],
            tmp_path / "s",
        )
        deadline_text = ""
        for _ in range(300):
            deadline_text = "".join(proc.out)
            if "seeding until Ctrl-C" in deadline_text:
                break
            proc.p.poll()
            assert proc.p.returncode is None, proc.describe()
            time.sleep(0.1)
        assert "already complete: nothing to download" in deadline_text, proc.describe()
        assert "checked" in deadline_text and f"already had {num_pieces}/{num_pieces} pieces" in deadline_text
        proc.signal(signal.SIGINT)
        assert proc.wait(30) == 0, proc.describe()
        assert "stopped sharing" in "".join(proc.out) and proc.err == []


def test_ctrl_c_on_get_says_what_was_kept_and_the_rerun_resumes(tmp_path: Path) -> None:
    """Ctrl-C during a get names the verified pieces kept; the same command then says it is resuming."""
    torrent, num_pieces = torrent_of_sample(tmp_path)
    out = tmp_path / "out"
    shutil.copytree(SAMPLE, out / "sample_files")
    noise = out / "sample_files" / "images" / "noise.bin"
    noise.write_bytes(noise.read_bytes()[: noise.stat().st_size // 2])  # half a file: some pieces missing
    args = ["get", str(torrent), "-o", str(out), "--no-dht", "--peer", "127.0.0.1:1", "--host", "127.0.0.32"]
    with processes() as procs:
        first = start(procs, [*args, "--json"], tmp_path / "s")
        checked = first.wait_for_event(lambda e: e["event"] == "checked", 60)
        kept = checked["have_pieces"]
        assert 0 < kept < num_pieces
        listening(first)
        first.signal(signal.SIGINT)
        assert first.wait(30) == 130
        assert len(first.err) == 1, first.err
        assert f"{kept}/{num_pieces} pieces verified" in first.err[0]
        assert "run the same command to resume" in first.err[0]
        second = start(procs, [*args, "--timeout", "1"], tmp_path / "s")
        assert second.wait(60) == 6, second.describe()
        assert f"resuming: kept {kept}/{num_pieces} pieces" in "".join(second.out), second.describe()


def test_share_into_a_closed_pipe_then_ctrl_c_prints_no_broken_pipe(tmp_path: Path) -> None:
    """`share | tee` where tee is gone, then Ctrl-C: exit 0 and no "Broken pipe" on stderr."""
    env = dict(os.environ, P2PSHARE_STATE_DIR=str(tmp_path / "state"), PYTHONUNBUFFERED="1")
    p = subprocess.Popen(
        [sys.executable, "-m", "p2pshare", "share", str(SAMPLE), "--no-dht", "--host", "127.0.0.33"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert p.stdout is not None and p.stderr is not None
        seen = b""
        while b"others run:" not in seen:
            line = p.stdout.readline()
            assert line, seen
            seen += line
        p.stdout.close()  # the reader goes away, as tee does on Ctrl-C
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 0
        err = p.stderr.read().decode()
        assert "Broken pipe" not in err and "Traceback" not in err, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)


def test_json_stream_of_a_sub_second_get(tmp_path: Path) -> None:
    """A quick get by hash: manifest phase after a peer, progress before done, no seeding, no repeats."""
    with processes() as procs:
        sharer = start(
            procs, ["share", str(SAMPLE), "--host", "127.0.0.34", "--no-dht", "--json"], tmp_path / "s1"
        )
        ready = listening(sharer)
        assert sharer.events()[0]["name"] == "sample_files"
        assert "--bootstrap" not in ready["others_run"] and "'magnet:?" in ready["others_run"]
        getter = start(
            procs,
            [
                "get", ready["info_hash"], "-o", str(tmp_path / "out"), "--no-dht",
                "--peer", f"127.0.0.34:{ready['port']}", "--json",
            ],
            tmp_path / "s2",
        )  # fmt: skip
        assert getter.wait(60) == 0, getter.describe()
        events = getter.events()
        seq = names(events)
        assert seq[-1] == "done" and seq[-2] == "progress"
        assert events[-2]["bytes"] == events[-2]["total"] > 0 and "eta" in events[-2]
        assert len(events[-2]["files"]) > 1
        phases = [e["phase"] for e in events if e["event"] == "phase"]
        assert "seeding" not in phases
        assert seq.index("peer_connected") < next(
            i for i, e in enumerate(events) if e.get("phase") == "fetching_metadata"
        )
        found = [(e["count"], e["source"]) for e in events if e["event"] == "peers_found"]
        assert all(a != b for a, b in itertools.pairwise(found))
        versions = {e["version"] for e in events if e["event"] == "start"}
        clients = {e["client"] for e in events if e["event"] == "peer_connected"}
        assert clients == {f"p2pshare {v}" for v in versions}


def test_demo_checks_identity_after_the_final_progress(tmp_path: Path) -> None:
    """In the demo the byte-for-byte check comes after the final progress, and sizes carry units."""
    with processes() as procs:
        demo = start(procs, ["demo", "--peers", "2", "--size", "3MiB", "--json"], tmp_path)
        assert demo.wait(120) == 0, demo.describe()
        events = demo.events()
        final = max(i for i, e in enumerate(events) if e["event"] == "progress")
        verify = next(i for i, e in enumerate(events) if e.get("step") == "verify")
        assert events[final]["bytes"] == events[final]["total"] and final < verify
        payload = next(e for e in events if e.get("step") == "payload")
        assert "3.0 MiB" in payload["message"] and "bytes" not in payload["message"]


def test_share_hands_over_a_whole_command_and_a_qr_code(tmp_path: Path) -> None:
    """The "others run:" line repeats --bootstrap and quotes the magnet; --qr draws the code below it."""
    with processes() as procs:
        args = ["share", str(SAMPLE), "--host", "127.0.0.35", "--bootstrap", "127.0.0.36:9", "--qr"]
        sharer = start(procs, args, tmp_path / "s")
        for _ in range(300):
            if sum(1 for line in sharer.out if line.startswith("█")) > 10:
                break
            assert sharer.p.poll() is None, sharer.describe()
            time.sleep(0.1)
        text = "".join(sharer.out)
        run_line = next(line for line in sharer.out if line.startswith("others run: "))
        words = shlex.split(run_line.removeprefix("others run: "))
        assert words[:2] == ["p2pshare", "get"] and words[2].startswith("magnet:?xt=urn:btih:")
        assert words[3:] == ["--bootstrap", "127.0.0.36:9"]
        assert "magnet     'magnet:?" in text
        qr = [line.rstrip("\n") for line in sharer.out if line.startswith(("█", "▀"))]
        assert len(qr) > 10 and len({len(line) for line in qr}) == 1
        sharer.signal(signal.SIGINT)
        assert sharer.wait(30) == 0
        assert "stopped sharing" in "".join(sharer.out)


def test_finding_peers_says_when_no_dht_node_answers(tmp_path: Path) -> None:
    """A bootstrap node that never answers: the lookups are counted, and the hint names what to give."""
    args = ["get", "ab" * 20, "-o", str(tmp_path / "out"), "--bootstrap", "127.0.0.37:9"]
    args += ["--host", "127.0.0.38", "--timeout", "14", "--json"]
    with processes() as procs:
        getter = start(procs, args, tmp_path / "s")
        assert getter.wait(60) == 6, getter.describe()
    progress = [e for e in getter.events() if e["event"] == "progress"]
    assert progress and progress[-1]["dht_nodes"] == 0 and progress[-1]["dht_lookups"] >= 1
    assert "nothing new arrived for 14 s" in "".join(getter.err)
