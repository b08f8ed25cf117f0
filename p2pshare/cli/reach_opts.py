"""The options that turn off port mapping and LSD (share, get, doctor)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["NoLsdOpt", "NoPortMappingOpt"]

NoPortMappingOpt = Annotated[
    bool,
    typer.Option(
        "--no-port-mapping",
        envvar="P2PSHARE_NO_PORT_MAPPING",
        help="Do not ask the router (UPnP IGD, NAT-PMP/PCP) to forward our ports.",
    ),
]
NoLsdOpt = Annotated[
    bool,
    typer.Option(
        "--no-lsd",
        envvar="P2PSHARE_NO_LSD",
        help="Do not announce or look for peers on the LAN (BEP 14 LSD).",
    ),
]
