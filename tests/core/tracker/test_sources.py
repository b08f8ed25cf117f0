"""Where trackers come from: a manifest's announce/announce-list and a magnet's tr=."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from p2pshare.core import bencode
from p2pshare.core.magnet import make_magnet, parse_magnet
from p2pshare.core.metainfo import build_info, encode_torrent, parse_torrent
from p2pshare.core.tracker import TrackerTiers, tiers_from
from p2pshare.core.types import InfoHash

INFO = build_info("f.bin", [(("f.bin",), 5)], 16384, b"\x00" * 20, single_file=True)


def test_announce_and_announce_list_round_trip_and_keep_the_info_hash() -> None:
    """announce and announce-list written around the info dict parse back as given; the hash is unchanged."""
    raw = encode_torrent(
        INFO,
        announce="udp://a:1/announce",
        announce_list=[["udp://a:1/announce", "http://b/announce"], ["http://c/"]],
    )
    meta = parse_torrent(raw)
    assert meta.announce == "udp://a:1/announce"
    assert meta.announce_list == (("udp://a:1/announce", "http://b/announce"), ("http://c/",))
    assert meta.info_hash == INFO.info_hash
    assert parse_torrent(encode_torrent(INFO)).announce_list == ()


def test_malformed_announce_list_entries_are_skipped() -> None:
    """Tiers that are not lists, URLs that are not strings and empty tiers are dropped, not fatal."""
    top = {b"announce-list": [b"x", [1, b"http://a/"], [], [b""]], b"info": bencode.decode(INFO.raw)}
    assert parse_torrent(bencode.encode(top)).announce_list == (("http://a/",),)
    top[b"announce-list"] = b"http://nope/"
    assert parse_torrent(bencode.encode(top)).announce_list == ()


def test_magnet_tr_round_trip_in_order_without_duplicates() -> None:
    """tr= trackers with query strings survive make/parse in order; repeats are dropped."""
    ih = InfoHash(b"\x05" * 20)
    trackers = ("http://t/announce?passkey=a&b=c", "udp://u:6969/announce")
    link = make_magnet(ih, "n", trackers=trackers)
    assert link.count("&tr=") == 2
    assert parse_magnet(link).trackers == trackers
    assert parse_magnet(link + "&tr=udp%3A%2F%2Fu%3A6969%2Fannounce&tr=").trackers == trackers


@given(st.lists(st.sampled_from(["http://a/announce", "udp://b:1", "https://c/x", "wss://d/"]), max_size=6))
def test_magnet_trackers_become_one_tier_each_after_the_manifest(trs: list[str]) -> None:
    """Magnet trackers follow the manifest's tiers, one tier each, usable ones only, each once."""
    tiers = TrackerTiers(tiers_from("http://m/announce", [], trs), max_trackers=64)
    urls = tiers.urls()
    assert urls[0] == "http://m/announce"
    expected = list(dict.fromkeys(u for u in trs if not u.startswith("wss") and u != "http://m/announce"))
    assert urls[1:] == expected
    assert all(len(t) == 1 for t in tiers.tiers)
