"""A torrent's trackers: the :class:`~p2pshare.engine.trackers.TrackerService` wired to a torrent.

Theory of operation
-------------------
The service knows trackers, not torrents; this room joins them.  Peers a tracker
names go to ``torrent.add_peers(..., "tracker")``, beside those from the DHT and
``--peer`` (trackers never replace the DHT).  The totals a tracker hears come from
the torrent: bytes up and down, and ``left`` (the bytes still missing, chosen files or
not, so a partial download is never taken for a seed; a fixed non-zero value while the
manifest is unknown).  When the torrent has every piece, ``completed`` is sent once; a
scrape runs shortly after start and then on ``scrape_interval``; ``close()`` says ``stopped``.
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
        """Bytes of the torrent not yet verified, chosen or not: a tracker takes ``left == 0`` for a
        seed, and a download of some files only is not one."""
        t = self.torrent
        if t.info is None or t.picker is None:
            return self._cfg.announce.unknown_left
        verified, total = selected_progress(t.info, None, t.picker.have)
        return total - verified

    def _is_seed(self) -> bool:
        picker = self.torrent.picker
        return picker is not None and picker.have.complete

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
        if self._is_seed():  # 'completed' means every piece, not the end of a partial choice
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
        if self.torrent.completed.is_set() and self._is_seed():
            self.service.completed()  # finished just now: 'completed' goes out before 'stopped'
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.service.close()
