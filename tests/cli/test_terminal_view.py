"""The live view drawn from snapshots at 80x24 and 160x48, the JSON filter, and the summary."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from p2pshare.cli import common, views
from p2pshare.cli.endings import summary_lines
from p2pshare.cli.json_events import JsonFilter, progress_dict
from p2pshare.engine import events as ev
from p2pshare.engine.events import Phase
from p2pshare.engine.runner import DownloadResult
from p2pshare.units import MIB

LONG = "The.Very.Long.Name.Of.A.Linux.Distribution.Image.Nobody.Can.Read.At.Once-2026.11-amd64.iso"
FILES = tuple(
    (f"folder/{'sub-' * 12}with-a-long-tail-file-{i:02d}.bin", d, 40 * MIB)
    for i, d in enumerate([40 * MIB, 12 * MIB, 0, 0, 40 * MIB, 0, 0, 0, 0, 0, 0, 0, 0, 0])
)


def peer(i: int) -> ev.PeerStatus:
    return ev.PeerStatus(
        f"127.0.0.{i}:6881", "p2pshare 0.1.0", 3.5 * MIB, 0.0, 9 * MIB, 0, 100, False, True, True, False, True
    )


def status(**kw: Any) -> ev.TorrentStatus:
    base: dict[str, Any] = dict(
        info_hash="ab" * 20,
        name=LONG,
        phase=Phase.DOWNLOADING,
        total_size=14 * 40 * MIB,
        num_pieces=2240,
        have_pieces=370,
        verified_bytes=92 * MIB,
        downloaded=123_456_789,
        uploaded=0,
        down_rate=0.0,
        up_rate=0.0,
        peers=tuple(peer(i) for i in range(2, 6)),
        known_peers=12,
        pieces_failed=1,
        file_progress=FILES,
    )
    base.update(kw)
    return ev.TorrentStatus(**base)


class FakeSwarm:
    def __init__(self, st: ev.TorrentStatus, search: ev.DhtSearch | None = None) -> None:
        self.st = st
        self.search = search

    def status(self) -> ev.TorrentStatus:
        return self.st

    def dht_search(self) -> ev.DhtSearch | None:
        return self.search


def draw(view: views.View, width: int, height: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    console = Console(file=io.StringIO(), width=width, height=height, color_system=None, legacy_windows=False)
    monkeypatch.setattr(views, "out_console", console)
    console.print(view._render())
    return console.file.getvalue().rstrip("\n").split("\n")  # type: ignore[attr-defined]


@pytest.mark.parametrize(("width", "height"), [(80, 24), (160, 48)])
@pytest.mark.parametrize("show_peers", [False, True])
def test_no_line_of_the_live_view_passes_the_width(
    width: int, height: int, show_peers: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every drawn line fits the terminal and the frame fits its height, with or without --peers."""
    view = views.View(views.Mode.RICH, "get", show_peers=show_peers)
    view.swarm = FakeSwarm(status())  # type: ignore[assignment]
    lines = draw(view, width, height, monkeypatch)
    assert all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]
    assert len(lines) <= height
    assert any("%" in line for line in lines)


def test_long_names_keep_their_start_and_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns the name is cut in the middle: its start and its extension stay."""
    view = views.View(views.Mode.RICH, "get")
    view.swarm = FakeSwarm(status())  # type: ignore[assignment]
    head = draw(view, 80, 24, monkeypatch)[0]
    name = head.split(" ")[0]
    assert name.startswith("The.Very.Long") and name.endswith("amd64.iso") and "…" in name
    assert "file-01.bin" in "\n".join(draw(view, 80, 24, monkeypatch))


def test_file_rows_keep_the_torrents_order_and_bars_their_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """File rows come in the torrent's order whatever their progress, each bar equally wide."""
    view = views.View(views.Mode.RICH, "get")
    view.swarm = FakeSwarm(status())  # type: ignore[assignment]
    rows = [line for line in draw(view, 80, 24, monkeypatch) if "file-" in line]
    numbers = [int(line.split("file-")[1][:2]) for line in rows]
    assert numbers == sorted(numbers) and len(numbers) >= 3
    assert len({line.index("%") for line in rows}) == 1  # fixed-width columns: the percentages align


