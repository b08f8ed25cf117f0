"""The options the swarm commands share (``share``, ``get``, ``seed``, ``dht``, ``doctor``), and
how they become a :class:`~p2pshare.engine.runner.SwarmOptions`."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from p2pshare.config import DEFAULT_CONFIG, EncryptionPolicy
from p2pshare.core.rate import rate_caps
from p2pshare.core.types import Addr
from p2pshare.engine.state import StateDir
from p2pshare.engine.transports import Transport

if TYPE_CHECKING:
    from p2pshare.engine import runner

__all__ = [
    "BootstrapOpt",
    "DhtPortOpt",
    "DhtReadOnlyOpt",
    "EncryptionOpt",
    "HostOpt",
    "JsonOpt",
    "MaxDownOpt",
    "MaxUpOpt",
    "NoDhtOpt",
    "PortOpt",
    "TransportOpt",
    "_options",
    "_state",
]

# ---------------------------------------------------------------------- shared options

PortOpt = Annotated[
    int,
    typer.Option(
        "--port",
        "-p",
        min=0,
        max=65535,
        metavar="PORT",
        envvar="P2PSHARE_PORT",
        help="TCP port to accept peers on (the DHT uses the same UDP port); 0 picks a free one.",
    ),
]
HostOpt = Annotated[
    str,
    typer.Option(
        "--host",
        metavar="ADDRESS",
        envvar="P2PSHARE_HOST",
        help="Address to listen on (and to run the DHT node on).",
    ),
]
BootstrapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--bootstrap",
        "-b",
        metavar="HOST:PORT",
        help="A DHT node to join through (repeatable). Default: $P2PSHARE_BOOTSTRAP, "
        "else the public Mainline routers.",
        show_default=False,
    ),
]
DhtPortOpt = Annotated[
    int | None,
    typer.Option(
        "--dht-port",
        min=0,
        max=65535,
        metavar="PORT",
        envvar="P2PSHARE_DHT_PORT",
        help="UDP port of the DHT node (default: the --port number if free, else any).",
        show_default=False,
    ),
]
NoDhtOpt = Annotated[bool, typer.Option("--no-dht", help="Do not use the DHT at all.")]
DhtReadOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--dht-read-only",
        envvar="P2PSHARE_DHT_READ_ONLY",
        help="Join the DHT read-only (BEP 43): ask, but answer no queries (for metered or NAT-ed links).",
    ),
]
TransportOpt = Annotated[
    Transport,
    typer.Option(
        "--transport",
        envvar="P2PSHARE_TRANSPORT",
        case_sensitive=False,
        metavar="MODE",
        help="Peer transports, MODE tcp, utp (BEP 29, on the same UDP port as the DHT) or both.",
        show_default=False,
    ),
]
MaxUpOpt = Annotated[
    str | None,
    typer.Option(
        "--max-up",
        metavar="RATE",
        help="Cap the upload over all peers (e.g. 500KiB/s, 8MiB/s; k = 1024); default: no cap.",
        show_default=False,
    ),
]
MaxDownOpt = Annotated[
    str | None,
    typer.Option(
        "--max-down",
        metavar="RATE",
        help="Cap the download over all peers (e.g. 2MiB/s); default: no cap.",
        show_default=False,
    ),
]
EncryptionOpt = Annotated[
    EncryptionPolicy,
    typer.Option(
        "--encryption",
        envvar="P2PSHARE_ENCRYPTION",
        case_sensitive=False,
        help="Peer encryption (MSE/PE): prefer (encrypt, fall back to plaintext), require, or off.",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print newline-delimited JSON events (schema in the README).")
]


def _state() -> StateDir:
    return StateDir()


def _options(
    host: str,
    port: int,
    bootstrap: list[Addr] | None,
    dht_port: int | None,
    read_only: bool = False,
    max_up: str | None = None,
    max_down: str | None = None,
    no_trackers: bool = False,
    *,
    no_port_mapping: bool = False,
    no_lsd: bool = False,
    mapping_wait: float = 0.0,
    transport: Transport = Transport.BOTH,
    encryption: EncryptionPolicy = EncryptionPolicy.PREFER,
) -> runner.SwarmOptions:
    from p2pshare.engine import runner  # the swarm engine loads only for swarm commands

    config = DEFAULT_CONFIG
    if encryption is not config.mse.policy:
        config = replace(config, mse=replace(config.mse, policy=encryption))
    if read_only:
        config = replace(config, dht=replace(config.dht, read_only=True))
    if max_up or max_down:
        config = replace(config, coop=rate_caps(config.coop, max_up, max_down))
    if no_trackers:
        config = replace(config, tracker=replace(config.tracker, enabled=False))
    if transport.value != config.transport.mode:
        config = replace(config, transport=replace(config.transport, mode=transport.value))
    return runner.SwarmOptions(
        config=config,
        host=host,
        port=port,
        bootstrap=bootstrap,
        dht_port=dht_port,
        state=_state(),
        port_mapping=not no_port_mapping,
        lsd=not no_lsd,
        mapping_wait=0.0 if no_port_mapping else mapping_wait,
    )
