"""Issue 11 end to end in the NAT lab: p2pshare maps its own ports, runs LSD, and doctor tells the truth.

`share` and `get` run with their defaults (port mapping and LSD on); nobody is given --peer.
One lab build on the `both` variant covers scenarios (a)-(e); `upnp` and `natpmp` repeat (a)
and (e) with only that protocol on r1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.lab.netlab import R1_WAN
from tests.lab.reach_scenarios import DOCTOR_PORTS
from tests.lab.scenarios import TCP_PORT

Scenario = Callable[..., dict[str, Any]]
PUBLIC = f"{R1_WAN}:{TCP_PORT}"
NO_RULES = {"miniupnpd": 0, "prerouting_miniupnpd": 0}


def assert_downloaded(facts: dict[str, Any]) -> None:
    assert facts["exit_code"] == 0, facts
    assert facts["final"]["event"] == "done" and facts["final"]["verified"] is True
    assert 0 < facts["marks"]["first_peer"] <= facts["marks"]["end"]


@pytest.fixture(scope="module")
def both(lab_ready: None) -> dict[str, Any]:
    from tests.lab.conftest import run_scenario

    return run_scenario("reach", "both")


@pytest.mark.slow
def test_share_maps_its_port_and_puts_the_routers_address_in_the_magnet(both: dict[str, Any]) -> None:
    """share's listening event names r1's mapped address, and its magnet's x.pe hint is that address."""
    listening = both["listening"]
    assert listening["public"] == PUBLIC
    assert listening["magnet"].endswith(f"&x.pe={PUBLIC}")
    assert both["rules_while_sharing"] == {"miniupnpd": 2, "prerouting_miniupnpd": 2}  # TCP and UDP


@pytest.mark.slow
def test_a_h2_behind_plain_nat_gets_by_hash_through_the_dht(both: dict[str, Any]) -> None:
    """(a) get HASH on h2 finds h1 through the DHT node on the internet and verifies every piece."""
    assert_downloaded(both["h2"])
    assert both["identical"]["h2"]


@pytest.mark.slow
def test_b_h1b_gets_through_lsd_with_no_dht(both: dict[str, Any]) -> None:
    """(b) get HASH --no-dht on h1b, h1's LAN neighbour, finds h1 by LSD alone."""
    assert_downloaded(both["h1b"])
    assert both["identical"]["h1b"]


@pytest.mark.slow
def test_c_libtorrent_on_h2_fetches_the_magnet_from_the_mapped_address(both: dict[str, Any]) -> None:
    """(c) libtorrent, given the x.pe address share printed, fetches the manifest and every byte."""
    lt = both["lt"]["final"]
    assert lt["seeding"] is True and lt["total_done"] == 4 * 1024 * 1024
    assert both["identical"]["lt"]


@pytest.mark.slow
def test_d_doctor_on_h1_says_reachable_with_r1s_address(both: dict[str, Any]) -> None:
    """(d) doctor on h1: mapped by r1, external address 11.11.0.1, and a stranger's knock proves it."""
    report = both["doctor-h1"]["final"]
    assert report["reachable"] is True and report["verdict"].startswith("REACHABLE")
    assert report["external_address"] == R1_WAN
    assert report["mapped_ports"] == {"tcp": DOCTOR_PORTS["h1"], "udp": DOCTOR_PORTS["h1"]}
    assert report["gateway"] == "192.168.1.1" and report["bootstrap_reached"] is True
    assert report["lookup_p50"] is not None and report["lsd"] == "works"
    assert any("11.11.0.101" in u for u in report["unsolicited"])


@pytest.mark.slow
def test_d_doctor_on_h2_says_not_reachable_and_why(both: dict[str, Any]) -> None:
    """(d) doctor on h2: r2 offers no mapping, nothing from outside got in, and the advice says so."""
    report = both["doctor-h2"]["final"]
    assert report["reachable"] is False and report["verdict"].startswith("NOT REACHABLE")
    assert "192.168.2.1 offers neither UPnP IGD nor NAT-PMP/PCP" in report["verdict"]
    assert report["upnp"] == "unavailable" and report["mapped_ports"] == {}
    assert report["unsolicited"] == []
    assert report["bootstrap_reached"] is True  # the DHT works outward; only inward is closed


@pytest.mark.slow
def test_e_after_share_exits_miniupnpd_holds_no_mapping_of_ours(both: dict[str, Any]) -> None:
    """(e) Ctrl-C on share deletes both mappings before it exits (and exits promptly)."""
    after = both["after_exit"]
    assert after["exit_code"] is not None and after["exit_seconds"] < 10.0
    assert after["rules"] == NO_RULES


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["upnp", "natpmp"])
def test_a_and_e_with_only_one_mapping_protocol(scenario: Scenario, variant: str) -> None:
    """With only UPnP (or only NAT-PMP) on r1, share maps, h2 gets by hash, and the exit unmaps."""
    result = scenario("reach-get", variant)
    assert result["listening"]["public"] == PUBLIC
    assert result["rules_while_sharing"]["prerouting_miniupnpd"] == 2
    assert_downloaded(result["get"])
    assert result["identical"]
    assert result["after_exit"]["rules"] == NO_RULES
