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
from p2pshare.core.magnet import magnet_for_info, make_magnet
from p2pshare.core.metainfo import FileEntry, Info
from p2pshare.engine.create import create_torrent, parse_format, parse_size
from p2pshare.errors import NotWritableError

__all__ = ["create", "info", "info_summary", "human_size"]


def _real_files(info: Info) -> list[tuple[tuple[str, ...], FileEntry]]:
    """(path under the download folder, entry) of every file that is not padding."""
    return [(p, f) for p, f in zip(info.file_paths(), info.files, strict=True) if not f.pad]


def _file_summary(path: tuple[str, ...], f: FileEntry, v2: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": "/".join(path), "length": f.length}
    if v2:  # the merkle root names the file's content: equal roots, equal bytes
        entry["pieces_root"] = f.pieces_root.hex() if f.pieces_root is not None else None
    return entry


def info_summary(info: Info) -> dict[str, Any]:
    """The JSON shape of a manifest, shared by ``create --json`` and ``info --json``.

    ``info_hash`` is the 20-byte swarm id (v1, or the truncated v2 hash for v2-only);
    ``info_hash_v1`` / ``info_hash_v2`` are null when the format has no such half.
    Pad files are left out of ``files`` and ``total_size``; for v2 and hybrid each file
    carries its ``pieces_root`` (hex, null when empty).
    """
    v1 = info.info_hash_v1
    v2 = info.info_hash_v2
    return {
        "info_hash": info.info_hash.hex,
        "info_hash_v1": v1.hex if v1 is not None else None,
        "info_hash_v2": v2.hex if v2 is not None else None,
        "format": info.format,
        "name": info.name,
        "total_size": info.data_length,
        "piece_length": info.piece_length,
        "num_pieces": info.num_pieces,
        "private": info.private,
        "files": [_file_summary(p, f, info.meta_version == 2) for p, f in _real_files(info)],
        "magnet": magnet_for_info(info),
    }


def _render_info(info: Info) -> None:
    files = _real_files(info)
    out_console.print(f"[bold]{info.name}[/bold]")
    out_console.print(
        f"  size        {human_size(info.data_length)} ({info.data_length:,} bytes) in {len(files)} file(s)"
    )
    out_console.print(f"  format      {info.format}")
    out_console.print(f"  pieces      {info.num_pieces} x {human_size(info.piece_length)}")
    if info.info_hash_v1 is not None:
        out_console.print(f"  info hash   [bold cyan]{info.info_hash_v1.hex}[/bold cyan]  (v1)")
    if info.info_hash_v2 is not None:
        out_console.print(f"  v2 hash     [bold cyan]{info.info_hash_v2.hex}[/bold cyan]", soft_wrap=True)
    out_console.print(f"  magnet      {magnet_for_info(info)}", soft_wrap=True)
    if not info.single_file:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column("file")
        table.add_column("size", justify="right")
        for path, f in files:
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
    format_name: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="v1 (BEP 3), v2 (BEP 52) or hybrid (both, one set of files). Default v1: v1-only "
            "clients such as aria2 1.36 and Transmission 3 write a hybrid's pad files to disk.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of text.")
    ] = False,
    tracker: Annotated[
        list[str] | None,
        typer.Option(
            "--tracker",
            "-t",
            metavar="URL",
            help="Tracker URL (http, https or udp) to put in the .torrent; repeat for more, tried in order.",
        ),
    ] = None,
) -> None:
    """Make a .torrent of PATH and print its info hash(es) and magnet link.

    Examples:  p2pshare create ./photos   |   p2pshare create big.iso --piece-size 4MiB -o big.torrent
    |   p2pshare create ./photos --format hybrid
    |   p2pshare create ./photos -t udp://tracker.example:6969/announce -t https://t.example/announce
    """
    fmt = parse_format(format_name)
    piece_length = parse_size(piece_size) if piece_size else None
    if json_output or not err_console.is_terminal:
        created = create_torrent(
            path,
            piece_length=piece_length,
            comment=comment,
            include_hidden=include_hidden,
            include_symlinks=include_symlinks,
            format=fmt,
            trackers=tracker or (),
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
                format=fmt,
                trackers=tracker or (),
            )
    info = created.info
    out = output or Path(f"{info.name}.torrent")
    try:
        out.write_bytes(created.torrent)
    except OSError as exc:
        raise NotWritableError(f"cannot write {out}: {exc.strerror}") from None
    if json_output:
        summary = info_summary(info)
        if created.trackers:
            summary["magnet"] = make_magnet(
                info.info_hash_v1, info.name, info_hash_v2=info.info_hash_v2, trackers=created.trackers
            )
        print_json({**summary, "trackers": list(created.trackers), "torrent": str(out)})
        return
    _render_info(info)
    for url in created.trackers:
        out_console.print(f"  tracker     {url}", soft_wrap=True)
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
    v2 = magnet.info_hash_v2
    link = make_magnet(magnet.info_hash_v1, magnet.name, magnet.peers, info_hash_v2=v2)
    if json_output:
        print_json(
            {
                "info_hash": magnet.info_hash.hex,
                "info_hash_v1": magnet.info_hash_v1.hex if magnet.info_hash_v1 is not None else None,
                "info_hash_v2": v2.hex if v2 is not None else None,
                "name": magnet.name,
                "peers": [str(p) for p in magnet.peers],
                "magnet": link,
                "metadata": False,
            }
        )
        return
    if magnet.info_hash_v1 is not None:
        out_console.print(f"  info hash   [bold cyan]{magnet.info_hash_v1.hex}[/bold cyan]  (v1)")
    if v2 is not None:
        out_console.print(f"  v2 hash     [bold cyan]{v2.hex}[/bold cyan]", soft_wrap=True)
        out_console.print(f"  swarm id    {magnet.info_hash.hex}  (v2 hash truncated, for the DHT)")
    if magnet.name:
        out_console.print(f"  name        {magnet.name}", markup=False)
    for p in magnet.peers:
        out_console.print(f"  peer        {p}")
    out_console.print(f"  magnet      {link}", soft_wrap=True)
    out_console.print("  (only the hash is known; `p2pshare get` fetches the manifest from peers)")
