"""How a command ends on screen: the summary, errors, and Ctrl-C with its exit code.

Ctrl-C on a download says what was kept and exits 130.  Ctrl-C while sharing (``share``,
``seed``, ``dht``, or ``get --seed`` once complete) is the normal way to stop: it says
"stopped sharing" and exits 0.  A closed stdout (``share | tee log`` and Ctrl-C) is not
an error worth a line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import typer

from p2pshare.cli.common import err_console, out_console, stdout_gone
from p2pshare.cli.json_events import error_kind, result_dict
from p2pshare.cli.live import fit_parts
from p2pshare.errors import ExitCode, P2PShareError
from p2pshare.units import human_elapsed, human_rate, human_size, middle_ellipsis

if TYPE_CHECKING:
    from p2pshare.engine.runner import DownloadResult, Swarm

__all__ = ["Endings", "summary_lines"]


def summary_lines(result: DownloadResult, width: int = 80) -> list[str]:
    """The summary: what was already here, what came, how fast, from whom; each line fits ``width``."""
    size = human_size(result.total_size)
    name = middle_ellipsis(result.name, max(width - len(size) - 10, 8))
    lines = [f"done: {name}, {size}"]
    if result.fetched == 0:
        lines.append("  already complete: nothing to download")
    else:
        lines.append(
            f"  downloaded {human_size(result.fetched)} in {human_elapsed(result.transfer_time)} "
            f"({human_rate(result.rate)} average) from {result.peers_used} peer(s)"
        )
    if result.had_pieces:
        lines.append(f"  already had {result.had_pieces} pieces ({human_size(result.had_bytes)})")
    lines.append(
        f"  all {result.num_pieces} pieces verified; {result.pieces_failed} failed and fetched again"
    )
    if result.contributions and len(result.contributions) > 1:
        total = sum(result.contributions.values())
        parts = [f"{host} {100 * n / total:.0f}%" for host, n in sorted(result.contributions.items())]
        parts[0] = "  pieces came from: " + parts[0]
        lines.append(fit_parts(parts, width, ", "))
    return lines


class Endings:
    """The endings part of a :class:`~p2pshare.cli.views.View` (a mixin)."""

    mode: Any
    command: str
    seeding: bool
    swarm: Swarm | None
    final_rate: float | None
    filter: Any
    _ticker: Any
    _closed: bool
    _last_line: str

    def line(
        self, text: str, *, essential: bool = False, style: str | None = None, whole: bool = False
    ) -> None:
        raise NotImplementedError

    def json(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    def _stop_live(self) -> None:
        raise NotImplementedError

    def _start_live(self) -> None:
        raise NotImplementedError

    def stop_check_view(self) -> None:
        raise NotImplementedError

    def json_progress(self) -> None:
        raise NotImplementedError

    def finish_live(self, result: DownloadResult) -> None:
        """Draw the final frame (100 %, the average rate) and stop the live view."""
        self.final_rate = result.rate
        self.json_progress()  # a final progress event before "done"
        self._stop_live()

    def done(self, result: DownloadResult, **extra: Any) -> None:
        """Show the summary of a finished download (``extra`` fields go into the JSON event)."""
        from p2pshare.cli.views import Mode

        if self.final_rate is None:
            self.finish_live(result)
        if self.mode is Mode.JSON:
            self.json({**result_dict(result), **extra})
        else:
            lines = summary_lines(result, out_console.width if self.mode is Mode.RICH else 10_000)
            self.line(lines[0], essential=True, style="bold green")
            for text in lines[1:]:
                self.line(text)
            if self.command == "demo":
                self.line(
                    f"  downloaded into {result.path} (a temporary folder, removed at the end)", whole=True
                )
            else:
                self.line(f"  saved in {result.path}", essential=True, whole=True)
        self._last_line = ""

    def start_seeding(self) -> None:
        """After a download with --seed: switch to the seeding view."""
        from p2pshare.cli.views import Mode

        self.seeding = True
        self.final_rate = None
        self.filter.allow_seeding()
        self.json({"event": "phase", "phase": "seeding"})
        self.line("seeding until Ctrl-C")
        if self.mode is Mode.RICH:
            self._start_live()

    def error(self, exc: BaseException) -> None:
        """Report a failure (the one-line message on stderr comes from handle_errors)."""
        self._stop_live()
        self.stop_check_view()
        code = exc.exit_code if isinstance(exc, P2PShareError) else ExitCode.ERROR
        self.json({"event": "error", "code": int(code), "kind": error_kind(code), "message": str(exc)})

    def interrupted(self) -> int:
        """Say what Ctrl-C left behind; the exit code: 0 when sharing stopped, else 130."""
        self._stop_live()
        self.stop_check_view()
        st = self.swarm.status() if self.swarm is not None else None
        if self.seeding and (self.swarm is not None or self.command == "dht"):
            peers = len(st.peers) if st is not None else 0
            uploaded = st.uploaded if st is not None else 0
            self.json({"event": "stopped", "reason": "interrupted", "uploaded": uploaded})
            self.line(f"stopped sharing: uploaded {human_size(uploaded)} in all ({peers} peer(s) connected)")
            return 0
        if st is not None and st.num_pieces:
            kept = (
                f"{st.have_pieces}/{st.num_pieces} pieces verified ({human_size(st.verified_bytes)}) "
                "kept; run the same command to resume"
            )
        elif self.command == "get":
            kept = "nothing downloaded yet; run the same command to try again"
        elif self.seeding:
            kept = "stopped before sharing began"
        else:
            kept = "stopped"
        self.json({"event": "error", "code": 130, "kind": "interrupted", "message": f"interrupted: {kept}"})
        err_console.print(f"p2pshare: interrupted: {kept}", markup=False)
        return int(ExitCode.INTERRUPTED)

    def close(self) -> None:
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self._stop_live()
        self.stop_check_view()

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Report errors and Ctrl-C in this view's mode, then let handle_errors exit."""
        try:
            yield
        except KeyboardInterrupt:
            try:
                code = self.interrupted()
            except BrokenPipeError:
                stdout_gone()
                code = 0 if self.seeding and self.swarm is not None else int(ExitCode.INTERRUPTED)
            raise typer.Exit(code) from None
        except BrokenPipeError:
            stdout_gone()  # whoever read our output has gone: nothing left to say there
            raise typer.Exit(0 if self.seeding else int(ExitCode.ERROR)) from None
        except BaseException as exc:
            if not isinstance(exc, SystemExit | GeneratorExit | typer.Exit):
                self.error(exc)
            raise
        finally:
            self.close()