def test_the_rate_shows_from_the_first_redraw(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two snapshots 0.25 s apart already give a non-zero rate and an ETA."""
    view = views.View(views.Mode.RICH, "get")
    view.down.add(0, now=0.0)
    view.down.add(25 * MIB, now=0.25)
    view.swarm = FakeSwarm(status(downloaded=25 * MIB))  # type: ignore[assignment]
    down, _, eta = view.rates(view.swarm.status())  # type: ignore[union-attr]
    assert down == pytest.approx(100 * MIB)
    assert eta is not None and eta > 0


def test_finding_peers_shows_time_dht_nodes_and_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """While finding peers: elapsed time, addresses, DHT nodes and lookups; a hint when no node answered."""
    view = views.View(views.Mode.RICH, "get")
    st = status(name=None, phase=Phase.FINDING_PEERS, peers=(), total_size=0, file_progress=())
    view.swarm = FakeSwarm(st, ev.DhtSearch(nodes=35, lookups_done=2, lookups_running=1, peers_found=0))  # type: ignore[assignment]
    text = "\n".join(draw(view, 80, 24, monkeypatch))
    assert "finding peers 0:0" in text and "12 addresses" in text
    assert "DHT 35 nodes" in text and "2 lookups done" in text
    view.swarm = FakeSwarm(st, ev.DhtSearch(nodes=0, lookups_done=1, lookups_running=0, peers_found=0))  # type: ignore[assignment]
    text = "\n".join(draw(view, 80, 24, monkeypatch))
    assert "no DHT node could be reached" in text and "--bootstrap" in text
    assert "pieces" not in text  # no piece count before the manifest


def test_a_known_manifest_never_shows_finding_peers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the manifest is in and data flows, the status line is the download's, not "finding peers"."""
    view = views.View(views.Mode.RICH, "get")
    view.swarm = FakeSwarm(status())  # type: ignore[assignment]
    assert "finding peers" not in "\n".join(draw(view, 80, 24, monkeypatch))


def test_json_filter_keeps_the_stream_honest() -> None:
    """fetching_metadata waits for a peer, repeated peers_found and a get's seeding phase are dropped."""
    f = JsonFilter(seeding_allowed=False)
    assert f.pass_through(ev.PhaseChanged(Phase.FETCHING_METADATA)) == []
    assert [d["event"] for d in f.pass_through(ev.PeersFound(3, "dht"))] == ["peers_found"]
    assert f.pass_through(ev.PeersFound(3, "dht")) == []
    assert [d["event"] for d in f.pass_through(ev.PeersFound(4, "dht"))] == ["peers_found"]
    out = f.pass_through(ev.PeerConnected("1.2.3.4:5", "x"))
    assert [(d["event"], d.get("phase")) for d in out] == [
        ("peer_connected", None),
        ("phase", "fetching_metadata"),
    ]
    assert f.pass_through(ev.PhaseChanged(Phase.SEEDING)) == []
    f.allow_seeding()
    assert f.pass_through(ev.PhaseChanged(Phase.SEEDING)) == [{"event": "phase", "phase": Phase.SEEDING}]


def test_progress_event_has_eta_and_per_file_progress() -> None:
    """A multi-file progress event carries eta and one entry per file."""
    d = progress_dict(status(), 10 * MIB, 0.0, 46.8)
    assert d["eta"] == 46.8 and d["rate"] == 10 * MIB
    assert [f["path"] for f in d["files"]] == [p for p, _, _ in FILES]
    assert "files" not in progress_dict(status(file_progress=()), 0.0, 0.0, None)


def result(**kw: Any) -> DownloadResult:
    base: dict[str, Any] = dict(
        info_hash="ab" * 20,
        name="big.iso",
        total_size=1536 * 2 * MIB,
        num_pieces=1536,
        elapsed=14.0,
        downloaded=967 * 2 * MIB,
        uploaded=0,
        peers_used=3,
        pieces_failed=0,
        wasted=0,
        out_dir=Path("/tmp"),
        had_pieces=569,
        had_bytes=569 * 2 * MIB,
        transfer_time=10.0,
    )
    base.update(kw)
    return DownloadResult(**base)


def test_summary_says_what_was_here_what_came_and_the_transfers_own_average() -> None:
    """The summary's average is the fetched bytes over the transfer time: what the live rate showed."""
    lines = summary_lines(result())
    text = "\n".join(lines)
    assert "already had 569 pieces (1.1 GiB)" in text
    assert "downloaded 1.9 GiB in 10.0 s (193.4 MiB/s average) from 3 peer(s)" in text
    assert all(len(line) <= 80 for line in lines)


def test_summary_of_a_complete_folder_downloads_nothing() -> None:
    """Files already complete: the summary says so instead of a giant average."""
    text = "\n".join(summary_lines(result(had_pieces=1536, had_bytes=1536 * 2 * MIB, transfer_time=0.0)))
    assert "already complete: nothing to download" in text and "average" not in text


def test_json_print_survives_a_closed_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed stdout while printing JSON is not an error: the view redirects it and goes on."""
    calls: list[int] = []

    def broken(obj: object) -> None:
        raise BrokenPipeError

    monkeypatch.setattr(views, "print_json", broken)
    monkeypatch.setattr(views, "stdout_gone", lambda: calls.append(1))
    views.View(views.Mode.JSON, "share").json({"event": "x"})
    assert calls == [1]
    assert common.stdout_gone is not None


def test_checking_is_not_shown_as_a_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the torrent checks files on disk, the view says so instead of 0 % and a 0 rate."""
    view = views.View(views.Mode.RICH, "get")
    view.swarm = FakeSwarm(status(phase=Phase.CHECKING, name="big.iso"))  # type: ignore[assignment]
    text = "\n".join(draw(view, 80, 24, monkeypatch))
    assert "checking the files of big.iso" in text and "MiB/s" not in text


def test_plain_mode_says_fetching_the_manifest_once_a_peer_is_there(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Plain lines: "fetching the manifest" waits for the first connected peer."""
    view = views.View(views.Mode.PLAIN, "get")
    view.event(ev.PhaseChanged(Phase.FETCHING_METADATA))
    assert "fetching the manifest" not in capsys.readouterr().out
    view.event(ev.PeerConnected("127.0.0.3:6881", "p2pshare 0.1.0"))
    out = capsys.readouterr().out.splitlines()
    assert out == ["peer 127.0.0.3:6881 connected (p2pshare 0.1.0)", "fetching the manifest..."]


def test_checking_bar_has_its_own_label_and_rate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The checking bar says "checking NAME", shows bytes checked and a rate, and fits 80 columns."""
    from p2pshare.cli import check_view
    from p2pshare.engine.checking import CheckStarted

    view = views.View(views.Mode.PLAIN, "seed")
    view.label = LONG
    view.check_started(CheckStarted(total_size=300 * MIB, num_pieces=1200, to_hash=300 * MIB, resumed=False))
    assert "checking 300.0 MiB of 300.0 MiB already on disk" in capsys.readouterr().out
    view._check_started -= 2.0  # two seconds ago
    view.check_advance(100 * MIB)
    console = Console(file=io.StringIO(), width=80, height=24, color_system=None)
    monkeypatch.setattr(check_view, "out_console", console)
    console.print(view._check_render())
    lines = console.file.getvalue().rstrip("\n").split("\n")  # type: ignore[attr-defined]
    assert lines[0].startswith("checking The.Very") and lines[0].rstrip().endswith("33.3%")
    assert re.match(r"100\.0 MiB/300\.0 MiB  (49\.\d|50\.0) MiB/s  ETA 0:0[45]$", lines[1].rstrip()), lines
    assert "peers" not in lines[1] and all(len(line) <= 80 for line in lines)


def test_a_resumed_magnet_download_says_how_much_was_kept(capsys: pytest.CaptureFixture[str]) -> None:
    """When the torrent found pieces on disk itself (a magnet), the start of the download says so."""
    view = views.View(views.Mode.PLAIN, "get")
    view.swarm = FakeSwarm(status(have_pieces=370, verified_bytes=92 * MIB))  # type: ignore[assignment]
    view.event(ev.PhaseChanged(Phase.DOWNLOADING))
    assert "resuming: kept 370/2240 pieces (92.0 MiB) from the last run" in capsys.readouterr().out
    fresh = views.View(views.Mode.PLAIN, "get")
    fresh.swarm = FakeSwarm(status(have_pieces=0, verified_bytes=0))  # type: ignore[assignment]
    fresh.event(ev.PhaseChanged(Phase.DOWNLOADING))
    assert "resuming" not in capsys.readouterr().out
