"""Port mapping in the NAT lab: h1 behind r1 (miniupnpd) maps ports, h2 behind plain NAT r2 reaches them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.lab.netlab import R1_WAN
from tests.lab.scenarios import TCP_PORT, UDP_PORT

Scenario = Callable[..., dict[str, Any]]


def _assert_mapped_and_reachable(result: dict[str, Any], method_prefix: str) -> None:
    status = result["settled"]["status"]
    assert status["active_method"] == method_prefix.split("/")[0]
    ports = {(m["protocol"], m["internal_port"]) for m in status["mappings"]}
    assert ports == {("tcp", TCP_PORT), ("udp", UDP_PORT)}
    assert all(m["method"].startswith(method_prefix) for m in status["mappings"])
    assert status["external_address"] == R1_WAN
    assert result["rules_mapped"]["prerouting_miniupnpd"] == 2, "miniupnpd should hold one DNAT rule per port"
    assert result["probe"].get("tcp") == "h1:hello-tcp", result["probe"]
    assert result["probe"].get("udp") == "h1:hello-udp", result["probe"]
    closed = result["closed"]["status"]
    assert closed["closed"] and closed["mappings"] == []
    assert result["rules_after_close"] == {"miniupnpd": 0, "prerouting_miniupnpd": 0}
    assert "tcp" not in result["probe_after_close"]


@pytest.mark.slow
def test_upnp_only_router_maps_tcp_and_udp_and_h2_reaches_h1(scenario: Scenario) -> None:
    """Through UPnP IGD alone, h1's TCP and UDP ports answer h2 at r1's address, and vanish on close."""
    result = scenario("portmap", "upnp")
    _assert_mapped_and_reachable(result, "upnp/WANIPConnection")
    assert dict(map(tuple, result["settled"]["status"]["methods"]))["natpmp"] == "unavailable"


@pytest.mark.slow
def test_natpmp_only_router_maps_over_pcp_and_h2_reaches_h1(scenario: Scenario) -> None:
    """Through NAT-PMP/PCP alone (UPnP off on r1), the mapping works and is deleted on close."""
    result = scenario("portmap-natpmp", "natpmp")
    _assert_mapped_and_reachable(result, "natpmp/pcp")


@pytest.mark.slow
def test_natpmp_version_zero_maps_and_learns_the_external_address(scenario: Scenario) -> None:
    """Speaking plain NAT-PMP (version 0), h1 learns r1's external address and maps both ports."""
    result = scenario("portmap-natpmp-v0", "natpmp")
    _assert_mapped_and_reachable(result, "natpmp/natpmp")
    assert result["settled"]["status"]["external_source"] == "natpmp/natpmp"


@pytest.mark.slow
def test_router_with_both_keeps_one_method_and_cleans_up(scenario: Scenario) -> None:
    """With UPnP and NAT-PMP both offered, one method wins, the other stands by, r1 is clean after."""
    result = scenario("portmap", "both")
    status = result["settled"]["status"]
    winner = status["active_method"]
    assert winner in ("natpmp", "upnp")
    methods = dict(map(tuple, status["methods"]))
    assert methods[winner] == "mapped" and methods[{"natpmp": "upnp", "upnp": "natpmp"}[winner]] == "standby"
    _assert_mapped_and_reachable(result, winner)


@pytest.mark.slow
def test_router_without_mapping_reports_failure_without_raising(scenario: Scenario) -> None:
    """With no mapping protocol on r1, the service settles with both methods unavailable and says why."""
    result = scenario("portmap", "none")
    status = result["settled"]["status"]
    assert status["mappings"] == [] and status["active_method"] is None and status["external_address"] is None
    assert dict(map(tuple, status["methods"])) == {"natpmp": "unavailable", "upnp": "unavailable"}
    assert any("port unreachable" in e for e in status["errors"])
    assert any("SSDP" in e for e in status["errors"])
    assert "tcp" not in result["probe"]
    assert result["closed"]["status"]["closed"]


@pytest.mark.slow
def test_short_lease_is_renewed_before_it_runs_out(scenario: Scenario) -> None:
    """An 8-second UPnP lease is renewed at half life, so 6 s on both mappings were granted again."""
    # miniupnpd grants PCP/NAT-PMP leases of at least 120 s: their renewal is tested on a
    # virtual clock in tests/core/test_natpmp.py.
    result = scenario("portmap-renew", "upnp")
    events = result["renewed"]["events"]
    mapped_events = [e for e in events if e.startswith("PortMapped(")]
    assert len(mapped_events) >= 4, events  # two first grants, then at least one renewal of each
    assert result["renewed"]["status"]["mappings"], result["renewed"]
    assert result["rules_after_close"] == {"miniupnpd": 0, "prerouting_miniupnpd": 0}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario_name", "variant"), [("portmap-conflict-upnp", "upnp"), ("portmap-conflict-natpmp", "natpmp")]
)
def test_second_host_asking_for_a_taken_port_gets_another_that_reaches_it(
    scenario: Scenario, scenario_name: str, variant: str
) -> None:
    """h1b holds the ports; h1 is given other external ports, and h2 reaches each host on its own."""
    result = scenario(scenario_name, variant)
    h1b = {m["protocol"]: m["external_port"] for m in result["h1b"]["status"]["mappings"]}
    h1 = {m["protocol"]: m["external_port"] for m in result["h1"]["status"]["mappings"]}
    assert h1b == {"tcp": TCP_PORT, "udp": UDP_PORT}
    assert set(h1) == {"tcp", "udp"} and h1["tcp"] != TCP_PORT and h1["udp"] != UDP_PORT
    assert result["probe_h1"].get("tcp") == "h1:hello-tcp" and result["probe_h1"].get("udp") == "h1:hello-udp"
    assert result["probe_h1b"].get("tcp") == "h1b:hello-tcp"
    assert result["rules_after_close"] == {"miniupnpd": 0, "prerouting_miniupnpd": 0}


@pytest.mark.slow
def test_router_restart_is_noticed_and_ports_are_mapped_again(scenario: Scenario) -> None:
    """r1's miniupnpd restarts with no rules and no leases; its announcement makes h1 map both ports again."""
    result = scenario("router-restart", "natpmp")
    assert result["rules_before"]["prerouting_miniupnpd"] == 2
    assert result["rules_after"]["prerouting_miniupnpd"] == 2, "h1 did not map again after the restart"
    assert result["remap_seconds"] < 5.0, "the re-mapping should follow the announcement, not the renewal"
    mapped = [e for e in result["closed"]["events"] if e.startswith("PortMapped(")]
    assert len(mapped) == 4, mapped  # two grants before the restart, two after
    assert result["probe"].get("tcp") == "h1:hello-tcp"
    assert result["rules_after_close"] == {"miniupnpd": 0, "prerouting_miniupnpd": 0}
