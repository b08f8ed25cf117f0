"""``p2pshare doctor``: will sharing from this machine work?  Measure, then give one verdict.

The doctor starts what ``share`` starts (a listener, the DHT node, port mapping, LSD),
watches for a bounded time and reports:

* the listen port and the default gateway;
* UPnP and NAT-PMP: found or not, and whether the mapping worked;
* the external address and where it was learned;
* DHT health: bootstrap reached, nodes after N seconds, p50/p95 of a few get_peers lookups;
* whether LSD multicast works (our own announce comes back to us);
* whether anything unsolicited reached us from outside (a DHT query or a TCP connection
  from an address that is not on our LAN): the only proof of reachability.

:func:`verdict` turns the facts into one line and what to do; it is pure, so every
branch is tested without a network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.core.dht.node import DhtNode
from p2pshare.core.types import Addr, InfoHash
from p2pshare.engine.reachability import usable_external
from p2pshare.engine.session import Session
from p2pshare.io.link import Link

__all__ = ["DoctorReport", "percentile", "run_doctor", "verdict"]


@dataclass
class DoctorReport:
    """Every fact the doctor gathered (JSON-able with :meth:`to_dict`)."""

    listen_port: int = 0
    dht_port: int | None = None
    gateway: str | None = None
    local_ip: str | None = None
    upnp: str = "off"  #: off, searching, mapped, standby, refused, unavailable
    natpmp: str = "off"
    mapping_method: str | None = None
    mapped_ports: dict[str, int] = field(default_factory=dict)  #: protocol -> external port
    mapping_errors: list[str] = field(default_factory=list)
    external_address: str | None = None
    external_source: str | None = None  #: "natpmp/pcp", "upnp/...", "dht" (BEP 42 votes)
    dht_enabled: bool = False
    bootstrap_reached: bool = False
    dht_nodes: int = 0
    dht_wait: float = 0.0  #: the N of "nodes after N seconds"
    lookup_times: list[float] = field(default_factory=list)  #: seconds, one per timed get_peers
    lookup_p50: float | None = None
    lookup_p95: float | None = None
    lsd: str = "off"  #: off, works (our own announce came back), silent, unavailable
    lsd_detail: str | None = None
    unsolicited: list[str] = field(default_factory=list)  #: "dht query from IP", "tcp connection from IP"
    verdict: str = ""
    advice: list[str] = field(default_factory=list)
    reachable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return ordered[rank - 1]


def _from_outside(ip: str) -> bool:
    """An address not on our LAN nor this machine: someone on the Internet reached us."""
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return False
    return not (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast)


def verdict(r: DoctorReport) -> tuple[bool, str, list[str]]:
    """(reachable, the verdict line, what to do) from the facts alone."""
    advice: list[str] = []
    if r.unsolicited:
        line = f"REACHABLE: {r.unsolicited[0]} reached us unasked"
        if r.external_address:
            line += f"; others dial {r.external_address}:{r.mapped_ports.get('tcp', r.listen_port)}"
        return True, line, advice
    mapped = "tcp" in r.mapped_ports
    public = usable_external(r.external_address)
    if r.gateway is None:
        advice.append("no default gateway: connect to a network (LAN peers may still be found by LSD)")
    elif not mapped:
        if "refused" not in (r.upnp, r.natpmp):
            advice.append(
                f"the router {r.gateway} offers neither UPnP IGD nor NAT-PMP/PCP: enable one of them, "
                f"or forward TCP and UDP port {r.listen_port} to {r.local_ip or 'this machine'} by hand"
            )
        else:
            advice.append(
                f"the router {r.gateway} refused to map port {r.listen_port}: "
                f"{r.mapping_errors[-1] if r.mapping_errors else 'no reason given'}; forward it by hand"
            )
    elif r.external_address and not public:
        advice.append(
            f"the router's own address {r.external_address} is not public (double or carrier-grade NAT): "
            "a mapping on this router is not enough; ask your provider for a public IPv4 address or use IPv6"
        )
    if r.dht_enabled and not r.bootstrap_reached:
        advice.append(
            "the DHT bootstrap was not reached: check the firewall for outgoing UDP, or give --bootstrap"
        )
    if r.lsd in ("unavailable", "silent"):
        advice.append("LSD multicast does not work here: LAN peers must be given with --peer")
    if mapped and public:
        line = (
            f"PROBABLY REACHABLE at {public}:{r.mapped_ports['tcp']} (mapped by {r.mapping_method}), "
            "but nothing from outside has reached us yet"
        )
        advice.append("share something and keep it running: other peers will find it through the DHT")
        return False, line, advice
    reason = advice[0].split(":")[0] if advice else "nothing from outside reached us"
    return False, f"NOT REACHABLE from the Internet: {reason}", advice


async def run_doctor(
    config: Config = DEFAULT_CONFIG,
    *,
    host: str = "0.0.0.0",
    port: int = 0,
    bootstrap: Sequence[Addr] | None = None,
    port_mapping: bool = True,
    lsd: bool = True,
    wait: float | None = None,
    on_step: Callable[[str], None] | None = None,
) -> DoctorReport:
    """Start a listener, the DHT, port mapping and LSD; observe (bounded); return the report."""
    reach_cfg = config.reach
    step = on_step or (lambda _: None)
    report = DoctorReport()
    seen: list[str] = []

    def heard(kind: str, ip: str) -> None:
        if _from_outside(ip):
            text = f"{kind} from {ip}"
            if text not in seen:
                seen.append(text)

    session = _WatchedSession(config, listen_host=host, listen_port=port, on_incoming=heard)
    try:
        await session.start()
        report.listen_port = session.port
        if bootstrap is not None:
            step("starting the DHT node")
            dht = await session.start_dht(bootstrap=bootstrap, host=host, port=port)
            report.dht_enabled, report.dht_port = True, dht.port
            _watch_dht(dht.endpoint.node, {h for h, _ in bootstrap}, heard)
        step("asking the router to map our ports")
        reach = await session.start_reachability(port_mapping=port_mapping, lsd=lsd)
        probe_hash = os.urandom(20)
        reach.add_torrent(probe_hash)
        began = time.monotonic()
        status = await reach.wait_settled(reach_cfg.doctor_map_timeout)
        if status is not None:
            methods = dict(status.methods)
            report.upnp, report.natpmp = methods.get("upnp", "off"), methods.get("natpmp", "off")
            report.gateway, report.local_ip = status.gateway, status.local_ip
            report.mapping_method = status.active_method
            report.mapped_ports = {m.protocol: m.external_port for m in status.mappings}
            report.mapping_errors = list(status.errors[-3:])
            report.external_address, report.external_source = status.external_address, status.external_source
        else:
            from p2pshare.io.portmap import default_gateway

            report.gateway = default_gateway()
        if session.dht is not None:
            step("joining the DHT")
            dht_wait = wait if wait is not None else reach_cfg.doctor_dht_wait
            report.dht_wait = dht_wait
            report.bootstrap_reached = await session.dht.wait_ready(dht_wait)
            report.dht_nodes = len(session.dht.endpoint.node.table)
            if report.bootstrap_reached:
                step(f"timing {reach_cfg.doctor_lookups} get_peers lookups")
                report.lookup_times = [
                    await _time_lookup(session, reach_cfg.doctor_lookup_timeout)
                    for _ in range(reach_cfg.doctor_lookups)
                ]
                report.lookup_p50 = percentile(report.lookup_times, 0.5)
                report.lookup_p95 = percentile(report.lookup_times, 0.95)
            if report.external_address is None and session.dht.endpoint.node.external_ip:
                report.external_address, report.external_source = session.dht.endpoint.node.external_ip, "dht"
        elif wait:
            await asyncio.sleep(max(0.0, wait - (time.monotonic() - began)))
        report.lsd, report.lsd_detail = await _lsd_check(reach.lsd_stats(), reach_cfg.doctor_lsd_wait, reach)
    finally:
        await session.close()
    report.unsolicited = list(seen)
    report.reachable, report.verdict, report.advice = verdict(report)
    return report


def _watch_dht(node: DhtNode, contacted: set[str], heard: Callable[[str, str], None]) -> None:
    """Note queries from IPs we never sent a datagram to.

    A node we wrote to can write back through our NAT's connection tracking (a hole we
    punched), so only a stranger's query proves the port is open to all.
    """
    admit, take = node.admit_query, node.datagrams_to_send

    def watch(ip: str, now: float) -> bool:
        if ip not in contacted:
            heard("dht query", ip)
        return admit(ip, now) if admit is not None else True

    def recording() -> list[tuple[bytes, Addr]]:
        out = take()
        contacted.update(addr[0] for _, addr in out)
        return out

    node.admit_query = watch
    setattr(node, "datagrams_to_send", recording)  # noqa: B010 - an instance hook, not a method edit


async def _time_lookup(session: Session, timeout: float) -> float:
    assert session.dht is not None
    began = time.monotonic()
    async for _ in session.dht.get_peers(InfoHash(os.urandom(20)), timeout=timeout):
        pass
    return round(time.monotonic() - began, 3)


async def _lsd_check(stats: dict[str, Any] | None, wait: float, reach: Any) -> tuple[str, str | None]:
    """Works when our own announce came back (multicast loopback): the group is joined and sending works."""
    if stats is None:
        return "off", None
    deadline = time.monotonic() + wait
    while True:
        stats = reach.lsd_stats() or stats
        if stats.get("own_ignored", 0) > 0:
            return (
                "works",
                f"groups {', '.join(stats.get('groups', []))}; {stats.get('heard', 0)} peer(s) heard",
            )
        if not stats.get("groups"):
            return "unavailable", "; ".join(stats.get("errors", [])) or "no multicast group could be joined"
        if time.monotonic() >= deadline:
            return "silent", "our own announce never came back"
        await asyncio.sleep(0.1)


class _WatchedSession(Session):
    """A session that notes who connects to it (the doctor shares nothing: every link is refused)."""

    def __init__(self, config: Config, *, on_incoming: Callable[[str, str], None], **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._on_incoming = on_incoming

    def _route(self, info_hash: bytes, link: Link) -> bool:
        self._on_incoming("tcp connection", link.remote_address[0])
        return super()._route(info_hash, link)
