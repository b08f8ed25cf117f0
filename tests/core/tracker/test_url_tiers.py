"""Tracker URLs, scrape URLs and BEP 12 tiers."""

from __future__ import annotations

import random

import pytest

from p2pshare.core.tracker import TrackerTiers, UnsupportedTracker, parse_tracker_url, scrape_url, tiers_from


def test_parse_tracker_url_defaults_ports_and_keeps_the_query() -> None:
    """http/https default their ports, the target keeps path and query, IPv6 hosts are bracketed in Host."""
    u = parse_tracker_url("http://t.example/announce?passkey=1")
    assert (u.scheme, u.host, u.port, u.target, u.host_header) == (
        "http", "t.example", 80, "/announce?passkey=1", "t.example",
    )  # fmt: skip
    u = parse_tracker_url("https://[::1]:8443")
    assert (u.port, u.target, u.host_header) == (8443, "/", "[::1]:8443")
    assert parse_tracker_url("udp://127.0.0.1:6969/announce").port == 6969


@pytest.mark.parametrize(
    "url",
    ["wss://t/announce", "udp://t/announce", "http:///announce", "http://t:99999/", "dht://x", "http://[::1"],
)
def test_unusable_urls_are_refused(url: str) -> None:
    """Unknown schemes, a UDP URL without port, no host and bad ports raise UnsupportedTracker."""
    with pytest.raises(UnsupportedTracker):
        parse_tracker_url(url)


@pytest.mark.parametrize(
    ("announce", "scrape"),
    [
        ("http://t/announce", "http://t/scrape"),
        ("http://t/x/announce.php?k=1", "http://t/x/scrape.php?k=1"),
        ("http://t/a", None),
        ("http://t/announce/x", None),
        ("http://announce", None),
        ("udp://t:1", "udp://t:1"),
    ],
)
def test_scrape_url_convention(announce: str, scrape: str | None) -> None:
    """'announce' in the last path segment becomes 'scrape'; other URLs cannot be scraped."""
    assert scrape_url(announce) == scrape


def test_announce_list_wins_over_announce_and_magnet_trackers_follow() -> None:
    """BEP 12: with an announce-list, announce is ignored; tr= trackers are one tier each after it."""
    assert tiers_from("http://a/announce", [["http://b/announce"], []], ["udp://c:1"]) == [
        ["http://b/announce"],
        ["udp://c:1"],
    ]
    assert tiers_from("http://a/announce", []) == [["http://a/announce"]]
    assert tiers_from(None, []) == []


def test_tiers_shuffle_within_a_tier_only() -> None:
    """Shuffling mixes a tier's order but never moves a tracker into another tier."""
    first = [f"http://t{i}/announce" for i in range(8)]
    second = ["udp://u:1", "udp://v:1"]
    orders = set()
    for seed in range(20):
        tiers = TrackerTiers([first, second], max_trackers=64, rand=random.Random(seed))
        urls = tiers.urls()
        assert sorted(urls[:8]) == sorted(first) and sorted(urls[8:]) == sorted(second)
        orders.add(tuple(urls[:8]))
    assert len(orders) > 1


def test_working_tracker_moves_to_front_of_its_tier() -> None:
    """mark_working puts a tracker first in its own tier and leaves other tiers alone."""
    tiers = TrackerTiers([["http://a/", "http://b/", "http://c/"], ["http://d/"]], max_trackers=9)
    last = tiers.urls()[2]
    tiers.mark_working(last)
    assert tiers.urls()[0] == last and tiers.urls()[3] == "http://d/"
    tiers.mark_working("http://d/")
    assert tiers.urls()[3] == "http://d/"
    with pytest.raises(KeyError):
        tiers.mark_working("http://zzz/")


def test_duplicates_unsupported_and_excess_trackers_are_left_out() -> None:
    """A repeated URL keeps its first place, bad schemes are rejected with a reason, the total is capped."""
    tiers = TrackerTiers(
        [["http://a/", "wss://w/"], ["http://a/", "http://b/"], ["http://c/"], ["http://d/"]],
        max_trackers=3,
        rand=random.Random(1),
    )
    assert tiers.tiers == (("http://a/",), ("http://b/",), ("http://c/",))
    assert [url for url, _ in tiers.rejected] == ["wss://w/", "http://d/"]
    assert len(tiers) == 3 and tiers
    assert not TrackerTiers([["ftp://x/"]], max_trackers=3)
