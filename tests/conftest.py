"""Test-wide fixtures: the loopback-only network guard.

These machines have no internet, and traffic to any address outside the machine
is flagged.  Every test runs with a guard that fails any connect/sendto whose
destination is not loopback (127.0.0.0/8 or ::1), in Python code we run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.netguard import NonLoopbackTraffic, install

__all__ = ["NonLoopbackTraffic", "loopback_only"]

# Deadlines are timing assertions: on a loaded 2-core CI machine they fail healthy code.
# Speed belongs in benchmarks/, so property tests run without one.
settings.register_profile("p2pshare", deadline=None)
settings.load_profile("p2pshare")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any connect/sendto to a non-loopback address during the test.

    The pytest process itself allows loopback only, even inside a lab: lab addresses are
    reached only by processes the lab starts in its namespaces (tests/lab/guard).
    """
    install(monkeypatch.setattr)
    yield


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A developer's own ~/.config/p2pshare/config.toml never changes what a test sees."""
    monkeypatch.setenv("P2PSHARE_CONFIG", str(tmp_path_factory.getbasetemp() / "no-such-config.toml"))
    # No router and no LAN multicast from tests: the lab (tests/lab) turns these back on.
    monkeypatch.setenv("P2PSHARE_NO_PORT_MAPPING", "1")
    monkeypatch.setenv("P2PSHARE_NO_LSD", "1")
