"""Checking files already on disk, shown as its own labelled bar with its own rate.

The runner calls these three methods (see
:class:`~p2pshare.engine.preflight.CheckListener`); ``check_advance`` comes from
hashing threads, so it only adds to a counter the bar reads.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.live import Live

from p2pshare.cli import live
from p2pshare.cli.common import out_console
from p2pshare.units import human_elapsed, human_rate, human_size

if TYPE_CHECKING:
    from p2pshare.engine.checking import CheckResult, CheckStarted

__all__ = ["CheckView"]


class CheckView:
    """The checking part of a :class:`~p2pshare.cli.views.View` (a mixin)."""

    mode: Any
    config: Any
    label: str = ""

    def __init__(self) -> None:
        self._check_lock = threading.Lock()
        self._check_done = 0
        self._check_total = 0
        self._check_started = 0.0
        self._check_live: Live | None = None
        self.checked: CheckResult | None = None

    def line(
        self, text: str, *, essential: bool = False, style: str | None = None, whole: bool = False
    ) -> None:
        raise NotImplementedError

    def json(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    def check_started(self, started: CheckStarted) -> None:
        from p2pshare.cli.views import Mode

        with self._check_lock:
            self._check_total = started.to_hash
            self._check_done = 0
            self._check_started = time.monotonic()
        self.json(
            {
                "event": "checking",
                "total": started.total_size,
                "to_check": started.to_hash,
                "resumed": started.resumed,
            }
        )
        what = f"{human_size(started.to_hash)} of {human_size(started.total_size)}"
        if started.resumed:
            self.line(f"resuming: an earlier run's state was found; checking {what} that changed since")
        elif started.to_hash:
            self.line(f"checking {what} already on disk...")
        if self.mode is Mode.RICH and started.to_hash:
            self._check_live = Live(
                get_renderable=self._check_render,
                console=out_console,
                refresh_per_second=self.config.live_refresh,
                transient=True,
            )
            self._check_live.start()

    def check_advance(self, nbytes: int) -> None:
        with self._check_lock:
            self._check_done += nbytes

    def _check_render(self) -> RenderableType:
        with self._check_lock:
            done, total, began = self._check_done, self._check_total, self._check_started
        elapsed = time.monotonic() - began
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else None
        width = max(out_console.width, 20)
        return Group(
            *live.progress_rows("checking " + (self.label or "files"), done, total, rate, eta, None, width)
        )

    def stop_check_view(self) -> None:
        if self._check_live is not None:
            live_view, self._check_live = self._check_live, None
            live_view.stop()

    def check_finished(self, result: CheckResult) -> None:
        self.stop_check_view()
        self.checked = result
        self.json(
            {
                "event": "checked",
                "have_pieces": result.have_pieces,
                "num_pieces": result.have.length,
                "have_bytes": result.have_bytes,
                "total": result.total_size,
                "checked_bytes": result.hashed_bytes,
                "elapsed": round(result.elapsed, 3),
                "rate": round(result.rate, 1),
                "resumed": result.resumed,
            }
        )
        pieces = f"{result.have_pieces}/{result.have.length} pieces ({human_size(result.have_bytes)})"
        if result.resumed:
            self.line(f"resuming: kept {pieces} from the last run")
        elif result.hashed_bytes:
            self.line(
                f"checked {human_size(result.hashed_bytes)} in {human_elapsed(result.elapsed)} "
                f"({human_rate(result.rate)}): already had {pieces}"
            )
