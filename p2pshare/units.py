"""Numbers for people: one unit family (binary), one rate unit (MiB/s), one clock style.

Sizes are binary (B, KiB, MiB, GiB, TiB) with one decimal; rates are always MiB/s,
so a column of rates never changes unit mid-transfer; ETAs and live elapsed times are
a clock (``0:07``, ``12:30``, ``1:02:03``), rounded up so a running job never reads
``0:00``.  A finished job's duration under a minute keeps its tenths (``0.4 s``), so
that size / time matches the average rate printed beside it.
"""

from __future__ import annotations

import math

__all__ = ["MIB", "human_elapsed", "human_rate", "human_size", "human_time", "middle_ellipsis"]

MIB = 1024 * 1024


def human_size(n: float) -> str:
    """``512 B``, ``1.5 KiB``, ``3.0 GiB``: never a bare byte count."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def human_rate(rate: float) -> str:
    """Bytes per second in MiB/s: two decimals below 10 MiB/s, one above."""
    mib = max(rate, 0.0) / MIB
    return f"{mib:.2f} MiB/s" if mib < 10 else f"{mib:.1f} MiB/s"


def human_time(seconds: float | None) -> str:
    """A clock: ``0:07``, ``12:30``, ``1:02:03``; ``--:--`` when unknown."""
    if seconds is None or math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        return "--:--"
    whole = math.ceil(seconds) if seconds > 0 else 0
    m, s = divmod(whole, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def human_elapsed(seconds: float) -> str:
    """How long a finished job took: ``0.4 s``, ``12.3 s``, then a clock from a minute on."""
    if seconds < 60:
        return f"{max(seconds, 0.0):.1f} s"
    return human_time(seconds)


def middle_ellipsis(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by an ellipsis in the middle (start and end kept)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return "…"
    keep = width - 1
    head = (keep + 1) // 2
    tail = keep - head
    return text[:head] + "…" + (text[-tail:] if tail else "")
