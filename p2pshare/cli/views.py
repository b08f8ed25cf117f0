"""How ``share``, ``seed``, ``get``, ``dht`` and ``demo`` show what happens, in one of four modes.

* ``rich``: a live view on stdout when stdout is a terminal (redrawn from status
  snapshots; events print above it, and the view redraws at once after each);
* ``plain``: when stdout is not a terminal, plain lines (no colour, no cursor moves):
  events as they happen and a status line every 2 s when something changed;
* ``json``: newline-delimited JSON events on stdout (schema in the README);
* ``quiet`` (``-q``): only the essential result.

Errors always go to stderr as one line (see :func:`p2pshare.cli.common.handle_errors`);
logs (``-v``) go to stderr too.  A view never touches the engine: it reads snapshots.
Its layout is in :mod:`p2pshare.cli.live`, its JSON in :mod:`p2pshare.cli.json_events`,
its endings (summary, Ctrl-C) in :mod:`p2pshare.cli.endings`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from p2pshare import __version__
from p2pshare.cli import live
from p2pshare.cli.check_view import CheckView
from p2pshare.cli.common import out_console, print_json, settings, stdout_gone
from p2pshare.cli.endings import Endings
from p2pshare.cli.json_events import JsonFilter, progress_dict
from p2pshare.cli.tracker_view import TrackerWatch, tracker_dict, tracker_line
from p2pshare.config import DEFAULT_CONFIG, TerminalConfig
from p2pshare.engine import events as ev
from p2pshare.engine.events import DemoStep, DhtReady, Phase, Ready
from p2pshare.engine.reach_events import ReachabilityNote
from p2pshare.units import human_rate, human_size, human_time

if TYPE_CHECKING:  # the swarm engine loads only when a swarm command runs
    from p2pshare.engine.runner import RunnerEvent, Swarm

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
log = logging.getLogger("p2pshare.cli")


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


class View(CheckView, Endings):
    """Shows one command's events and status in the chosen mode."""

    def __init__(
        self,
        mode: Mode,
        command: str,
        *,
        show_peers: bool = False,
        seed_after: bool = False,
        no_dht: bool = False,
        config: TerminalConfig = DEFAULT_CONFIG.terminal,
    ) -> None:
        self.mode = mode
        self.command = command
        self.show_peers = show_peers
        self.no_dht = no_dht
        self.config = config
        self.swarm: Swarm | None = None
        self.seeding = command in ("share", "seed")
        self.extra_listening: dict[str, Any] = {}
        self.on_ready: Any = None  #: callback(Ready) for a command's headline
        self.down = live.RateMeter(config.rate_window)
        self.up = live.RateMeter(config.rate_window)
        self.filter = JsonFilter(seeding_allowed=self.seeding or seed_after)
        self.final_rate: float | None = None  #: the summary's average, shown on the final frame
        self.started = time.monotonic()
        self._live: Live | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._last_line = ""
        self._last_line_at = 0.0
        self._said_unreachable = False
        self._connected = False
        self._held_manifest = False
        self._closed = False
        self._trackers = TrackerWatch()
        CheckView.__init__(self)

    # ------------------------------------------------------------------ output primitives

    def json(self, obj: dict[str, Any]) -> None:
        if self.mode is Mode.JSON:
            try:
                print_json(obj)
            except BrokenPipeError:
                stdout_gone()

    def line(
        self, text: str, *, essential: bool = False, style: str | None = None, whole: bool = False
    ) -> None:
        """A line for people (rich or plain); in quiet mode only if ``essential``.

        On a terminal a line wider than it is cut in the middle, unless it is ``whole``:
        something to copy (a path, a magnet link, a command), which the terminal may wrap.
        """
        if self.mode is Mode.JSON or (self.mode is Mode.QUIET and not essential):
            return
        try:
            if self.mode is Mode.RICH:
                console = self._live.console if self._live is not None else out_console
                if not whole and "\n" not in text:
                    text = live.middle_ellipsis(text, max(console.width, 20))
                console.print(Text(text, style=style or ""))
                if self._live is not None:
                    self._live.refresh()  # the status below is never older than this line
            else:
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
        except BrokenPipeError:
            stdout_gone()

    def start(self, **fields: Any) -> None:
        self.json({"event": "start", "command": self.command, "version": __version__, **fields})

    # ------------------------------------------------------------------ events

    def event(self, e: RunnerEvent) -> None:
        if self._closed:
            return
        if isinstance(e, ev.PhaseChanged) and e.phase is Phase.DOWNLOADING and self.swarm is not None:
            st = self.swarm.status()
            self._sample(st)
            if self.checked is None and st.have_pieces:  # the torrent checked a magnet's files itself
                self.line(
                    f"resuming: kept {st.have_pieces}/{st.num_pieces} pieces "
                    f"({human_size(st.verified_bytes)}) from the last run"
                )
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
        elif isinstance(e, ReachabilityNote):
            self.json(e.to_dict())
        else:
            for obj in self.filter.pass_through(e):
                self.json(obj)
            if isinstance(e, ev.PhaseChanged) and e.phase is Phase.DOWNLOADING:
                self.json_progress()  # at least one progress event, however short the download

    def _human_event(self, e: RunnerEvent) -> None:
        if isinstance(e, Ready):
            if self.on_ready is not None:
                self.on_ready(e)
        elif isinstance(e, DemoStep):
            text = f"  {e.message}" + (f"  [{e.address}]" if e.address else "")
            self.line(text if self.mode is Mode.PLAIN else "•" + text[1:], style="cyan")
        elif isinstance(e, ev.PhaseChanged):
            quiet_phase = e.phase in (Phase.SEEDING, Phase.CHECKING)
            if e.phase is Phase.FETCHING_METADATA and not self._connected:
                self._held_manifest = True  # said once a peer is there to send it
            elif not self.seeding and not quiet_phase and self.mode is Mode.PLAIN:
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
            self._connected = True
            if self.mode is Mode.PLAIN or settings.verbose:
                self.line(f"peer {e.address} connected ({e.client})")
            if self._held_manifest and self.mode is Mode.PLAIN:
                self._held_manifest = False
                self.line(f"{PHASES[Phase.FETCHING_METADATA]}...")
        elif isinstance(e, ev.PeerDisconnected):
            if settings.verbose:
                self.line(f"peer {e.address} left: {e.reason}")
        elif isinstance(e, ev.PeerBanned):
            self.line(f"peer {e.address} banned: {e.reason}", style="yellow")
        elif isinstance(e, ev.PieceFailed):
            self.line(f"piece {e.index} failed its hash check; fetching it again", style="yellow")
        elif isinstance(e, ReachabilityNote) and (not e.ok or self.mode is Mode.PLAIN or settings.verbose):
            self.line(e.message, style=None if e.ok else "yellow")

    # ------------------------------------------------------------------ live status

    def attach(self, swarm: Swarm) -> None:
        """Start showing ``swarm``'s snapshots (called by the runner once the torrent exists)."""
        self.swarm = swarm
        self._sample(swarm.status())
        if self.mode is Mode.RICH:
            self._start_live()
        if self.mode in (Mode.RICH, Mode.PLAIN, Mode.JSON) and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(), name="view")

    def _start_live(self) -> None:
        if self._live is None and self.swarm is not None:
            self._live = Live(
                get_renderable=self._render,
                console=out_console,
                refresh_per_second=self.config.live_refresh,
                transient=False,
                redirect_stderr=False,
            )
            self._live.start()

    def _stop_live(self) -> None:
        if self._live is not None:
            live_view, self._live = self._live, None
            try:
                live_view.stop()
            except BrokenPipeError:
                stdout_gone()

    def _sample(self, st: ev.TorrentStatus) -> None:
        self.down.add(st.downloaded)
        self.up.add(st.uploaded)

    def rates(self, st: ev.TorrentStatus) -> tuple[float, float, float | None]:
        """Live down rate, up rate, and the ETA they give."""
        down = self.final_rate if self.final_rate is not None else self.down.rate()
        left = st.total_size - st.verified_bytes
        eta = 0.0 if left <= 0 and st.total_size else (left / down if down > 1 else None)
        return down, self.up.rate(), eta

    def json_progress(self) -> None:
        if self.swarm is None:
            return
        st = self.swarm.status()
        self._sample(st)
        down, up, eta = self.rates(st)
        search = self.swarm.dht_search() if st.name is None or not st.peers else None
        self.json(progress_dict(st, down, up, eta, search))

    async def _tick_loop(self) -> None:
        cfg = self.config
        interval = {Mode.JSON: cfg.json_interval, Mode.PLAIN: cfg.plain_interval}.get(self.mode, 0.25)
        while True:
            await asyncio.sleep(interval)
            if self.swarm is None or self._closed:
                continue
            try:
                for t in self._trackers.changes(self.swarm):
                    self.json(tracker_dict(t))
                    self.line(tracker_line(t))
                if self.mode is Mode.JSON:
                    self.json_progress()
                elif self.mode is Mode.PLAIN:
                    st = self.swarm.status()
                    self._sample(st)
                    self._plain_status(st)
                else:
                    self._sample(self.swarm.status())
            except Exception:  # a view bug must never stop the transfer
                log.exception("status view failed")

    def _finding(self, st: ev.TorrentStatus) -> bool:
        return not self.seeding and (
            st.phase in (Phase.STARTING, Phase.FINDING_PEERS)
            or (st.name is None and not st.peers)
            or (not st.peers and st.downloaded == 0 and st.verified_bytes < st.total_size)
        )

    def _plain_status(self, st: ev.TorrentStatus) -> None:
        now = time.monotonic()
        if self._finding(st):
            if now - self._last_line_at < self.config.finding_interval:
                return
            text = "  ·  ".join(self._finding_parts(st))
        else:
            text = self._status_text(st)
        if text != self._last_line or now - self._last_line_at > 60:
            self._last_line, self._last_line_at = text, now
            self.line(text)
        self._maybe_unreachable()

    def _finding_parts(self, st: ev.TorrentStatus) -> list[str]:
        search = self.swarm.dht_search() if self.swarm is not None else None
        return live.finding_text(time.monotonic() - self.started, st.known_peers, search, self.no_dht)

    def _maybe_unreachable(self) -> None:
        search = self.swarm.dht_search() if self.swarm is not None else None
        if search is not None and search.unreachable and not self._said_unreachable:
            self._said_unreachable = True
            self.line(live.unreachable_hint(), style="yellow")

    def _status_text(self, st: ev.TorrentStatus) -> str:
        down, up, eta = self.rates(st)
        n = len(st.peers)
        if self.seeding:
            ratio = st.uploaded / st.total_size if st.total_size else 0.0
            return (
                f"seeding: {n} peer(s), uploaded {human_size(st.uploaded)} (ratio {ratio:.2f}), "
                f"up {human_rate(up)}"
            )
        if st.name is None:
            return f"fetching the manifest from {n} peer(s)"
        return (
            f"{PHASES.get(st.phase, st.phase)}: {live.pct(st.verified_bytes, st.total_size):5.1f}% "
            f"{human_size(st.verified_bytes)}/{human_size(st.total_size)}  {human_rate(down)}  "
            f"peers {n}  ETA {human_time(eta)}"
        )

    # ------------------------------------------------------------------ rich rendering

    def _render(self) -> RenderableType:
        if self.swarm is None:
            return Text("")
        st = self.swarm.status()
        if self.final_rate is None:
            self._sample(st)
        width = max(out_console.width, 20)
        height = max(out_console.height, 10)
        parts: list[RenderableType] = []
        reach = self.swarm.reach_summary()
        if self.seeding:
            parts.append(Text(live.middle_ellipsis(self._status_text(st), width), style="bold", no_wrap=True))
            if reach:
                parts.append(Text(live.middle_ellipsis(reach, width), style="dim", no_wrap=True))
            parts.append(self._peer_table(st, seeding=True, rows=max(height - 6 - (1 if reach else 0), 1)))
            return Group(*parts)
        down, up, eta = self.rates(st)
        if st.phase is Phase.CHECKING:  # the torrent checks a magnet's files itself: not downloading
            label = live.middle_ellipsis(f"checking the files of {st.name} already on disk", width - 2)
            return Group(Spinner("dots", Text(label, no_wrap=True)))
        if self._finding(st):
            text = live.fit_parts(self._finding_parts(st), width - 2, "  ·  ")
            parts.append(Spinner("dots", Text(text, no_wrap=True)))
            search = self.swarm.dht_search()
            if search is not None and search.unreachable:
                parts.append(Text(live.middle_ellipsis(live.unreachable_hint(), width), style="yellow"))
        elif st.name is None:
            parts.append(Spinner("dots", Text(f"fetching the manifest from {len(st.peers)} peer(s)")))
        if st.name is not None:
            parts.extend(
                live.progress_rows(st.name, st.verified_bytes, st.total_size, down, eta, len(st.peers), width)
            )
            budget = min(MAX_FILE_ROWS, height - 8 - (MAX_PEER_ROWS if self.show_peers else 0))
            files = live.file_rows(st.file_progress, width, max(budget, 3))
            if files is not None:
                parts.append(files)
        if st.name is not None:  # before the manifest there are no pieces to count
            parts.append(Text(live.fit_parts(live.summary_parts(st, up), width, "  ·  "), style="dim"))
        if reach:
            parts.append(Text(live.middle_ellipsis(reach, width), style="dim", no_wrap=True))
        if self.show_peers:
            parts.append(self._peer_table(st, seeding=False, rows=max(min(MAX_PEER_ROWS, height - 10), 1)))
        return Group(*parts)

    def _peer_table(self, st: ev.TorrentStatus, *, seeding: bool, rows: int) -> Table:
        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("peer", no_wrap=True, overflow="ellipsis")
        table.add_column("client", no_wrap=True, overflow="ellipsis")
        if not seeding:
            table.add_column("down", justify="right", no_wrap=True)
        table.add_column("up", justify="right", no_wrap=True)
        table.add_column("has", justify="right", no_wrap=True)
        peers = sorted(st.peers, key=lambda p: (-(p.down_rate + p.up_rate), p.address))[:rows]
        for p in peers:
            has = f"{live.pct(p.pieces, st.num_pieces):.0f}%" if st.num_pieces else "?"
            row = [p.address, p.client]
            if not seeding:
                row.append(human_rate(p.down_rate))
            row += [human_rate(p.up_rate), has]
            table.add_row(*row)
        if not st.peers:
            note = "(no peers connected)" if st.phase is Phase.SEEDING else "(no peers connected yet)"
            table.add_row(note, "", *([""] * (3 if seeding else 4))[:-1])
        return table
