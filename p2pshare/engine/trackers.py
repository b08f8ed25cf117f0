"""The engine's view of trackers: announce a torrent, keep announcing, report what happened.

Theory of operation
-------------------
One :class:`TrackerService` per torrent.  It knows the info hash, our peer id and port,
the tracker tiers (BEP 12), a ``stats_getter`` for the transfer totals and an
``on_peers`` callback; it does not know the torrent class.

``start()`` runs one task.  Each *round* walks the trackers in tier order and stops at
the first that answers (that one moves to the front of its tier); its peers go to
``on_peers`` and its interval (clamped by config) sets the next round.  When every
tracker fails, the next round comes after ``retry_base * 2**n`` (capped at
``retry_max``).  A tracker first hears ``started``; ``completed()`` sends ``completed``
at once to the tracker in use; ``announce_now()`` asks for a round early (never more
often than the tracker's ``min interval``).  ``close()`` stops the task and sends
``stopped``, bounded by ``stopped_timeout``, to every tracker that heard ``started``
(preceded by ``completed`` to the tracker in use when a finished download was not yet reported).
``scrape()`` asks the trackers in order until one answers.  ``status()`` is a snapshot
per tracker for the views.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from p2pshare.config import TrackerConfig
from p2pshare.core.tracker.errors import TrackerError
from p2pshare.core.tracker.messages import AnnounceEvent, AnnounceRequest, AnnounceResponse, ScrapeStats
from p2pshare.core.tracker.tiers import TrackerTiers
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.errors import RemoteProtocolError
from p2pshare.io.tracker_client import TrackerClient

__all__ = ["TrackerService", "TrackerState", "TrackerStatus", "TransferTotals"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TransferTotals:
    """What the tracker is told: bytes up, bytes down, bytes still missing."""

    uploaded: int = 0
    downloaded: int = 0
    left: int = 0


class TrackerState(StrEnum):
    """The states a tracker shows in :class:`TrackerStatus` (strings, so JSON views print them)."""

    IDLE = "idle"  #: not asked yet (or a later tier while an earlier one works)
    ANNOUNCING = "announcing"
    WORKING = "working"  #: answered the last time it was asked
    FAILED = "failed"  #: failed the last time it was asked; ``message`` says why


@dataclass(frozen=True, slots=True)
class TrackerStatus:
    """A snapshot of one tracker, for status views."""

    url: str
    tier: int
    state: TrackerState = TrackerState.IDLE
    message: str | None = None  #: the last error, or the tracker's warning
    peers: int = 0  #: peers in the last answer
    seeders: int | None = None
    leechers: int | None = None
    downloaded: int | None = None  #: from scrape
    failures: int = 0  #: failures in a row
    last_announce: float | None = None  #: loop time of the last answer
    next_announce: float | None = None  #: loop time of the next round (the tracker in use)


class TrackerService:
    """Announces one torrent to its trackers for as long as it runs."""

    def __init__(
        self,
        info_hash: InfoHash,
        peer_id: bytes,
        port: int,
        tiers: Sequence[Sequence[str]] | TrackerTiers,
        stats_getter: Callable[[], TransferTotals],
        on_peers: Callable[[list[PeerAddress]], None],
        cfg: TrackerConfig,
        *,
        client: TrackerClient | None = None,
        rand: random.Random | None = None,
    ) -> None:
        rand = rand or random.Random()
        self._tiers = (
            tiers
            if isinstance(tiers, TrackerTiers)
            else TrackerTiers(tiers, max_trackers=cfg.max_trackers, rand=rand)
        )
        self._info_hash, self._peer_id, self._port = info_hash, peer_id, port
        self._stats, self._on_peers, self._cfg = stats_getter, on_peers, cfg
        self._client = client or TrackerClient(cfg)
        self._key = rand.getrandbits(32)
        self._status = {
            url: TrackerStatus(url, tier) for tier, urls in enumerate(self._tiers.tiers) for url in urls
        }
        for url, why in self._tiers.rejected:
            log.info("tracker %s left out: %s", url, why)
        self._tracker_ids: dict[str, bytes] = {}
        self._started: set[str] = set()  #: trackers that heard 'started'
        self._completed_due = False
        self._completed_sent = False
        self._min_interval = cfg.min_interval
        self._last_round: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- what the engine calls ---------------------------------------------------------------
    @property
    def urls(self) -> list[str]:
        return self._tiers.urls()

    def start(self) -> None:
        """Begin announcing (no-op without trackers, when disabled, or when already running)."""
        if self._task is None and not self._closed and self._tiers and self._cfg.enabled:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="trackers")

    def completed(self) -> None:
        """The download just finished: tell the tracker in use now."""
        if not self._completed_sent:
            self._completed_due = True
            self._wake.set()

    def announce_now(self) -> None:
        """Ask for peers early; honoured once the tracker's minimum interval has passed."""
        self._wake.set()

    def status(self) -> list[TrackerStatus]:
        """One snapshot per tracker, in the order they are tried."""
        return [self._status[url] for url in self._tiers.urls()]

    async def scrape(self) -> ScrapeStats | None:
        """Swarm counts from the first tracker (in tier order) that answers a scrape, or None."""
        for url in self._tiers.urls():
            try:
                response = await self._client.scrape(url, [self._info_hash])
            except (TrackerError, RemoteProtocolError) as exc:
                log.debug("scrape of %s failed: %s", url, exc)
                continue
            stats = response.files.get(self._info_hash)
            if stats is not None:
                self._update(
                    url, seeders=stats.complete, leechers=stats.incomplete, downloaded=stats.downloaded
                )
                return stats
        return None

    async def close(self) -> None:
        """Stop announcing, say ``stopped`` to every tracker that heard ``started``, close sockets."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._started:
            in_use = next(url for url in self._tiers.urls() if url in self._started)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._cfg.stopped_timeout):
                    await asyncio.gather(
                        *(self._goodbye(url, url == in_use) for url in sorted(self._started)),
                        return_exceptions=True,
                    )
        await self._client.aclose()

    async def _goodbye(self, url: str, in_use: bool) -> None:
        """``stopped``; first ``completed`` to the tracker in use if the download ended unreported."""
        if in_use and self._completed_due and not self._completed_sent:
            with contextlib.suppress(TrackerError, RemoteProtocolError):
                await self._announce_one(url, AnnounceEvent.COMPLETED)
                self._completed_due, self._completed_sent = False, True
        await self._announce_one(url, AnnounceEvent.STOPPED)

    # -- the loop --------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            self._last_round = loop.time()
            self._wake.clear()
            url, interval = await self._round()
            if url is None:
                wait = min(self._cfg.retry_base * 2**failures, self._cfg.retry_max)
                failures += 1
            else:
                wait, failures = interval, 0
            next_at = loop.time() + wait
            if url is not None:
                self._update(url, next_announce=next_at)
            await self._sleep_until(next_at)

    async def _sleep_until(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while not self._completed_due and (remaining := deadline - loop.time()) > 0:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races the wake.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._wake.wait()
            if self._wake.is_set():  # announce_now(): early, but not before the minimum interval
                self._wake.clear()
                deadline = min(deadline, (self._last_round or 0.0) + self._min_interval)

    async def _round(self) -> tuple[str | None, float]:
        """Announce to the first tracker that answers; return it and its interval."""
        for url in self._tiers.urls():
            event = AnnounceEvent.NONE
            if url not in self._started:
                event = AnnounceEvent.STARTED
            elif self._completed_due:
                event = AnnounceEvent.COMPLETED
            self._update(url, state=TrackerState.ANNOUNCING)
            try:
                response = await self._announce_one(url, event)
            except (TrackerError, RemoteProtocolError) as exc:
                failures = self._status[url].failures + 1
                self._update(url, state=TrackerState.FAILED, message=str(exc), failures=failures)
                log.info("tracker %s: %s", url, exc)
                continue
            self._tiers.mark_working(url)
            if event is AnnounceEvent.STARTED:
                self._started.add(url)
            if self._completed_due and (event is AnnounceEvent.COMPLETED or self._stats().left == 0):
                self._completed_due, self._completed_sent = False, True
            self._min_interval = max(self._cfg.min_interval, response.min_interval or 0.0)
            loop_now = asyncio.get_running_loop().time()
            self._update(
                url, state=TrackerState.WORKING, message=response.warning, peers=len(response.peers),
                seeders=response.complete, leechers=response.incomplete, failures=0, last_announce=loop_now,
            )  # fmt: skip
            if response.peers:
                try:
                    self._on_peers(list(response.peers))
                except Exception:  # the engine's callback must not stop announcing
                    log.exception("on_peers callback failed")
            return url, max(response.interval, self._min_interval)
        return None, 0.0

    async def _announce_one(self, url: str, event: AnnounceEvent) -> AnnounceResponse:
        totals = self._stats()
        request = AnnounceRequest(
            info_hash=self._info_hash,
            peer_id=self._peer_id,
            port=self._port,
            uploaded=totals.uploaded,
            downloaded=totals.downloaded,
            left=totals.left,
            event=event,
            numwant=0 if event is AnnounceEvent.STOPPED else self._cfg.numwant,
            key=self._key,
            tracker_id=self._tracker_ids.get(url),
        )
        response = await self._client.announce(url, request)
        if response.tracker_id:
            self._tracker_ids[url] = response.tracker_id
        return response

    def _update(self, url: str, **changes: object) -> None:
        self._status[url] = replace(self._status[url], **changes)  # type: ignore[arg-type]
