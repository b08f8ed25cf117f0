"""BEP 14 LSD in the NAT lab: h1 and h1b on r1's LAN find each other with no DHT and no tracker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Scenario = Callable[..., dict[str, Any]]


@pytest.mark.slow
def test_h1b_hears_h1_announce_and_ignores_its_own(scenario: Scenario) -> None:
    """h1b reports h1's LAN address, port and the shared info hash; neither reports itself."""
    result = scenario("lsd", "none")
    h1, h1b = result["h1"], result["h1b"]
    shared, only_h1 = result["infohashes"]["shared"], result["infohashes"]["only_h1"]
    found_v4 = [p for p in h1b["found"] if ":" not in p["host"]]
    assert found_v4 == [{"info_hash": shared, "host": result["addresses"]["h1"], "port": 6881}], h1b
    assert all(p["info_hash"] != only_h1 for p in h1b["found"]), "h1b takes no part in C"
    assert all(p["port"] == 6881 for p in h1b["found"])
    assert h1["found"] == [], "h1 started after h1b's only announce, and must not report itself"
    assert h1["stats"]["own_ignored"] >= 1 and h1b["stats"]["own_ignored"] >= 1
    assert h1["stats"]["malformed"] == 0 and h1b["stats"]["malformed"] == 0


@pytest.mark.slow
def test_lsd_over_ipv6_site_local_group_reaches_the_lan(scenario: Scenario) -> None:
    """h1b also hears h1 on [ff15::efc0:988f]:6771, from h1's link-local address with its scope."""
    result = scenario("lsd", "none")
    found_v6 = [p for p in result["h1b"]["found"] if ":" in p["host"]]
    assert len(found_v6) == 1 and found_v6[0]["host"].startswith("fe80::"), result["h1b"]
    assert "%" in found_v6[0]["host"]
    assert "ff15::efc0:988f" in result["h1b"]["stats"]["groups"]


@pytest.mark.slow
def test_h1b_downloads_from_the_peer_lsd_found_with_no_dht(scenario: Scenario) -> None:
    """h1 shares and announces by LSD; h1b hears h1's address and share port and fetches the file from it."""
    result = scenario("lsd-get", "none")
    v4 = [p for p in result["found"] if ":" not in p["host"]]
    assert v4 == [{"info_hash": result["info_hash"], "host": result["h1"], "port": result["port"]}]
    assert result["exit_code"] == 0 and result["final"]["verified"] is True
    assert result["identical"]
