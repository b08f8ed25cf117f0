"""BEP 12 tracker tiers: which tracker to ask next.

Theory of operation
-------------------
A manifest with ``announce-list`` uses only that list (its ``announce`` is ignored);
without one, ``announce`` is a tier of its own.  A magnet's ``tr=`` trackers come after,
each in its own tier (the order the link gives is kept, as libtorrent does).  URLs we
cannot use (other schemes, malformed) are left out and listed in ``rejected``; a URL
seen twice is kept at its first place; at most ``max_trackers`` are kept.

Each tier is shuffled once, when the list is built.  Trackers are tried in order, first
tier first; a tracker that answers moves to the front of its tier (``mark_working``),
so the next announce starts with it.  A tier whose trackers all fail falls through to
the next tier, simply by the order of :meth:`TrackerTiers.urls`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from p2pshare.core.tracker.errors import UnsupportedTracker
from p2pshare.core.tracker.url import parse_tracker_url

__all__ = ["TrackerTiers", "tiers_from"]


def tiers_from(
    announce: str | None,
    announce_list: Sequence[Sequence[str]] = (),
    magnet_trackers: Iterable[str] = (),
) -> list[list[str]]:
    """The tiers of a manifest (BEP 12) followed by a magnet's ``tr=`` trackers, one tier each."""
    tiers = [list(t) for t in announce_list if t]
    if not tiers and announce:
        tiers = [[announce]]
    tiers.extend([url] for url in magnet_trackers)
    return tiers


class TrackerTiers:
    """Tiers of tracker URLs in the order they are to be tried."""

    def __init__(
        self, tiers: Sequence[Sequence[str]], *, max_trackers: int, rand: random.Random | None = None
    ) -> None:
        rand = rand or random.Random()
        seen: set[str] = set()
        self.rejected: list[tuple[str, str]] = []  #: (url, why) of every URL left out
        self._tiers: list[list[str]] = []
        for tier in tiers:
            kept: list[str] = []
            for raw in tier:
                url = raw.strip()
                if url in seen:
                    continue
                try:
                    parse_tracker_url(url)
                except UnsupportedTracker as exc:
                    self.rejected.append((url, str(exc)))
                    continue
                if len(seen) >= max_trackers:
                    self.rejected.append((url, f"more than {max_trackers} trackers"))
                    continue
                seen.add(url)
                kept.append(url)
            if kept:
                rand.shuffle(kept)
                self._tiers.append(kept)

    @property
    def tiers(self) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(t) for t in self._tiers)

    def urls(self) -> list[str]:
        """Every tracker, in the order to try them."""
        return [url for tier in self._tiers for url in tier]

    def mark_working(self, url: str) -> None:
        """``url`` answered: it moves to the front of its tier (BEP 12)."""
        for tier in self._tiers:
            if url in tier:
                tier.remove(url)
                tier.insert(0, url)
                return
        raise KeyError(url)

    def __len__(self) -> int:
        return sum(len(t) for t in self._tiers)

    def __bool__(self) -> bool:
        return bool(self._tiers)
