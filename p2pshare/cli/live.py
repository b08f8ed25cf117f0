"""The live view's lines, laid out for the terminal's width: nothing wraps, no number is cut.

Every line is built from whole parts: a part that does not fit is dropped, never cut
mid-number; a long name keeps its start and end with an ellipsis in the middle.  File
rows keep the torrent's order and every bar has a fixed width.  The live rate comes
from snapshots (:class:`RateMeter`), so it shows from the first redraw on.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from p2pshare.engine import events as ev
from p2pshare.units import human_rate, human_size, human_time, middle_ellipsis

__all__ = ["RateMeter", "fit_parts", "file_rows", "finding_text", "progress_rows", "summary_parts"]

PCT_WIDTH = 6  # " 45.2%"
SIZE_WIDTH = 10  # "1023.9 MiB"


class RateMeter:
    """Bytes per second over the last ``window`` seconds of samples (thread-safe)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def add(self, total: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._samples and total < self._samples[-1][1]:
                self._samples.clear()  # a new counter (a new torrent): start again
            self._samples.append((now, total))
            while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
                self._samples.popleft()

    def rate(self) -> float:
        with self._lock:
            if len(self._samples) < 2:
                return 0.0
            (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


def fit_parts(parts: Sequence[str], width: int, sep: str = "  ") -> str:
    """Join ``parts`` with ``sep``, leaving out trailing parts that would pass ``width``."""
    out = ""
    for part in parts:
        candidate = part if not out else out + sep + part
        if len(candidate) > width:
            break
        out = candidate
    return out


def pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def bar_width(width: int) -> int:
    return 40 if width >= 120 else 20


def progress_rows(
    name: str, done: int, total: int, rate: float, eta: float | None, peers: int | None, width: int
) -> list[Text]:
    """The name with a fixed-width bar, then sizes, rate, ETA and peers: each line fits ``width``."""
    bw = bar_width(width)
    name_w = max(min(len(name), width - bw - PCT_WIDTH - 2), 8)
    head = Text(no_wrap=True, overflow="crop")
    head.append(middle_ellipsis(name, name_w).ljust(name_w), style="bold")
    head.append(" ")
    bar = "━" * round(bw * done / total) if total else ""
    head.append(bar, style="magenta")
    head.append("━" * (bw - len(bar)), style="grey23")
    head.append(f"{pct(done, total):5.1f}%".rjust(PCT_WIDTH + 1))
    parts = [
        f"{human_size(done)}/{human_size(total)}",
        human_rate(rate),
        f"ETA {human_time(eta)}",
    ]
    if peers is not None:
        parts.append(f"peers {peers}")
    return [head, Text(fit_parts(parts, width), no_wrap=True)]


def summary_parts(st: ev.TorrentStatus, up_rate: float) -> list[str]:
    return [
        f"peers: {len(st.peers)} connected, {st.known_peers} known",
        f"up {human_rate(up_rate)}",
        f"pieces {st.have_pieces}/{st.num_pieces}",
        f"{st.pieces_failed} failed",
    ]


def file_rows(files: Sequence[tuple[str, int, int]], width: int, max_rows: int) -> Table | None:
    """Per-file progress in the torrent's order, a window from the first unfinished file."""
    if len(files) < 2 or max_rows < 1:
        return None
    first = next((i for i, (_, d, n) in enumerate(files) if d < n), 0)
    start = max(0, min(first, len(files) - max_rows))
    shown = files[start : start + max_rows]
    bw = 20
    name_w = max(width - 2 - bw - PCT_WIDTH - SIZE_WIDTH - 3, 6)
    table = Table.grid(padding=(0, 1))
    table.add_column(width=name_w + 2, no_wrap=True)
    table.add_column(width=bw, no_wrap=True)
    table.add_column(width=PCT_WIDTH, justify="right", no_wrap=True)
    table.add_column(width=SIZE_WIDTH, justify="right", no_wrap=True)
    for path, done, length in shown:
        table.add_row(
            Text("  " + middle_ellipsis(path, name_w)),
            ProgressBar(total=max(length, 1), completed=done if length else 1, width=bw),
            Text(f"{pct(done, length) if length else 100.0:5.1f}%"),
            Text(human_size(length), style="dim"),
        )
    rest = len(files) - len(shown)
    if rest:
        complete = sum(1 for _, d, n in files if d >= n)
        note = f"  ... {rest} more files ({complete} of {len(files)} complete)"
        table.add_row(Text(middle_ellipsis(note, width), no_wrap=True), "", "", "")
    return table


def finding_text(elapsed: float, known: int, search: ev.DhtSearch | None, no_dht: bool) -> list[str]:
    """What "finding peers" shows: time, addresses, DHT nodes and lookups (short parts, fit to 80)."""
    parts = [f"finding peers {human_time(elapsed)}", f"{known} addresses"]
    if search is not None:
        parts += [f"DHT {search.nodes} nodes", f"{search.lookups_done} lookups done"]
    elif no_dht:
        parts.append("DHT off")
    return parts


def unreachable_hint() -> str:
    """What to do when no DHT node answered (fits 80 columns)."""
    return "no DHT node could be reached: give --bootstrap HOST:PORT or --peer HOST:PORT"
