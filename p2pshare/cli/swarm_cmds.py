"""``p2pshare share``, ``get``, ``dht`` and ``demo``: option parsing and rendering only.

The work is done by :mod:`p2pshare.engine.runner`; these functions turn options into
a :class:`~p2pshare.engine.runner.SwarmOptions`, hand a :class:`~p2pshare.cli.views.View`
to the runner, and let :func:`~p2pshare.cli.common.handle_errors` turn failures into
one line and an exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from p2pshare.cli import updatable_cmds as upd
from p2pshare.cli.common import (
    handle_errors,
    load_target,
    parse_peers,
    resolve_bootstrap,
    run_async,
)
from p2pshare.cli.file_options import (
    ListOpt,
    NoTrackersOpt,
    SelectOpt,
    SequentialOpt,
    StdoutOpt,
    TrackerOpt,
    check_selection,
    describe_choice,
    print_file_list,
    selection_for,
    stdout_stream,
    tiers_for,
)
from p2pshare.cli.handover import others_run
from p2pshare.cli.reach_opts import NoLsdOpt, NoPortMappingOpt
from p2pshare.cli.share_view import QrOpt, bootstrap_flags, hash_with_progress, show_handover
from p2pshare.cli.views import Mode, View, choose_mode, human_size
from p2pshare.config import DEFAULT_CONFIG, EncryptionPolicy
from p2pshare.core.magnet import magnet_for_info
from p2pshare.core.types import PeerAddress
from p2pshare.core.updatable import parse_btpk_magnet
from p2pshare.engine.create import parse_format, parse_size
from p2pshare.engine.transports import Transport

if TYPE_CHECKING:
    from p2pshare.engine import runner

from p2pshare.cli.swarm_opts import (  # re-exported: other commands take them from here too
    BootstrapOpt as BootstrapOpt,
)
from p2pshare.cli.swarm_opts import (
    DhtPortOpt as DhtPortOpt,
)
from p2pshare.cli.swarm_opts import (
    DhtReadOnlyOpt as DhtReadOnlyOpt,
)
from p2pshare.cli.swarm_opts import (
    EncryptionOpt as EncryptionOpt,
)
from p2pshare.cli.swarm_opts import (
    HostOpt as HostOpt,
)
from p2pshare.cli.swarm_opts import (
    JsonOpt as JsonOpt,
)
from p2pshare.cli.swarm_opts import (
    MaxDownOpt as MaxDownOpt,
)
from p2pshare.cli.swarm_opts import (
    MaxUpOpt as MaxUpOpt,
)
from p2pshare.cli.swarm_opts import (
    NoDhtOpt as NoDhtOpt,
)
from p2pshare.cli.swarm_opts import (
    PortOpt as PortOpt,
)
from p2pshare.cli.swarm_opts import (
    TransportOpt as TransportOpt,
)
from p2pshare.cli.swarm_opts import (
    _options as _options,
)
from p2pshare.cli.swarm_opts import (
    _state as _state,
)

__all__ = ["get", "share"]  # dht: cli/dht_cmd.py

# ---------------------------------------------------------------------- share


@handle_errors
def share(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="The file or folder to share.", show_default=False)
    ],
    port: PortOpt = 0,
    host: HostOpt = "0.0.0.0",
    bootstrap: BootstrapOpt = None,
    no_dht: NoDhtOpt = False,
    dht_port: DhtPortOpt = None,
    dht_read_only: DhtReadOnlyOpt = False,
    encryption: EncryptionOpt = EncryptionPolicy.PREFER,
    no_port_mapping: NoPortMappingOpt = False,
    no_lsd: NoLsdOpt = False,
    transport: TransportOpt = Transport.BOTH,
    peer: Annotated[
        list[str] | None,
        typer.Option(
            "--peer", metavar="HOST:PORT", help="Also connect to this peer (repeatable).", show_default=False
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
    include_hidden: Annotated[
        bool, typer.Option("--include-hidden", help="Include hidden files (names starting with '.').")
    ] = False,
    max_up: MaxUpOpt = None,
    max_down: MaxDownOpt = None,
    qr: QrOpt = False,
    tracker: TrackerOpt = None,
    no_trackers: NoTrackersOpt = False,
    format_name: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="v1 (BEP 3), v2 (BEP 52) or hybrid (one swarm under both hashes). Default v1: "
            "v1-only clients such as aria2 1.36 and Transmission 3 write a hybrid's pad files to disk.",
            show_default=False,
        ),
    ] = None,
    publish: upd.PublishOpt = False,
    key: upd.KeyOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Share a file or folder: hash it, announce it on the DHT (and --tracker), and seed until Ctrl-C.

    Prints the info hash and a magnet link to give to others, writes the .torrent in
    the state folder, and shows who is downloading.  An unchanged folder reuses its
    saved manifest instead of hashing again.

    Examples:

    \b
      p2pshare share ./photos
      p2pshare share big.iso --port 6881 --bootstrap 192.168.1.2:6881
      p2pshare share ./docs --host 192.168.1.5 --qr
      p2pshare share ./album --tracker udp://tracker.lan:6969/announce
    """
    from p2pshare.engine import runner  # the swarm engine loads only for swarm commands

    mode = choose_mode(json_output)
    view = View(mode, "share")
    with view.guard():
        view.start(path=str(path), name=path.resolve().name or str(path))
        peers = parse_peers(peer)
        boot = resolve_bootstrap(bootstrap, no_dht=no_dht, host=host)
        piece_length = parse_size(piece_size) if piece_size else None
        runner.check_port(host, port)  # before hashing, which may take long
        if publish:  # BEP 46: a v2 share under a public key, re-published as the folder changes
            options = _options(
                host,
                port,
                boot,
                dht_port,
                dht_read_only,
                max_up=max_up,
                max_down=max_down,
                no_port_mapping=no_port_mapping,
                no_lsd=no_lsd,
                transport=transport,
                encryption=encryption,
            )
            return upd.run_publish(
                path, options, view, upd.PublishArgs(key, host, piece_length, include_hidden, peers)
            )
        fmt = parse_format(format_name)
        state = _state()
        manifest = hash_with_progress(
            state,
            path,
            mode,
            view,
            piece_length=piece_length,
            include_hidden=include_hidden,
            trackers=tracker or (),
            format=fmt,
        )
        info = manifest.created.info
        view.json(
            {
                "event": "manifest",
                "info_hash": info.info_hash.hex,
                "info_hash_v2": info.info_hash_v2.hex if info.info_hash_v2 is not None else None,
                "format": info.format,
                "name": info.name,
                "total_size": info.total_length,
                "num_pieces": info.num_pieces,
                "reused": manifest.reused,
                "torrent": str(manifest.torrent_path) if manifest.torrent_path else None,
            }
        )
        if manifest.reused:
            view.line(f"{path} is unchanged since it was last shared: manifest reused, nothing hashed")
        torrent_note = str(manifest.torrent_path) if manifest.torrent_path else None
        view.extra_listening = {"name": info.name, "total_size": info.total_length, "torrent": torrent_note}

        def on_ready(ready: runner.Ready) -> None:
            hints = (PeerAddress(host, ready.port),) if host not in ("0.0.0.0", "::", "") else ()
            if ready.public is not None:  # the router forwards this address to us: others dial it
                hints = (PeerAddress(*ready.public), *hints)
            magnet = magnet_for_info(info, hints, trackers=manifest.created.trackers)  # btih, btmh or both
            view.extra_listening["magnet"] = magnet
            view.extra_listening["public"] = f"{ready.public[0]}:{ready.public[1]}" if ready.public else None
            view.extra_listening["others_run"] = others_run(magnet, bootstrap_flags(boot))
            if mode is Mode.JSON:
                return
            view.line(
                f"sharing {info.name}: {human_size(info.total_length)} in {len(info.files)} file(s), "
                f"{info.num_pieces} pieces",
                style="bold",
            )
            show_handover(
                view,
                info.info_hash.hex,
                magnet,
                torrent_note,
                host,
                ready,
                bootstrap_flags(boot),
                qr,
                port_mapping=not no_port_mapping,
            )

        view.on_ready = on_ready
        run_async(
            runner.seed(
                manifest,
                _options(
                    host,
                    port,
                    boot,
                    dht_port,
                    dht_read_only,
                    max_up=max_up,
                    max_down=max_down,
                    no_trackers=no_trackers,
                    no_port_mapping=no_port_mapping,
                    no_lsd=no_lsd,
                    mapping_wait=DEFAULT_CONFIG.reach.share_settle_timeout,
                    transport=transport,
                    encryption=encryption,
                ),
                on_event=view.event,
                on_swarm=view.attach,
                peers=peers,
            )
        )


