"""`p2pshare doctor`: the verdict from the facts, the report on loopback, and its rendering."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from p2pshare.cli.app import app
from p2pshare.cli.doctor_cmd import render
from p2pshare.config import DEFAULT_CONFIG
from p2pshare.core.wire.messages import encode_handshake
from p2pshare.engine import doctor as doctor_mod
from p2pshare.engine.dht_node import DhtService
from p2pshare.engine.doctor import DoctorReport, percentile, run_doctor, verdict

FAST = replace(
    DEFAULT_CONFIG, reach=replace(DEFAULT_CONFIG.reach, doctor_lookups=3, doctor_lookup_timeout=2.0)
)


def mapped_report(**changes: object) -> DoctorReport:
    base = DoctorReport(
        listen_port=6881,
        gateway="192.168.1.1",
        local_ip="192.168.1.10",
        upnp="mapped",
        natpmp="standby",
        mapping_method="upnp/WANIPConnection:1",
        mapped_ports={"tcp": 6881, "udp": 6881},
        external_address="11.11.0.1",
        external_source="upnp/WANIPConnection:1",
        dht_enabled=True,
        bootstrap_reached=True,
        lsd="works",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 0.5, None),
        ([3.0], 0.95, 3.0),
        ([4.0, 1.0, 3.0, 2.0], 0.5, 2.0),
        ([4.0, 1.0, 3.0, 2.0], 0.95, 4.0),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    """p50 of 1..4 is 2, p95 is 4, and nothing measured gives None."""
    assert percentile(values, q) == expected


def test_only_something_from_outside_makes_the_verdict_reachable() -> None:
    """A mapped public address is 'probably'; a DHT query from a public address is the proof."""
    ok, line, _ = verdict(mapped_report())
    assert not ok and line.startswith("PROBABLY REACHABLE at 11.11.0.1:6881")
    ok, line, advice = verdict(mapped_report(unsolicited=["dht query from 11.11.0.100"]))
    assert ok and line.startswith("REACHABLE: dht query from 11.11.0.100") and "11.11.0.1:6881" in line
    assert advice == []


def test_a_router_without_upnp_or_natpmp_is_named_with_the_port_to_forward() -> None:
    """No method found: NOT REACHABLE, and the advice names the router, the port and this machine."""
    r = mapped_report(upnp="unavailable", natpmp="unavailable", mapped_ports={}, mapping_method=None)
    ok, line, advice = verdict(r)
    assert not ok and line.startswith("NOT REACHABLE")
    assert "192.168.1.1 offers neither UPnP IGD nor NAT-PMP/PCP" in advice[0]
    assert "port 6881 to 192.168.1.10" in advice[0]


def test_a_refusal_double_nat_and_broken_dht_or_lsd_each_get_their_advice() -> None:
    """Each fault produces its own line of advice."""
    refused = mapped_report(
        upnp="refused", natpmp="unavailable", mapped_ports={}, mapping_errors=["718 Conflict"]
    )
    assert "refused to map port 6881: 718 Conflict" in verdict(refused)[2][0]
    cgnat = mapped_report(external_address="100.64.0.9")
    ok, line, advice = verdict(cgnat)
    assert not ok and "double or carrier-grade NAT" in line + advice[0]
    broken = mapped_report(bootstrap_reached=False, lsd="silent")
    advice = verdict(broken)[2]
    assert any("bootstrap was not reached" in a for a in advice)
    assert any("LSD multicast does not work" in a for a in advice)
    assert "no default gateway" in verdict(DoctorReport())[1]


def test_the_screen_starts_with_the_verdict_and_lists_every_fact() -> None:
    """render() puts the verdict first and shows ports, gateway, methods, address, DHT, LSD and outside."""
    r = mapped_report(lookup_times=[0.1, 0.2], lookup_p50=0.1, lookup_p95=0.2, dht_nodes=7, dht_wait=10.0)
    r.reachable, r.verdict, r.advice = verdict(r)
    lines = render(r)
    assert lines[0] == r.verdict
    text = "\n".join(lines)
    for fact in (
        "TCP 6881",
        "192.168.1.1",
        "UPnP IGD         mapped",
        "NAT-PMP/PCP      standby",
        "11.11.0.1 (from upnp",
        "7 node(s) after 10 s",
        "p50 100 ms, p95 200 ms",
        "LSD multicast    works",
        "nothing reached us unasked",
    ):
        assert fact in text


async def test_on_loopback_the_doctor_reaches_the_bootstrap_and_times_its_lookups() -> None:
    """With a DHT node on 127.0.0.2, the bootstrap is reached and three lookups are timed."""
    boot = await DhtService.start(host="127.0.0.2", bootstrap=[], state_dir=None)
    try:
        r = await run_doctor(
            FAST,
            host="127.0.0.1",
            bootstrap=[("127.0.0.2", boot.port)],
            port_mapping=False,
            lsd=False,
            wait=5.0,
        )
    finally:
        await boot.close()
    assert r.bootstrap_reached and r.dht_nodes >= 1
    assert len(r.lookup_times) == 3 and r.lookup_p95 is not None and r.lookup_p95 <= 2.5
    assert r.upnp == "off" and r.lsd == "off" and r.unsolicited == []
    assert not r.reachable


async def test_a_connection_from_outside_during_the_wait_is_the_proof(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A peer's handshake reaching the listener is recorded (loopback counted as outside for this test)."""
    monkeypatch.setattr(doctor_mod, "_from_outside", lambda ip: ip == "127.0.0.3")
    steps: list[str] = []
    ports: list[int] = []

    def on_step(text: str) -> None:
        steps.append(text)

    real_start = doctor_mod._WatchedSession.start

    async def start(self: doctor_mod._WatchedSession) -> None:
        await real_start(self)
        ports.append(self.port)

    monkeypatch.setattr(doctor_mod._WatchedSession, "start", start)
    task = asyncio.ensure_future(
        run_doctor(
            FAST, host="127.0.0.1", bootstrap=None, port_mapping=False, lsd=False, wait=1.5, on_step=on_step
        )
    )
    for _ in range(100):
        if ports:
            break
        await asyncio.sleep(0.01)
    _reader, writer = await asyncio.open_connection("127.0.0.1", ports[0], local_addr=("127.0.0.3", 0))
    writer.write(encode_handshake(b"\x07" * 20, b"-XX0000-" + b"x" * 12))
    await writer.drain()
    r = await asyncio.wait_for(task, 10.0)
    writer.close()
    assert r.unsolicited == ["tcp connection from 127.0.0.3"]
    assert r.reachable and r.verdict.startswith("REACHABLE")


def test_doctor_json_is_one_object_with_the_verdict() -> None:
    """`p2pshare doctor --json` prints one JSON object carrying the verdict and the facts."""
    result = CliRunner().invoke(app, ["doctor", "--json", "--host", "127.0.0.1", "--wait", "0.5"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["event"] == "doctor" and report["verdict"].startswith("NOT REACHABLE")
    assert report["upnp"] == "off" and report["lsd"] == "off"  # the suite sets --no-port-mapping/--no-lsd
    assert report["reachable"] is False
