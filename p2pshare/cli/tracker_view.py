"""What the views say about trackers: one ``tracker`` JSON event or line each time one changes.

The views poll :meth:`~p2pshare.engine.tracker_room.TorrentTrackers.status` with their
other snapshots; :class:`TrackerWatch` remembers what it last reported per tracker and
hands back only the trackers whose state or message changed (a tracker that keeps
working, answer after answer, is reported once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p2pshare.engine.runner import Swarm
    from p2pshare.engine.trackers import TrackerStatus

__all__ = ["TrackerWatch", "tracker_dict", "tracker_line"]


def tracker_dict(t: TrackerStatus) -> dict[str, Any]:
    """The JSON ``tracker`` event."""
    return {
        "event": "tracker",
        "url": t.url,
        "tier": t.tier,
        "state": str(t.state),
        "message": t.message,
        "peers": t.peers,
        "seeders": t.seeders,
        "leechers": t.leechers,
    }


def tracker_line(t: TrackerStatus) -> str:
    """One line for people."""
    if str(t.state) == "working":
        counts = "" if t.seeders is None else f" ({t.seeders} seeder(s), {t.leechers} leecher(s))"
        return f"tracker {t.url}: {t.peers} peer(s){counts}"
    return f"tracker {t.url}: {t.state}" + (f": {t.message}" if t.message else "")


class TrackerWatch:
    """Remembers the last reported (state, message) of each tracker."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[str, str | None]] = {}

    def changes(self, swarm: Swarm) -> list[TrackerStatus]:
        out = []
        for t in swarm.trackers.status():
            key = (str(t.state), t.message)
            if str(t.state) in ("working", "failed") and self._last.get(t.url) != key:
                self._last[t.url] = key
                out.append(t)
        return out
