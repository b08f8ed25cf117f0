"""Without any mapping protocol on r1, `get` on h2 cannot reach `share` on h1 and says so.

(With a mapping, the same download is tested in test_reach_lab.py, where `share` maps its
own port.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

Scenario = Callable[..., dict[str, Any]]


@pytest.mark.slow
def test_without_a_mapping_h2_cannot_reach_h1_and_get_says_no_peers(scenario: Scenario) -> None:
    """With no mapping protocol on r1, `get --peer <r1>` finds no reachable peer and exits 6."""
    result = scenario("share-get-none", "none")
    assert result["mapped_ports"] == {}
    assert result["exit_code"] == 6 and result["final"]["kind"] == "no_peers"
    assert not result["identical"]
