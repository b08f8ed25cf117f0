"""The network guard: lab processes may reach the lab's networks, nothing outside; pytest only loopback."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.netguard import LAB_NETS_ENV, NonLoopbackTraffic, allowed_from_env, in_lab_netns

Scenario = Callable[..., dict[str, Any]]


@pytest.mark.slow
def test_lab_process_reaches_lab_addresses_but_not_the_outside(scenario: Scenario) -> None:
    """Inside h1, a datagram to r2's lab address is sent, one to 8.8.8.8 is refused by the guard."""
    result = scenario("guard", "none")
    assert result["lab"] == "sent"
    assert result["outside"] == "refused"
    assert result["loopback"] == "sent"


def test_pytest_process_ignores_lab_networks_in_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even with P2PSHARE_LAB_NETS set, the test process is in no lab namespace and allows loopback only."""
    monkeypatch.setenv(LAB_NETS_ENV, "11.11.0.0/24")
    assert not in_lab_netns()
    assert allowed_from_env() == []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(NonLoopbackTraffic):
        s.sendto(b"x", ("11.11.0.1", 9))
