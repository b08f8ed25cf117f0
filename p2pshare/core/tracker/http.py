"""BEP 3 HTTP tracker codec: announce and scrape URLs out, bencoded answers in.

Building: the info hash and peer id travel as raw bytes, percent-escaped byte by byte
(every byte outside ``0-9A-Za-z.-_~``), and we always ask for compact peers (BEP 23).

Parsing: the body is bencode of bounded size and depth.  A ``failure reason`` raises
:class:`TrackerFailure`; anything malformed raises
:class:`~p2pshare.errors.RemoteProtocolError`.  Peers may come compact (BEP 23),
as BEP 3 dicts, and as compact IPv6 in ``peers6`` (BEP 7); at most ``max_peers`` are kept.
Intervals are clamped into ``[min_interval, max_interval]`` so no tracker makes us hammer
it or go silent for days.
"""

from __future__ import annotations

from urllib.parse import quote_from_bytes

from p2pshare.config import BencodeLimits, TrackerConfig
from p2pshare.core import bencode
from p2pshare.core.tracker.errors import TrackerFailure
from p2pshare.core.tracker.messages import AnnounceRequest, AnnounceResponse, ScrapeResponse, ScrapeStats
from p2pshare.core.tracker.peers import decode_compact, decode_dict_peers
from p2pshare.core.types import InfoHash
from p2pshare.errors import BencodeError, RemoteProtocolError

__all__ = ["announce_url", "parse_announce_response", "parse_scrape_response", "scrape_request_url"]


def _escape(raw: bytes) -> str:
    return quote_from_bytes(raw, safe="")


def _join(base: str, params: list[tuple[str, str]]) -> str:
    query = "&".join(f"{k}={v}" for k, v in params)
    if "?" not in base:
        return f"{base}?{query}"
    return base + query if base.endswith(("?", "&")) else f"{base}&{query}"


def announce_url(base: str, req: AnnounceRequest) -> str:
    """The GET URL of an announce to the tracker at ``base`` (which may carry its own query)."""
    params = [
        ("info_hash", _escape(req.info_hash.value)),
        ("peer_id", _escape(req.peer_id)),
        ("port", str(req.port)),
        ("uploaded", str(req.uploaded)),
        ("downloaded", str(req.downloaded)),
        ("left", str(req.left)),
        ("compact", "1"),
    ]
    if req.event.http_name:
        params.append(("event", req.event.http_name))
    if req.numwant is not None:
        params.append(("numwant", str(req.numwant)))
    params.append(("key", f"{req.key:08x}"))
    if req.tracker_id:
        params.append(("trackerid", _escape(req.tracker_id)))
    return _join(base, params)


def scrape_request_url(scrape_base: str, info_hashes: list[InfoHash]) -> str:
    """The GET URL of a scrape for ``info_hashes`` at a scrape URL (see :func:`url.scrape_url`)."""
    return _join(scrape_base, [("info_hash", _escape(h.value)) for h in info_hashes])


def _decode(body: bytes, cfg: TrackerConfig) -> dict[bytes, object]:
    if len(body) > cfg.max_response_bytes:
        raise RemoteProtocolError(f"tracker answer of {len(body)} bytes exceeds {cfg.max_response_bytes}")
    try:
        top = bencode.decode(
            body, BencodeLimits(max_depth=cfg.decode_depth, max_input=cfg.max_response_bytes)
        )
    except BencodeError as exc:
        raise RemoteProtocolError(f"tracker answer is not bencode: {exc}") from None
    if not isinstance(top, dict):
        raise RemoteProtocolError("tracker answer is not a bencoded dict")
    failure = top.get(b"failure reason")
    if failure is not None:
        raise TrackerFailure(_text(failure, cfg) or "(no reason given)")
    return top


def _text(value: object, cfg: TrackerConfig) -> str | None:
    if not isinstance(value, bytes):
        return None
    return value[: cfg.max_text].decode("utf-8", "replace")


def _count(top: dict[bytes, object], key: bytes) -> int | None:
    value = top.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RemoteProtocolError(f"tracker field {key.decode()!r} is not a non-negative integer")
    return value


def _clamp(seconds: float, cfg: TrackerConfig) -> float:
    return float(min(max(seconds, cfg.min_interval), cfg.max_interval))


def parse_announce_response(body: bytes, cfg: TrackerConfig) -> AnnounceResponse:
    """Parse an HTTP announce answer; raises TrackerFailure or RemoteProtocolError."""
    top = _decode(body, cfg)
    interval = _count(top, b"interval")
    min_interval = _count(top, b"min interval")
    raw_peers = top.get(b"peers", b"")
    if isinstance(raw_peers, bytes):
        peers = decode_compact(raw_peers, ipv6=False, limit=cfg.max_peers)
    else:
        peers = decode_dict_peers(raw_peers, limit=cfg.max_peers)
    raw6 = top.get(b"peers6")
    if raw6 is not None:
        if not isinstance(raw6, bytes):
            raise RemoteProtocolError("tracker 'peers6' is not a byte string")
        peers += decode_compact(raw6, ipv6=True, limit=cfg.max_peers - len(peers))
    tracker_id = top.get(b"tracker id")
    if tracker_id is not None and (not isinstance(tracker_id, bytes) or len(tracker_id) > cfg.max_tracker_id):
        raise RemoteProtocolError(f"tracker id is not a byte string of at most {cfg.max_tracker_id} bytes")
    return AnnounceResponse(
        interval=_clamp(cfg.default_interval if interval is None else interval, cfg),
        peers=tuple(peers),
        min_interval=None if min_interval is None else _clamp(min_interval, cfg),
        complete=_count(top, b"complete"),
        incomplete=_count(top, b"incomplete"),
        tracker_id=tracker_id or None,
        warning=_text(top.get(b"warning message"), cfg),
    )


def parse_scrape_response(body: bytes, cfg: TrackerConfig) -> ScrapeResponse:
    """Parse an HTTP scrape answer: ``files`` maps 20-byte hashes to their counts."""
    top = _decode(body, cfg)
    files = top.get(b"files", {})
    if not isinstance(files, dict):
        raise RemoteProtocolError("scrape 'files' is not a dict")
    if len(files) > cfg.max_scrape_files:
        raise RemoteProtocolError(f"scrape answer lists {len(files)} torrents, over {cfg.max_scrape_files}")
    out: dict[InfoHash, ScrapeStats] = {}
    for key, stats in files.items():
        if len(key) != 20 or not isinstance(stats, dict):
            raise RemoteProtocolError("scrape entry is not a 20-byte hash with a dict of counts")
        out[InfoHash(key)] = ScrapeStats(
            complete=_count(stats, b"complete") or 0,
            downloaded=_count(stats, b"downloaded") or 0,
            incomplete=_count(stats, b"incomplete") or 0,
        )
    return ScrapeResponse(out)
