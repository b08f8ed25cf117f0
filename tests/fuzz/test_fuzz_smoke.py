"""A short run of every fuzz target (`make fuzz` runs the long one): no finding; the harness finds one."""

from __future__ import annotations

import pytest

from fuzz.run import fuzz_builtin
from fuzz.targets import TARGETS, Target

SHORT = 3000


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_short_run_has_no_finding(name: str) -> None:
    """Mutated inputs raise only the target's typed errors; some are rejected and some accepted."""
    report = fuzz_builtin(TARGETS[name], SHORT, seed=7, save=False)
    assert report.findings == []
    assert report.inputs == SHORT
    assert 0 < report.rejected < SHORT, "mutations should produce both bad and good inputs"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_are_accepted(name: str) -> None:
    """Every seed is a valid input of its parser (else mutations start from noise)."""
    target = TARGETS[name]
    for seed in target.seeds():
        target.run(seed)


def test_harness_reports_an_unexpected_exception() -> None:
    """A parser that raises an untyped error on some inputs is reported as a finding."""

    def fragile(data: bytes) -> None:
        if len(data) > 3 and data[0] == data[1]:
            raise KeyError("bug")
        raise ValueError("typed rejection")

    target = Target("fragile", fragile, (ValueError,), lambda: [b"abcd", b"zzzz" * 4], False)
    report = fuzz_builtin(target, 2000, seed=1, save=False)
    assert report.findings and "KeyError" in report.findings[0]
