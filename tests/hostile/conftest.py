"""Hostile-peer tests run CLI processes; they are marked slow like the other end-to-end tests."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/hostile/" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
