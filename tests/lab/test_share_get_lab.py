"""`p2pshare get` (and libtorrent) on h2, behind plain NAT, download from `p2pshare share` on h1 once mapped.

The engine does not call the port mapper yet (that wiring follows the engine refactor); here
the lab's agent maps the port `share` listens on, as the engine will, and `get` is given r1's
external address with --peer (no DHT), so only the mapping can make h1 reachable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.lab.scenarios import TCP_PORT

Scenario = Callable[..., dict[str, Any]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario_name", "variant"), [("share-get-upnp", "upnp"), ("share-get-natpmp", "natpmp")]
)
def test_h2_downloads_from_h1_through_both_nats_once_h1_port_is_mapped(
    scenario: Scenario, scenario_name: str, variant: str
) -> None:
    """With the share port mapped on r1, `get` on h2 verifies every piece and the file is identical."""
    result = scenario(scenario_name, variant)
    assert result["mapped_ports"].get("tcp") == TCP_PORT
    assert result["exit_code"] == 0, result["final"]
    assert result["final"]["event"] == "done" and result["final"]["verified"] is True
    assert result["identical"]
    assert "first_peer" in result["marks"]
    assert result["rules_after_close"] == {"miniupnpd": 0, "prerouting_miniupnpd": 0}


@pytest.mark.slow
def test_without_a_mapping_h2_cannot_reach_h1_and_get_says_no_peers(scenario: Scenario) -> None:
    """With no mapping protocol on r1, the same `get` finds no reachable peer and exits 6."""
    result = scenario("share-get-none", "none")
    assert result["mapped_ports"] == {}
    assert result["exit_code"] == 6 and result["final"]["kind"] == "no_peers"
    assert not result["identical"]


@pytest.mark.slow
def test_libtorrent_on_h2_downloads_from_p2pshare_on_h1_through_both_nats(scenario: Scenario) -> None:
    """libtorrent, given only the magnet and r1's mapped address, fetches the metadata and every piece."""
    result = scenario("share-ltget-upnp", "upnp")
    assert result["mapped_ports"].get("tcp") == TCP_PORT
    assert result["seeding"] is True and result["total_done"] == 4 * 1024 * 1024
    assert result["identical"]
    assert result["rules_after_close"] == {"miniupnpd": 0, "prerouting_miniupnpd": 0}
