"""``p2pshare doctor``: one screen saying whether sharing from here will work, and what to change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from p2pshare.cli.common import handle_errors, out_console, print_json, resolve_bootstrap, run_async
from p2pshare.cli.reach_opts import NoLsdOpt, NoPortMappingOpt
from p2pshare.cli.swarm_opts import BootstrapOpt, HostOpt, NoDhtOpt, PortOpt
from p2pshare.config import DEFAULT_CONFIG

if TYPE_CHECKING:
    from p2pshare.engine.doctor import DoctorReport

__all__ = ["doctor", "render"]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def render(r: DoctorReport) -> list[str]:
    """The report as lines of text: the verdict first, then the facts, then what to do."""
    ports = ", ".join(f"{p.upper()} {n}" for p, n in sorted(r.mapped_ports.items())) or "none"
    external = f"{r.external_address} (from {r.external_source})" if r.external_address else "unknown"
    lines = [
        r.verdict,
        "",
        f"listen port      TCP {r.listen_port}" + (f", DHT on UDP {r.dht_port}" if r.dht_port else ""),
        f"default gateway  {r.gateway or 'none'}" + (f" (we are {r.local_ip})" if r.local_ip else ""),
        f"UPnP IGD         {r.upnp}",
        f"NAT-PMP/PCP      {r.natpmp}",
        f"port mapping     {ports}" + (f" by {r.mapping_method}" if r.mapping_method else ""),
        f"external address {external}",
    ]
    if r.mapping_errors:
        lines.append(f"mapping errors   {r.mapping_errors[-1]}")
    if r.dht_enabled:
        reached = "reached" if r.bootstrap_reached else "NOT reached"
        lines.append(f"DHT              bootstrap {reached}; {r.dht_nodes} node(s) after {r.dht_wait:g} s")
        if r.lookup_times:
            lines.append(
                f"DHT lookups      {len(r.lookup_times)} get_peers: "
                f"p50 {_ms(r.lookup_p50)}, p95 {_ms(r.lookup_p95)}"
            )
    else:
        lines.append("DHT              off")
    lines.append(f"LSD multicast    {r.lsd}" + (f" ({r.lsd_detail})" if r.lsd_detail else ""))
    lines.append(
        f"from outside     {'; '.join(r.unsolicited) if r.unsolicited else 'nothing reached us unasked'}"
    )
    if r.advice:
        lines.append("")
        lines.append("what to do:")
        lines.extend(f"  - {a}" for a in r.advice)
    return lines


@handle_errors
def doctor(
    port: PortOpt = 0,
    host: HostOpt = "0.0.0.0",
    bootstrap: BootstrapOpt = None,
    no_dht: NoDhtOpt = False,
    no_port_mapping: NoPortMappingOpt = False,
    no_lsd: NoLsdOpt = False,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            min=0.0,
            help="Seconds to give the DHT (and anyone outside) to reach us "
            f"(default {DEFAULT_CONFIG.reach.doctor_dht_wait:g}).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check whether others can reach this machine: router mapping, external address, DHT, LSD.

    Run it with the --port you share on.  The verdict says REACHABLE only when something
    from outside reached us unasked (a DHT query or a connection): that is the only proof.
    Exit code 0 either way; read the verdict.

    Examples:

      p2pshare doctor --port 6881

      p2pshare doctor --json --bootstrap 192.168.1.2:6881
    """
    from p2pshare.engine.doctor import run_doctor  # the engine loads only for this command

    boot = resolve_bootstrap(bootstrap, no_dht=no_dht, host=host)

    def step(text: str) -> None:
        if not json_output:
            out_console.print(f"[dim]{text}...[/dim]")

    report = run_async(
        run_doctor(
            DEFAULT_CONFIG,
            host=host,
            port=port,
            bootstrap=boot,
            port_mapping=not no_port_mapping,
            lsd=not no_lsd,
            wait=wait,
            on_step=step,
        )
    )
    if json_output:
        print_json({"event": "doctor", **report.to_dict()})
        return
    for i, line in enumerate(render(report)):
        style = ("bold green" if report.reachable else "bold yellow") if i == 0 else None
        out_console.print(line, style=style, markup=False, highlight=False)
