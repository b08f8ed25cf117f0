"""``p2pshare create`` and ``p2pshare info``."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from p2pshare.cli.common import err_console, handle_errors, load_target, out_console, print_json
from p2pshare.cli.views import human_size
from p2pshare.core.magnet import make_magnet
from p2pshare.core.metainfo import Info
from p2pshare.engine.create import create_torrent, parse_size
from p2pshare.errors import NotWritableError

__all__ = ["create", "info", "info_summary", "human_size"]


def info_summary(info: Info) -> dict[str, Any]:
    """The JSON shape of a manifest, shared by ``create --json`` and ``info --json``."""
    return {
        "info_hash": info.info_hash.hex,
        "name": info.name,
        "total_size": info.total_length,
        "piece_length": info.piece_length,
        "num_pieces": info.num_pieces,
        "private": info.private,
        "files": [
            {"path": "/".join(p), "length": f.length}
            for p, f in zip(info.file_paths(), info.files, strict=True)
        ],
        "magnet": make_magnet(info.info_hash, info.name),
    }


def _render_info(info: Info) -> None:
    out_console.print(f"[bold]{info.name}[/bold]")
    out_console.print(
        f"  size        {human_size(info.total_length)} ({info.total_length:,} bytes)"
        f" in {len(info.files)} file(s)"
    )
    out_console.print(f"  pieces      {info.num_pieces} x {human_size(info.piece_length)}")
    out_console.print(f"  info hash   [bold cyan]{info.info_hash.hex}[/bold cyan]")
    out_console.print(f"  magnet      {make_magnet(info.info_hash, info.name)}", soft_wrap=True)
    if not info.single_file:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column("file")
        table.add_column("size", justify="right")
        for path, f in zip(info.file_paths(), info.files, strict=True):
            table.add_row("/".join(path[1:]), human_size(f.length))
        out_console.print(table)


@handle_errors
def create(
    path: Annotated[Path, typer.Argument(help="File or folder to make a manifest of.", show_default=False)],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="PATH", help="Where to write the .torrent (default: NAME.torrent)."
        ),
    ] = None,
    piece_size: Annotated[
        str | None,
        typer.Option(
            "--piece-size",
            metavar="SIZE",
            help="Piece size, a power of two (e.g. 256KiB); default: automatic.",
        ),
    ] = None,
    comment: Annotated[
        str | None, typer.Option("--comment", metavar="TEXT", help="A comment stored in the .torrent.")
    ] = None,
    include_hidden: Annotated[
        bool, typer.Option("--include-hidden", help="Include hidden files (names starting with '.').")
    ] = False,
    include_symlinks: Annotated[
        bool, typer.Option("--include-symlinks", help="Follow symlinks whose target is inside the folder.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
) -> None:
    """Make a .torrent of PATH and print its info hash and magnet link.

    Examples:  p2pshare create ./photos   |   p2pshare create big.iso --piece-size 4MiB -o big.torrent
    """
    piece_length = parse_size(piece_size) if piece_size else None
    if json_output or not err_console.is_terminal:
        created = create_torrent(
            path,
            piece_length=piece_length,
            comment=comment,
            include_hidden=include_hidden,
            include_symlinks=include_symlinks,
        )
    else:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        ) as progress:
            task = progress.add_task("hashing", total=None)

            def advance(n: int) -> None:
                progress.advance(task, n)

            from p2pshare.io.files import collect_files

            total = collect_files(
                path, include_hidden=include_hidden, include_symlinks=include_symlinks
            ).total_length
            progress.update(task, total=total)
            created = create_torrent(
                path,
                piece_length=piece_length,
                comment=comment,
                include_hidden=include_hidden,
                include_symlinks=include_symlinks,
                progress=advance,
            )
    info = created.info
    out = output or Path(f"{info.name}.torrent")
    try:
        out.write_bytes(created.torrent)
    except OSError as exc:
        raise NotWritableError(f"cannot write {out}: {exc.strerror}") from None
    if json_output:
        print_json({**info_summary(info), "torrent": str(out)})
        return
    _render_info(info)
    out_console.print(f"  written to  {out}")


@handle_errors
def info(
    target: Annotated[
        str, typer.Argument(help="A .torrent file, a magnet link, or an info hash.", show_default=False)
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
) -> None:
    """Show what a .torrent, magnet link or info hash describes.

    Examples:  p2pshare info photos.torrent   |   p2pshare info 'magnet:?xt=urn:btih:...'
    """
    t = load_target(target)
    if t.metainfo is not None:
        info = t.metainfo.info
        if json_output:
            m = t.metainfo
            created = (
                _dt.datetime.fromtimestamp(m.creation_date, _dt.UTC).isoformat() if m.creation_date else None
            )
            print_json(
                {
                    **info_summary(info),
                    "comment": m.comment,
                    "created_by": m.created_by,
                    "creation_date": created,
                }
            )
            return
        _render_info(info)
        if t.metainfo.comment:
            out_console.print(f"  comment     {t.metainfo.comment}", markup=False)
        return
    magnet = t.magnet
    link = make_magnet(magnet.info_hash, magnet.name, magnet.peers)
    if json_output:
        print_json(
            {
                "info_hash": magnet.info_hash.hex,
                "name": magnet.name,
                "peers": [str(p) for p in magnet.peers],
                "magnet": link,
                "metadata": False,
            }
        )
        return
    out_console.print(f"  info hash   [bold cyan]{magnet.info_hash.hex}[/bold cyan]")
    if magnet.name:
        out_console.print(f"  name        {magnet.name}", markup=False)
    for p in magnet.peers:
        out_console.print(f"  peer        {p}")
    out_console.print(f"  magnet      {link}", soft_wrap=True)
    out_console.print("  (only the hash is known; `p2pshare get` fetches the manifest from peers)")
