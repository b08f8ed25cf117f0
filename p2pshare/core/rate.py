"""Rate limiting, sans-I/O: a token bucket debited per batch, and ``--max-up`` style rates.

A :class:`TokenBucket` holds at most ``burst`` bytes of credit and refills at
``rate`` bytes per second.  :meth:`TokenBucket.debit` takes a whole batch at once
(one read from a socket, one write of blocks), may drive the balance negative, and
returns how long the caller should pause so the average stays at ``rate``.  The
work per batch is constant: no per-block accounting.
"""

from __future__ import annotations

from dataclasses import replace

from p2pshare.config import CoopConfig
from p2pshare.errors import UsageError

__all__ = ["TokenBucket", "parse_rate", "rate_caps"]

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class TokenBucket:
    """Bytes per second with a bounded burst; ``rate`` 0 means unlimited."""

    __slots__ = ("_last", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float = 0.0) -> None:
        self.rate = float(rate)
        self.burst = float(max(burst, 1.0))
        self.tokens = self.burst
        self._last = now

    @property
    def limited(self) -> bool:
        return self.rate > 0

    def _refill(self, now: float) -> None:
        if now > self._last:
            self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = max(self._last, now)

    def debit(self, n: int, now: float) -> float:
        """Take ``n`` bytes; return the seconds to wait before the next batch (0: go on)."""
        if self.rate <= 0:
            return 0.0
        self._refill(now)
        self.tokens -= n
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def delay(self, now: float) -> float:
        """Seconds until the balance is back to zero (0 when there is credit)."""
        if self.rate <= 0:
            return 0.0
        self._refill(now)
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


def parse_rate(text: str) -> int:
    """``0``, ``500k``, ``8MiB/s``, ``1.5MB`` -> bytes per second (binary units: k = 1024); UsageError."""
    t = text.strip().lower().removesuffix("/s").removesuffix("ps").strip()
    t = t.removesuffix("ib").removesuffix("b").strip()
    unit = t[-1:] if t[-1:] in _UNITS and t[-1:] else ""
    number = t[: len(t) - len(unit)].strip()
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"not a rate: {text!r} (examples: 500KiB/s, 8MiB/s, 0 for no limit)") from None
    if not value >= 0 or value == float("inf"):
        raise UsageError(f"a rate must be a finite number >= 0: {text!r}")
    return int(value * _UNITS[unit])


def rate_caps(config: CoopConfig, max_up: str | None, max_down: str | None) -> CoopConfig:
    """``config`` with the caps given as text (None keeps the configured one); UsageError if malformed."""
    up = parse_rate(max_up) if max_up else config.max_up
    down = parse_rate(max_down) if max_down else config.max_down
    return replace(config, max_up=up, max_down=down)
