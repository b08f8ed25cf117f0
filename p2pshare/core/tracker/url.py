"""Tracker URLs: which ones we can use, and the scrape URL that goes with an announce URL."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from p2pshare.core.tracker.errors import UnsupportedTracker

__all__ = ["SCHEMES", "TrackerUrl", "parse_tracker_url", "scrape_url"]

SCHEMES = ("http", "https", "udp")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class TrackerUrl:
    """A validated tracker URL split into what a client needs to reach it."""

    url: str
    scheme: str  #: http, https or udp
    host: str  #: a name or an IP literal (IPv6 without brackets)
    port: int
    target: str  #: path plus query, as sent in an HTTP request line ("/" at least)

    @property
    def host_header(self) -> str:
        """The HTTP ``Host`` value: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if _DEFAULT_PORTS.get(self.scheme) == self.port else f"{host}:{self.port}"


def parse_tracker_url(url: str) -> TrackerUrl:
    """Split and check a tracker URL; :class:`UnsupportedTracker` says what is wrong with it."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UnsupportedTracker(f"malformed tracker URL {text!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsupportedTracker(f"tracker URL {text!r}: only http, https and udp trackers are supported")
    host = parts.hostname
    if not host:
        raise UnsupportedTracker(f"tracker URL {text!r} has no host")
    if port is None:
        if scheme == "udp":
            raise UnsupportedTracker(f"udp tracker URL {text!r} has no port")
        port = _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise UnsupportedTracker(f"tracker URL {text!r} has port {port}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return TrackerUrl(text, scheme, host, port, target)


def scrape_url(announce_url: str) -> str | None:
    """The scrape URL by the usual convention, or None when the tracker cannot be scraped that way.

    The last path segment must start with ``announce``; that word becomes ``scrape``
    (``/announce.php?k=1`` -> ``/scrape.php?k=1``).  UDP trackers scrape at the same address.
    """
    if announce_url.lower().startswith("udp:"):
        return announce_url
    base, sep, query = announce_url.partition("?")
    head, slash, last = base.rpartition("/")
    if not slash or head.endswith(":/") or not last.startswith("announce"):  # ":/": the slash of "//host"
        return None
    return f"{head}/scrape{last[len('announce') :]}{sep}{query}"
