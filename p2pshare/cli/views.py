"""How ``share``, ``get``, ``dht`` and ``demo`` show what happens, in one of four modes.

* ``rich``: a live view on stdout when stdout is a terminal (redrawn 4 times a second
  from status snapshots; events print above it);
* ``plain``: when stdout is not a terminal, plain lines (no colour, no cursor moves):
  events as they happen and a status line every 2 s when something changed;
* ``json``: newline-delimited JSON events on stdout (schema in the README);
* ``quiet`` (``-q``): only the essential result.

Errors always go to stderr as one line (see :func:`p2pshare.cli.common.handle_errors`);
logs (``-v``) go to stderr too.  A view never touches the engine: it reads snapshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from p2pshare import __version__
from p2pshare.cli.common import out_console, print_json, settings
from p2pshare.cli.tracker_view import TrackerWatch, tracker_dict, tracker_line
from p2pshare.engine import events as ev
from p2pshare.engine.events import DemoStep, DhtReady, Phase, Ready
from p2pshare.errors import ExitCode, P2PShareError

if TYPE_CHECKING:  # the swarm engine loads only when a swarm command runs
    from p2pshare.engine.runner import DownloadResult, RunnerEvent, Swarm

__all__ = ["Mode", "View", "choose_mode", "human_rate", "human_size", "human_time"]

PHASES: dict[Phase, str] = {
    Phase.STARTING: "starting",
    Phase.FINDING_PEERS: "finding peers",
    Phase.FETCHING_METADATA: "fetching the manifest",
    Phase.CHECKING: "checking existing files",
    Phase.DOWNLOADING: "downloading",
    Phase.SEEDING: "seeding",
}
MAX_FILE_ROWS = 10
MAX_PEER_ROWS = 20


class Mode(StrEnum):
    RICH = "rich"
    PLAIN = "plain"
    JSON = "json"
    QUIET = "quiet"


def choose_mode(json_output: bool) -> Mode:
    """--json wins; then -q; then a terminal on stdout gets the live view, anything else plain lines."""
    if json_output:
        return Mode.JSON
    if settings.quiet:
        return Mode.QUIET
    return Mode.RICH if sys.stdout.isatty() else Mode.PLAIN


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.0f} B"


def human_rate(rate: float) -> str:
    return f"{human_size(rate)}/s"


def human_time(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _eta(st: ev.TorrentStatus) -> float | None:
    left = st.total_size - st.verified_bytes
    return left / st.down_rate if st.down_rate > 1 else None


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def progress_dict(st: ev.TorrentStatus) -> dict[str, Any]:
    """The JSON ``progress`` event for a snapshot."""
    return {
        "event": "progress",
        "phase": st.phase,
        "bytes": st.verified_bytes,
        "total": st.total_size,
        "rate": round(st.down_rate, 1),
        "up_rate": round(st.up_rate, 1),
        "downloaded": st.downloaded,
        "uploaded": st.uploaded,
        "peers": len(st.peers),
        "known_peers": st.known_peers,
        "pieces": st.have_pieces,
        "num_pieces": st.num_pieces,
        "pieces_failed": st.pieces_failed,
    }


def result_dict(result: DownloadResult) -> dict[str, Any]:
    """The JSON ``done`` event for a finished download."""
    return {
        "event": "done",
        "info_hash": result.info_hash,
        "name": result.name,
        "total_size": result.total_size,
        "num_pieces": result.num_pieces,
        "elapsed": round(result.elapsed, 3),
        "rate": round(result.rate, 1),
        "peers_used": result.peers_used,
        "pieces_failed": result.pieces_failed,
        "downloaded": result.downloaded,
        "uploaded": result.uploaded,
        "path": str(result.path),
        "verified": True,
    }


def error_kind(code: int) -> str:
    try:
        return ExitCode(code).name.lower()
    except ValueError:
        return "error"


class View:
    """Shows one command's events and status in the chosen mode."""

    def __init__(self, mode: Mode, command: str, *, show_peers: bool = False) -> None:
        self.mode = mode
        self.command = command
        self.show_peers = show_peers
        self.swarm: Swarm | None = None
        self.seeding = command == "share"
        self.extra_listening: dict[str, Any] = {}
        self.on_ready: Any = None  #: callback(Ready) for a command's headline
        self._live: Live | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._last_line = ""
        self._last_line_at = 0.0
        self._closed = False
        self._trackers = TrackerWatch()

    # ------------------------------------------------------------------ output primitives

    def json(self, obj: dict[str, Any]) -> None:
        if self.mode is Mode.JSON:
            print_json(obj)

    def line(self, text: str, *, essential: bool = False, style: str | None = None) -> None:
        """A line for people (rich or plain); in quiet mode only if ``essential``."""
        if self.mode is Mode.JSON or (self.mode is Mode.QUIET and not essential):
            return
        if self.mode is Mode.RICH:
            console = self._live.console if self._live is not None else out_console
            console.print(Text(text, style=style or ""))
        else:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def start(self, **fields: Any) -> None:
        self.json({"event": "start", "command": self.command, "version": __version__, **fields})

    # ------------------------------------------------------------------ events

    def event(self, e: RunnerEvent) -> None:
        if self._closed:
            return
        if self.mode is Mode.JSON:
            self._json_event(e)
        else:
            self._human_event(e)

    def _json_event(self, e: RunnerEvent) -> None:
        if isinstance(e, Ready):
            if self.on_ready is not None:
                self.on_ready(e)  # may add fields (the magnet link) to the event
            self.json(
                {
                    "event": "listening",
                    "info_hash": e.info_hash,
                    "host": e.host,
                    "port": e.port,
                    "dht_port": e.dht_port,
                    **self.extra_listening,
                }
            )
        elif isinstance(e, DemoStep):
            self.json({"event": "demo", "step": e.kind, "message": e.message, "address": e.address})
        elif isinstance(e, DhtReady | ev.PieceVerified | ev.Completed | ev.Listening):
            return
        else:
            self.json(ev.event_to_dict(e))

    def _human_event(self, e: RunnerEvent) -> None:
        if isinstance(e, Ready):
            if self.on_ready is not None:
                self.on_ready(e)
        elif isinstance(e, DemoStep):
            text = f"  {e.message}" + (f"  [{e.address}]" if e.address else "")
            self.line(text if self.mode is Mode.PLAIN else "•" + text[1:], style="cyan")
        elif isinstance(e, ev.PhaseChanged):
            if not self.seeding and e.phase is not Phase.SEEDING and self.mode is Mode.PLAIN:
                self.line(f"{PHASES.get(e.phase, e.phase)}...")
        elif isinstance(e, ev.PeersFound):
            if not self.seeding and self.mode is Mode.PLAIN:
                self.line(f"found {e.count} peer address(es) ({e.source})")
        elif isinstance(e, ev.MetadataReceived):
            self.line(
                f"manifest received: {e.name}, {human_size(e.total_size)} in {e.num_pieces} pieces",
                style="green",
            )
        elif isinstance(e, ev.PeerConnected):
            if self.mode is Mode.PLAIN or settings.verbose:
                self.line(f"peer {e.address} connected ({e.client})")
        elif isinstance(e, ev.PeerDisconnected):
            if settings.verbose:
                self.line(f"peer {e.address} left: {e.reason}")
        elif isinstance(e, ev.PeerBanned):
            self.line(f"peer {e.address} banned: {e.reason}", style="yellow")
        elif isinstance(e, ev.PieceFailed):
            self.line(f"piece {e.index} failed its hash check; fetching it again", style="yellow")

    # ------------------------------------------------------------------ live status

    def attach(self, swarm: Swarm) -> None:
        """Start showing ``swarm``'s snapshots (called by the runner once the torrent exists)."""
        self.swarm = swarm
        if self.mode is Mode.RICH:
            self._start_live()
        if self.mode in (Mode.RICH, Mode.PLAIN, Mode.JSON) and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(), name="view")

    def _start_live(self) -> None:
        if self._live is None and self.swarm is not None:
            self._live = Live(
                get_renderable=self._render,
                console=out_console,
                refresh_per_second=4,
                transient=False,
                redirect_stderr=False,
            )
            self._live.start()

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    async def _tick_loop(self) -> None:
        interval = {Mode.JSON: 1.0, Mode.PLAIN: 2.0}.get(self.mode, 0.5)
        while True:
            await asyncio.sleep(interval)
            if self.swarm is None or self._closed:
                continue
            try:
                st = self.swarm.status()
                for t in self._trackers.changes(self.swarm):
                    self.json(tracker_dict(t))
                    self.line(tracker_line(t))
                if self.mode is Mode.JSON:
                    self.json(progress_dict(st))
                elif self.mode is Mode.PLAIN:
                    self._plain_status(st)
            except Exception:  # a view bug must never stop the transfer
                import logging

                logging.getLogger("p2pshare.cli").exception("status view failed")

    def _plain_status(self, st: ev.TorrentStatus) -> None:
        text = self._status_text(st)
        now = time.monotonic()
        if text != self._last_line or now - self._last_line_at > 60:
            self._last_line, self._last_line_at = text, now
            self.line(text)

    def _status_text(self, st: ev.TorrentStatus) -> str:
        n = len(st.peers)
        if self.seeding:
            ratio = st.uploaded / st.total_size if st.total_size else 0.0
            return (
                f"seeding: {n} peer(s), uploaded {human_size(st.uploaded)} (ratio {ratio:.2f}), "
                f"up {human_rate(st.up_rate)}"
            )
        if st.name is None:
            if n == 0:
                return f"finding peers: {st.known_peers} found"
            return f"fetching the manifest from {n} peer(s)"
        if n == 0 and st.verified_bytes < st.total_size:
            return (
                f"finding peers: {st.known_peers} found; {_pct(st.verified_bytes, st.total_size):.1f}% "
                f"of {human_size(st.total_size)} already here"
            )
        return (
            f"{PHASES.get(st.phase, st.phase)}: {_pct(st.verified_bytes, st.total_size):5.1f}% "
            f"{human_size(st.verified_bytes)}/{human_size(st.total_size)}  {human_rate(st.down_rate)}  "
            f"peers {n}  ETA {human_time(_eta(st))}"
        )

    # ------------------------------------------------------------------ rich rendering

    def _render(self) -> RenderableType:
        if self.swarm is None:
            return Text("")
        st = self.swarm.status()
        parts: list[RenderableType] = []
        if self.seeding:
            parts.append(Text(self._status_text(st), style="bold"))
            parts.append(self._peer_table(st, seeding=True))
            return Group(*parts)
        if st.name is None or (not st.peers and st.verified_bytes < st.total_size and st.downloaded == 0):
            parts.append(Spinner("dots", Text(self._status_text(st))))
        if st.name is not None:
            bar = Table.grid(padding=(0, 1))
            bar.add_row(
                Text(f"{st.name}", style="bold"),
                ProgressBar(total=max(st.total_size, 1), completed=st.verified_bytes, width=36),
                Text(f"{_pct(st.verified_bytes, st.total_size):5.1f}%"),
                Text(f"{human_size(st.verified_bytes)}/{human_size(st.total_size)}"),
                Text(human_rate(st.down_rate), style="green"),
                Text(f"ETA {human_time(_eta(st))}"),
            )
            parts.append(bar)
            files = self._file_rows(st)
            if files is not None:
                parts.append(files)
        parts.append(
            Text(
                f"peers: {len(st.peers)} connected, {st.known_peers} known  ·  "
                f"down {human_rate(st.down_rate)}  up {human_rate(st.up_rate)}  ·  "
                f"pieces {st.have_pieces}/{st.num_pieces}, {st.pieces_failed} failed",
                style="dim",
            )
        )
        if self.show_peers:
            parts.append(self._peer_table(st, seeding=False))
        return Group(*parts)

    def _file_rows(self, st: ev.TorrentStatus) -> Table | None:
        if len(st.file_progress) < 2:
            return None
        rows = list(st.file_progress)

        def order(row: tuple[str, int, int]) -> int:
            _, done, length = row
            return 0 if 0 < done < length else (1 if done < length else 2)

        shown = sorted(rows, key=order)[:MAX_FILE_ROWS]
        table = Table.grid(padding=(0, 1))
        for path, done, length in shown:
            table.add_row(
                Text(f"  {path}", overflow="ellipsis", no_wrap=True),
                ProgressBar(total=max(length, 1), completed=done if length else 1, width=20),
                Text(f"{_pct(done, length) if length else 100.0:5.1f}%"),
                Text(human_size(length), style="dim"),
            )
        if len(rows) > len(shown):
            complete = sum(1 for _, d, n in rows if d >= n)
            table.add_row(Text(f"  ... and {len(rows) - len(shown)} more files ({complete} complete in all)"))
        return table

    def _peer_table(self, st: ev.TorrentStatus, *, seeding: bool) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("peer")
        table.add_column("client")
        if not seeding:
            table.add_column("down", justify="right")
        table.add_column("up", justify="right")
        table.add_column("has", justify="right")
        peers = sorted(st.peers, key=lambda p: -(p.down_rate + p.up_rate))[:MAX_PEER_ROWS]
        for p in peers:
            has = f"{_pct(p.pieces, st.num_pieces):.0f}%" if st.num_pieces else "?"
            row = [p.address, p.client]
            if not seeding:
                row.append(human_rate(p.down_rate))
            row += [human_rate(p.up_rate), has]
            table.add_row(*row)
        if not st.peers:
            note = "(no peers connected)" if st.phase is Phase.SEEDING else "(no peers connected yet)"
            table.add_row(note, "", *([""] * (3 if seeding else 4))[:-1])
        return table

    # ------------------------------------------------------------------ endings

    def done(self, result: DownloadResult, **extra: Any) -> None:
        """Show the summary of a finished download (``extra`` fields go into the JSON event)."""
        self._stop_live()
        if self.mode is Mode.JSON:
            self.json({**result_dict(result), **extra})
        else:
            who = f"from {result.peers_used} peer(s)"
            self.line(
                f"done: {result.name}, {human_size(result.total_size)} in {human_time(result.elapsed)} "
                f"({human_rate(result.rate)} average) {who}",
                essential=True,
                style="bold green",
            )
            self.line(
                f"  {result.num_pieces} pieces, all verified; {result.pieces_failed} failed and fetched again"
            )
            if result.contributions and len(result.contributions) > 1:
                share = ", ".join(
                    f"{host} {_pct(n, sum(result.contributions.values())):.0f}%"
                    for host, n in sorted(result.contributions.items())
                )
                self.line(f"  pieces came from: {share}")
            if self.command == "demo":
                self.line(f"  downloaded into {result.path} (a temporary folder, removed at the end)")
            else:
                self.line(f"  saved in {result.path}", essential=True)
        self._last_line = ""

    def start_seeding(self) -> None:
        """After a download with --seed: switch to the seeding view."""
        self.seeding = True
        self.line("seeding until Ctrl-C")
        if self.mode is Mode.RICH:
            self._start_live()

    def error(self, exc: BaseException) -> None:
        """Report a failure (the one-line message on stderr comes from handle_errors)."""
        self._stop_live()
        code = exc.exit_code if isinstance(exc, P2PShareError) else ExitCode.ERROR
        self.json({"event": "error", "code": int(code), "kind": error_kind(code), "message": str(exc)})

    def interrupted(self) -> None:
        self._stop_live()
        st = self.swarm.status() if self.swarm is not None else None
        if self.seeding:
            fields = {"uploaded": st.uploaded} if st is not None else {}
            self.json({"event": "stopped", "reason": "interrupted", **fields})
            if st is not None:
                self.line(f"stopped: uploaded {human_size(st.uploaded)} in all")
        else:
            self.json(
                {
                    "event": "error",
                    "code": int(ExitCode.INTERRUPTED),
                    "kind": "interrupted",
                    "message": "interrupted",
                }
            )

    def close(self) -> None:
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self._stop_live()

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Report errors and Ctrl-C in this view's mode, then let handle_errors exit."""
        try:
            yield
        except KeyboardInterrupt:
            self.interrupted()
            raise
        except BaseException as exc:
            if not isinstance(exc, SystemExit | GeneratorExit | typer.Exit):
                self.error(exc)
            raise
        finally:
            self.close()