# ---------------------------------------------------------------------- get


@handle_errors
def get(
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET", help="A .torrent file, a magnet link, or an info hash.", show_default=False
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", metavar="FOLDER", help="Folder to download into (created if missing)."
        ),
    ] = Path("."),
    peer: Annotated[
        list[str] | None,
        typer.Option(
            "--peer", metavar="HOST:PORT", help="Connect to this peer (repeatable).", show_default=False
        ),
    ] = None,
    bootstrap: BootstrapOpt = None,
    no_dht: NoDhtOpt = False,
    dht_port: DhtPortOpt = None,
    dht_read_only: DhtReadOnlyOpt = False,
    encryption: EncryptionOpt = EncryptionPolicy.PREFER,
    no_port_mapping: NoPortMappingOpt = False,
    no_lsd: NoLsdOpt = False,
    transport: TransportOpt = Transport.BOTH,
    port: PortOpt = 0,
    host: HostOpt = "0.0.0.0",
    seed: Annotated[
        bool, typer.Option("--seed", help="Keep sharing after the download, until Ctrl-C.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            "-t",
            min=0.0,
            metavar="SECONDS",
            help="Give up when nothing new has arrived for this many seconds, like aria2's "
            "--bt-stop-timeout (exit 6 no peers, 7 no manifest, 10 incomplete).",
        ),
    ] = None,
    max_time: Annotated[
        float | None,
        typer.Option(
            "--max-time",
            min=0.0,
            metavar="SECONDS",
            help="Give up after this many seconds in all, however it goes (same exit codes).",
        ),
    ] = None,
    show_peers: Annotated[bool, typer.Option("--peers", help="Show a live table of peers.")] = False,
    max_up: MaxUpOpt = None,
    max_down: MaxDownOpt = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="Overwrite existing files in the folder that are not part of this download."
        ),
    ] = False,
    no_trackers: NoTrackersOpt = False,
    list_files: ListOpt = False,
    select: SelectOpt = None,
    sequential: SequentialOpt = False,
    stdout: StdoutOpt = False,
    follow: upd.FollowOpt = False,
    delete: upd.DeleteOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Download a .torrent, magnet link or info hash; exit 0 only when every chosen piece is verified.

    Peers come from the DHT, from --peer, from the trackers of the .torrent or the magnet's
    tr=, and from x.pe hints in a magnet link.  Run the
    same command again after an interruption: verified pieces are kept.

    Examples:

    \b
      p2pshare get 0123456789abcdef0123456789abcdef01234567 -o ~/Downloads
      p2pshare get 'magnet:?xt=urn:btih:...' --timeout 60 --peers
      p2pshare get photos.torrent --peer 192.168.1.5:6881 --no-dht --seed
      p2pshare get photos.torrent -o ~/Pictures --seed   (files already there: seeds at once)
      p2pshare get show.torrent --list
      p2pshare get show.torrent --select 1,3-5 --select '*.srt'
      p2pshare get show.torrent --select movie.mkv --stdout | mpv -
    """
    from p2pshare.engine import runner  # the swarm engine loads only for swarm commands

    mode = choose_mode(json_output)
    view = View(mode, "get", show_peers=show_peers, seed_after=seed, no_dht=no_dht)
    with stdout_stream(stdout) as stream, view.guard():  # --stdout: every message goes to stderr
        followed = parse_btpk_magnet(target)
        peers = parse_peers(peer)
        boot = resolve_bootstrap(bootstrap, no_dht=no_dht, host=host)
        if followed is not None:  # BEP 46: follow a public key, not one hash
            view.start(public_key=followed.public_key.hex(), name=followed.name, output=str(output))
            options = _options(
                host,
                port,
                boot,
                dht_port,
                dht_read_only,
                max_up=max_up,
                max_down=max_down,
                no_port_mapping=no_port_mapping,
                no_lsd=no_lsd,
                transport=transport,
                encryption=encryption,
            )
            args = upd.FollowArgs(output, follow, delete, peers, timeout)
            return upd.run_follow(followed, options, view, args)
        t = load_target(target)
        info = t.metainfo.info if t.metainfo is not None else None
        tiers = tiers_for(t.metainfo, t.magnet)
        chosen = selection_for(select, t.magnet)
        options = _options(
            host,
            port,
            boot,
            dht_port,
            dht_read_only,
            max_up=max_up,
            max_down=max_down,
            no_trackers=no_trackers,
            no_port_mapping=no_port_mapping,
            no_lsd=no_lsd,
            transport=transport,
            encryption=encryption,
        )
        if list_files:
            if info is None:
                view.line(f"fetching the manifest of {t.info_hash.hex}...")
                info = run_async(
                    runner.fetch_manifest(
                        t.info_hash, options, peers=[*peers, *t.magnet.peers], trackers=tiers, timeout=timeout
                    )
                )
            print_file_list(info, mode is Mode.JSON)
            return
        if info is not None:
            check_selection(info, chosen, stdout=stdout)
        name = info.name if info is not None else t.magnet.name
        view.start(info_hash=t.info_hash.hex, name=name, output=str(output))
        view.label = name or ""
        what = f"{name} ({t.info_hash.hex})" if name else t.info_hash.hex
        view.line(f"getting {what} into {output}", style="bold")
        if info is not None and chosen is not None:
            view.line(describe_choice(info, chosen))

        def on_complete(result: runner.DownloadResult) -> None:
            view.done(result)
            if seed:
                view.start_seeding()

        run_async(
            runner.download(
                t.info_hash,
                options,
                out_dir=output,
                info=info,
                info_hash_v2=t.magnet.info_hash_v2,
                piece_layers=t.metainfo.piece_layers if t.metainfo is not None else None,
                peers=peers,
                magnet_peers=t.magnet.peers,
                timeout=timeout,
                max_time=max_time,
                seed=seed,
                overwrite=overwrite,
                on_event=view.event,
                on_swarm=view.attach,
                on_complete=on_complete,
                on_check=view,
                trackers=tiers,
                select=chosen,
                sequential=sequential,
                stream=stream,
            )
        )
