"""What ``share`` shows: hashing with a bar, then how to hand the share over (magnet, command, QR)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TimeRemainingColumn
from rich.text import Text

from p2pshare.cli.common import out_console
from p2pshare.cli.handover import others_run, qr_text, shell_quote
from p2pshare.config import DEFAULT_BOOTSTRAP
from p2pshare.core.types import Addr
from p2pshare.units import human_rate, human_size

if TYPE_CHECKING:
    from p2pshare.cli.views import View
    from p2pshare.engine.events import Ready
    from p2pshare.engine.state import SharedManifest, StateDir

__all__ = ["QrOpt", "bootstrap_flags", "hash_with_progress", "show_handover"]

QrOpt = Annotated[
    bool, typer.Option("--qr", help="Also print the magnet link as a QR code, for a phone to scan.")
]


class _SizeColumn(ProgressColumn):
    """``1.2 GiB/3.0 GiB  45.00 MiB/s``: the same units as everywhere else."""

    def render(self, task: Task) -> Text:
        total = human_size(task.total) if task.total is not None else "?"
        return Text(f"{human_size(task.completed)}/{total}  {human_rate(task.speed or 0.0)}")


def bootstrap_flags(boot: list[Addr] | None) -> list[Addr]:
    """The bootstrap nodes a receiver must be told (none when they are the public defaults)."""
    if not boot or list(boot) == list(DEFAULT_BOOTSTRAP):
        return []
    return list(boot)


def hash_with_progress(state: StateDir, path: Path, mode: Any, view: View, **kwargs: Any) -> SharedManifest:
    from p2pshare.cli.views import Mode

    if mode is not Mode.RICH:

        def on_total(total: int) -> None:
            view.json({"event": "phase", "phase": "hashing", "total": total})
            view.line(f"hashing {path} ({human_size(total)})...")

        return state.manifest_for(path, on_total=on_total, **kwargs)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(bar_width=20),
        _SizeColumn(),
        TimeRemainingColumn(),
        console=out_console,
        transient=True,
    ) as progress:
        task = progress.add_task("hashing", total=None)

        def on_total_rich(total: int) -> None:
            progress.update(task, total=total)

        def advance(n: int) -> None:
            progress.advance(task, n)

        return state.manifest_for(path, on_total=on_total_rich, progress=advance, **kwargs)


def show_handover(
    view: View,
    info_hash: str,
    magnet: str,
    torrent_note: str | None,
    host: str,
    ready: Ready,
    boot: list[Addr],
    qr: bool,
    port_mapping: bool = True,
) -> None:
    """The lines a sharer reads out to others: hash, quoted magnet, the whole command, maybe a QR code."""
    view.line(f"info hash  {info_hash}", essential=True, style="bold cyan")
    view.line(f"magnet     {shell_quote(magnet)}", essential=True, whole=True)
    view.line(f"torrent    {torrent_note or '(not saved: the state folder is not writable)'}", whole=True)
    dht = f", DHT on UDP {ready.dht_port}" if ready.dht_port else " (no DHT)"
    view.line(f"listening  {host}:{ready.port}{dht}")
    if ready.public is not None:
        view.line(f"reachable  {ready.public[0]}:{ready.public[1]} (mapped on the router)", essential=True)
    elif port_mapping:
        view.line("reachable  unknown: the router mapped no port (run `p2pshare doctor`)")
    view.line(f"others run: {others_run(magnet, boot)}", style="dim", whole=True)
    if qr:
        view.line("scan the magnet link:")
        for row in qr_text(magnet).rstrip("\n").split("\n"):
            view.line(row, whole=True)
