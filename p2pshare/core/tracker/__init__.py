"""Trackers, sans-I/O: HTTP (BEP 3, 7, 23) and UDP (BEP 15) codecs, the UDP machine, BEP 12 tiers.

The asyncio client is :mod:`p2pshare.io.tracker_client`; the engine-facing service is
:mod:`p2pshare.engine.trackers`.
"""

from p2pshare.core.tracker.errors import (
    TrackerError,
    TrackerFailure,
    TrackerTimeout,
    TrackerUnreachable,
    UnsupportedTracker,
)
from p2pshare.core.tracker.http import (
    announce_url,
    parse_announce_response,
    parse_scrape_response,
    scrape_request_url,
)
from p2pshare.core.tracker.httpmsg import HttpResponse, HttpResponseReader, build_get
from p2pshare.core.tracker.messages import (
    AnnounceEvent,
    AnnounceRequest,
    AnnounceResponse,
    ScrapeResponse,
    ScrapeStats,
)
from p2pshare.core.tracker.tiers import TrackerTiers, tiers_from
from p2pshare.core.tracker.udp_machine import AnnounceDone, RequestFailed, ScrapeDone, UdpTrackerMachine
from p2pshare.core.tracker.url import TrackerUrl, parse_tracker_url, scrape_url

__all__ = [
    "AnnounceDone",
    "AnnounceEvent",
    "AnnounceRequest",
    "AnnounceResponse",
    "HttpResponse",
    "HttpResponseReader",
    "RequestFailed",
    "ScrapeDone",
    "ScrapeResponse",
    "ScrapeStats",
    "TrackerError",
    "TrackerFailure",
    "TrackerTimeout",
    "TrackerTiers",
    "TrackerUnreachable",
    "TrackerUrl",
    "UdpTrackerMachine",
    "UnsupportedTracker",
    "announce_url",
    "build_get",
    "parse_announce_response",
    "parse_scrape_response",
    "parse_tracker_url",
    "scrape_request_url",
    "scrape_url",
    "tiers_from",
]
