"""A torrent's trackers: the :class:`~p2pshare.engine.trackers.TrackerService` wired to a torrent.

Theory of operation
-------------------
The service knows trackers, not torrents; this room joins them.  Peers a tracker
names go to ``torrent.add_peers(..., "tracker")``, beside those from the DHT and
``--peer`` (trackers never replace the DHT).  The totals a tracker hears come from
the torrent: bytes up and down, and ``left`` (the selected bytes still missing; a
fixed non-zero value while the manifest is unknown, so we are not taken for a seed).
When the torrent completes, ``completed`` is sent once; a scrape runs shortly after
start and then on ``scrape_interval``; ``close()`` says ``stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from p2pshare.config import Config
from p2pshare.core.tracker.messages import ScrapeStats
from p2pshare.core.tracker.tiers import TrackerTiers
from p2pshare.core.types import PeerAddress
from p2pshare.engine.file_choice import selected_progress
from p2pshare.engine.trackers import TrackerService, TrackerStatus, TransferTotals
from p2pshare.io.tracker_client import TrackerClient

if TYPE_CHECKING:
    from p2pshare.engine.torrent import Torrent

__all__ = ["TorrentTrackers", "bind_host"]

log = logging.getLogger(__name__)


def bind_host(listen_host: str) -> str | None:
    """The address tracker sockets bind to: the listen address, unless it is a wildcard."""
    return None if listen_host in ("", "0.0.0.0", "::") else listen_host


class TorrentTrackers:
    """Announces one torrent to its tracker tiers while it runs."""

    def __init__(
        self,
        torrent: Torrent,
        tiers: Sequence[Sequence[str]],
        config: Config,
        *,
        port: int,
        local_host: str | None = None,
    ) -> None:
        self.torrent = torrent
        self._cfg = config
        self.service = TrackerService(
            torrent.info_hash,
            torrent.peer_id,
            port,
            TrackerTiers(tiers, max_trackers=config.tracker.max_trackers),
            self.totals,
            self._on_peers,
            config.tracker,
            client=TrackerClient(config.tracker, local_host=local_host),
        )
        self.last_scrape: ScrapeStats | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def active(self) -> bool:
        return bool(self._tasks)

    def totals(self) -> TransferTotals:
        t = self.torrent
        return TransferTotals(t.uploaded, t.downloaded, self.left())

    def left(self) -> int:
        """Selected bytes not yet verified (what BEP 3's ``left`` means for a partial download)."""
        t = self.torrent
        if t.info is None or t.picker is None:
            return self._cfg.announce.unknown_left
        verified, total = selected_progress(t.info, t.choice.selected, t.picker.have)
        return total - verified

    def _on_peers(self, peers: list[PeerAddress]) -> None:
        self.torrent.add_peers(peers, "tracker")

    def start(self) -> None:
        """Start announcing (nothing happens without trackers or with ``--no-trackers``)."""
        if not self.service.urls or not self._cfg.tracker.enabled or self._tasks:
            return
        self.service.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._watch_completion(), name="trackers-completed"),
            loop.create_task(self._scrape_loop(), name="trackers-scrape"),
        ]

    async def _watch_completion(self) -> None:
        await self.torrent.completed.wait()
        self.service.completed()

    async def _scrape_loop(self) -> None:
        await asyncio.sleep(self._cfg.announce.first_scrape_delay)
        while True:
            self.last_scrape = await self.service.scrape()
            await asyncio.sleep(self._cfg.announce.scrape_interval)

    def status(self) -> list[TrackerStatus]:
        return self.service.status()

    async def close(self) -> None:
        """Stop the helpers, then say ``stopped`` (bounded by the service's own timeout)."""
        if self.torrent.completed.is_set():
            self.service.completed()  # finished just now: 'completed' goes out before 'stopped'
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.service.close()
