"""``p2pshare seed X.torrent --data DIR``: check the files already there, then seed them.

As aria2c ``-V -d DIR`` and transmission-cli ``-w DIR`` do: the check shows its own
bar, and seeding needs no peers to start.  Nothing is downloaded; a folder missing
pieces is told to ``get`` the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pshare.cli.common import handle_errors, load_target, parse_peers, resolve_bootstrap, run_async
from p2pshare.cli.share_view import QrOpt, bootstrap_flags, show_handover
from p2pshare.cli.swarm_opts import (
    BootstrapOpt,
    DhtPortOpt,
    DhtReadOnlyOpt,
    EncryptionOpt,
    HostOpt,
    JsonOpt,
    NoDhtOpt,
    PortOpt,
    _options,
)
from p2pshare.cli.views import Mode, View, choose_mode
from p2pshare.config import EncryptionPolicy
from p2pshare.core.magnet import make_magnet
from p2pshare.core.types import PeerAddress
from p2pshare.engine.events import Ready
from p2pshare.errors import TargetError
from p2pshare.units import human_size

__all__ = ["seed"]


@handle_errors
def seed(
    torrent: Annotated[
        Path, typer.Argument(metavar="TORRENT", help="The .torrent file to seed.", show_default=False)
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            "-d",
            metavar="FOLDER",
            help="The folder that holds the torrent's files (as `get -o` downloaded them).",
        ),
    ] = Path("."),
    port: PortOpt = 0,
    host: HostOpt = "0.0.0.0",
    bootstrap: BootstrapOpt = None,
    no_dht: NoDhtOpt = False,
    dht_port: DhtPortOpt = None,
    dht_read_only: DhtReadOnlyOpt = False,
    encryption: EncryptionOpt = EncryptionPolicy.PREFER,
    peer: Annotated[
        list[str] | None,
        typer.Option(
            "--peer", metavar="HOST:PORT", help="Also connect to this peer (repeatable).", show_default=False
        ),
    ] = None,
    qr: QrOpt = False,
    json_output: JsonOpt = False,
) -> None:
    """Seed files you already have: check them against a .torrent, then share until Ctrl-C.

    No peers are needed to start.  A folder with missing or damaged pieces is not
    seeded: `p2pshare get X.torrent -o FOLDER` fetches the rest (and keeps the good ones).

    Examples:

    \b
      p2pshare seed photos.torrent --data ~/Pictures
      p2pshare seed big.iso.torrent -d /srv/files --port 6881 --no-dht
    """
    from p2pshare.engine.seeding import seed_existing  # the swarm engine loads only for swarm commands

    mode = choose_mode(json_output)
    view = View(mode, "seed")
    with view.guard():
        t = load_target(str(torrent))
        if t.metainfo is None:
            raise TargetError(f"{torrent}: seed needs a .torrent file (a magnet link has no file list)")
        info = t.metainfo.info
        view.start(torrent=str(torrent), name=info.name, info_hash=info.info_hash.hex, data=str(data))
        view.label = info.name
        peers = parse_peers(peer)
        boot = resolve_bootstrap(bootstrap, no_dht=no_dht, host=host)

        def on_ready(ready: Ready) -> None:
            hints = (PeerAddress(host, ready.port),) if host not in ("0.0.0.0", "::", "") else ()
            magnet = make_magnet(info.info_hash, info.name, hints)
            view.extra_listening.update(name=info.name, total_size=info.total_length, magnet=magnet)
            if mode is Mode.JSON:
                return
            view.line(
                f"seeding {info.name}: {human_size(info.total_length)} in {len(info.files)} file(s), "
                f"{info.num_pieces} pieces, from {data}",
                style="bold",
            )
            flags = bootstrap_flags(boot)
            show_handover(view, info.info_hash.hex, magnet, str(torrent), host, ready, flags, qr)

        view.on_ready = on_ready
        run_async(
            seed_existing(
                info,
                data,
                _options(host, port, boot, dht_port, dht_read_only, encryption=encryption),
                on_event=view.event,
                on_swarm=view.attach,
                on_check=view,
                peers=peers,
            )
        )
