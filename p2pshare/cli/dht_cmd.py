"""``p2pshare dht``: a standalone DHT node (moved out of ``swarm_cmds`` to keep that module small)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from p2pshare.cli.common import handle_errors, resolve_bootstrap, run_async
from p2pshare.cli.swarm_opts import BootstrapOpt, HostOpt, JsonOpt
from p2pshare.cli.views import Mode, View, choose_mode
from p2pshare.config import DEFAULT_CONFIG
from p2pshare.core.types import Addr
from p2pshare.engine.state import StateDir
from p2pshare.errors import PortInUseError

__all__ = ["dht"]


@handle_errors
def dht(
    port: Annotated[
        int,
        typer.Option(
            "--port",
            "-p",
            min=0,
            max=65535,
            metavar="PORT",
            envvar="P2PSHARE_PORT",
            help="UDP port of this DHT node (what others give as --bootstrap HOST:PORT); 0 picks a free one.",
        ),
    ] = 0,
    host: HostOpt = "0.0.0.0",
    bootstrap: BootstrapOpt = None,
    no_bootstrap: Annotated[
        bool, typer.Option("--no-bootstrap", help="Start a new DHT: join through no other node.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Run a standalone DHT node until Ctrl-C (for example a LAN's bootstrap node).

    Others then use --bootstrap HOST:PORT (or P2PSHARE_BOOTSTRAP=HOST:PORT) to find it.

    Examples:

    \b
      p2pshare dht --port 6881 --no-bootstrap
      p2pshare dht --host 127.0.0.1 --port 0 --json
    """
    from p2pshare.engine.dht_node import DhtService, run_standalone

    mode = choose_mode(json_output)
    view = View(mode, "dht")
    boot: list[Addr] = [] if no_bootstrap else resolve_bootstrap(bootstrap, host=host) or []
    state = StateDir()

    async def main() -> None:
        state_dir = state.claim_dht_state()

        async def on_ready(service: DhtService) -> None:
            shown = host if host not in ("0.0.0.0", "::") else "THIS-MACHINE"
            view.json(
                {
                    "event": "listening",
                    "host": host,
                    "port": service.port,
                    "node_id": service.node_id.hex(),
                    "bootstrap": [f"{h}:{p}" for h, p in boot],
                }
            )
            view.line(
                f"DHT node {service.node_id.hex()} listening on {host}:{service.port} (UDP)", essential=True
            )
            view.line(f"others join with: --bootstrap {shown}:{service.port}")
            asyncio.get_running_loop().create_task(_dht_status_loop(service, view))

        try:
            await run_standalone(port, boot, state_dir, DEFAULT_CONFIG.dht, on_ready, host=host)
        except PortInUseError:
            raise PortInUseError(
                f"UDP port {port} on {host} is in use; choose another with --port, or --port 0"
            ) from None
        finally:
            state.release()

    with view.guard():
        view.start(host=host, port=port)
        view.seeding = True  # Ctrl-C is the normal way to stop: report "stopped", not an error
        run_async(main())


async def _dht_status_loop(service: Any, view: View) -> None:
    last = None
    while True:
        await asyncio.sleep(5.0 if view.mode is Mode.JSON else 10.0)
        try:
            status = service.status()
        except Exception:
            continue
        summary = {k: v for k, v in status.items() if isinstance(v, int | float | str)}
        view.json({"event": "dht_status", **summary})
        text = (
            f"DHT: {status.get('nodes', '?')} nodes in the table, "
            f"{status.get('stored_peers', '?')} peers stored "
            f"for {status.get('stored_info_hashes', '?')} hashes"
        )
        if text != last:
            view.line(text)
            last = text
