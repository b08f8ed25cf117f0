"""``p2pshare demo``: a whole swarm on loopback (the work is :mod:`p2pshare.engine.demo`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from p2pshare.cli.common import (
    handle_errors,
    run_async,
)
from p2pshare.cli.views import Mode, View, choose_mode, human_time
from p2pshare.engine.create import parse_size
from p2pshare.errors import P2PShareError

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

__all__ = ["demo"]


# ---------------------------------------------------------------------- demo


@handle_errors
def demo(
    peers: Annotated[
        int, typer.Option("--peers", "-n", min=1, max=50, metavar="N", help="How many seeders.")
    ] = 3,
    size: Annotated[
        str | None,
        typer.Option(
            "--size",
            metavar="SIZE",
            help="Share a generated payload of this many bytes (e.g. 50MiB) instead of sample_files/.",
        ),
    ] = None,
    show_peers: Annotated[
        bool,
        typer.Option(
            "--peers-table",
            help="Show a live table of peers (a small payload is over in a blink: --size 500MiB to watch).",
        ),
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """A whole swarm on loopback: a DHT node, seeders, and a download by hash alone.

    A DHT bootstrap node starts on 127.0.0.1, N seeders on 127.0.0.10... share
    sample_files/ (or a generated payload) and announce it; a downloader on 127.0.0.2
    then finds them through the DHT with nothing but the info hash, downloads from all
    of them in parallel, and checks the files against the originals.  Nothing outside
    this machine is contacted, and everything is cleaned up.

    Examples:

    \b
      p2pshare demo
      p2pshare demo --peers 5 --size 500MiB --peers-table
    """
    from p2pshare.engine import demo as demo_run  # the swarm engine loads only for swarm commands

    mode = choose_mode(json_output)
    view = View(mode, "demo", show_peers=show_peers)
    with view.guard():
        nbytes = parse_size(size) if size is not None else None
        view.start(peers=peers, size=nbytes)
        view.line(f"p2pshare demo: a swarm of {peers} seeder(s) and 1 downloader on loopback", style="bold")

        def summary(download: runner.DownloadResult) -> None:
            view.finish_live(download)
            if mode is not Mode.JSON:
                view.done(download)

        result = run_async(
            demo_run.demo(
                peers=peers,
                size=nbytes,
                on_event=view.event,
                on_swarm=view.attach,
                on_complete=summary,  # the final bar and the summary come before the "identical" check
            )
        )
        if not result.identical:
            raise P2PShareError("the downloaded files differ from the originals (a bug: please report it)")
        if mode is Mode.JSON:
            view.done(
                result.download,
                files_compared=result.files_checked,
                identical=True,
                seeders=list(result.seeders),
            )
        if show_peers and result.download.transfer_time < 2:
            view.line(
                f"  (the transfer took {human_time(result.download.transfer_time)}: too short to watch "
                "the peers; try --size 500MiB)"
            )
        view.line(
            f"demo ok: {result.files_checked} file(s) identical to the originals; everything cleaned up",
            essential=True,
            style="bold green",
        )
