"""The token bucket and rate parsing: debits per batch, debt means a wait, text rates in binary units."""

from __future__ import annotations

import pytest

from p2pshare.config import CoopConfig
from p2pshare.core.rate import TokenBucket, parse_rate, rate_caps
from p2pshare.errors import UsageError


def test_a_batch_within_the_burst_needs_no_wait_and_debt_is_repaid_at_the_rate() -> None:
    """Credit covers a first batch; the next one leaves a debt whose wait is debt / rate."""
    b = TokenBucket(1000, 500, now=0.0)
    assert b.debit(400, 0.0) == 0.0
    assert b.debit(600, 0.0) == pytest.approx(0.5)
    assert b.delay(0.25) == pytest.approx(0.25)
    assert b.delay(0.5) == 0.0


def test_credit_never_exceeds_the_burst() -> None:
    """A long idle time refills at most ``burst`` bytes."""
    b = TokenBucket(1000, 500, now=0.0)
    b.debit(500, 0.0)
    assert b.debit(1500, 100.0) == pytest.approx(1.0)


def test_the_long_run_average_is_the_rate() -> None:
    """Debiting 64 KiB batches and sleeping as told moves exactly rate * time (+ one burst)."""
    b = TokenBucket(100_000, 25_000, now=0.0)
    now, moved = 0.0, 0
    while now < 10.0:
        moved += 65536
        now += b.debit(65536, now)
    assert moved == pytest.approx(100_000 * now + 25_000, abs=65536)


def test_rate_zero_is_unlimited() -> None:
    """A zero rate never asks for a wait."""
    b = TokenBucket(0, 0)
    assert not b.limited and b.debit(10**9, 0.0) == 0.0 and b.delay(0.0) == 0.0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("1000", 1000),
        ("500k", 512_000),
        ("8MiB/s", 8 << 20),
        ("8MB/s", 8 << 20),
        ("1.5m", 1_572_864),
        ("2 MiB/s", 2 << 20),
        ("1G", 1 << 30),
        ("64KiBps", 65536),
    ],
)
def test_rates_parse_in_binary_units(text: str, value: int) -> None:
    """Numbers with k/m/g, an optional B or iB and an optional /s give bytes per second."""
    assert parse_rate(text) == value


@pytest.mark.parametrize("text", ["", "fast", "-1k", "nan", "inf", "1x", "k"])
def test_bad_rates_are_usage_errors(text: str) -> None:
    """Text that is not a non-negative finite rate is a UsageError."""
    with pytest.raises(UsageError):
        parse_rate(text)


def test_rate_caps_keep_what_is_not_given() -> None:
    """Only the caps given as text change the config."""
    cfg = rate_caps(CoopConfig(max_up=5, max_down=7), "1k", None)
    assert (cfg.max_up, cfg.max_down) == (1024, 7)
