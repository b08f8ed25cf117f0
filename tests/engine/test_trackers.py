"""TrackerService: started/interval/completed/stopped, tier fall-through, scrape and status."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import replace

from p2pshare.config import TrackerConfig
from p2pshare.core import bencode
from p2pshare.core.types import PeerAddress
from p2pshare.engine.trackers import TrackerService, TrackerState, TransferTotals
from tests.engine.conftest import wait_until
from tests.helpers.tracker_servers import HttpTracker, UdpTracker, http_answer, info_hash, peer_id

CFG = replace(
    TrackerConfig(), min_interval=0.05, retry_base=0.05, retry_max=0.2, http_timeout=3.0,
    udp_retry_base=0.1, udp_max_retries=2, stopped_timeout=2.0,
)  # fmt: skip
IH = info_hash(9)


def closed_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service(
    tiers: list[list[str]], tag: int, port: int, got: list[PeerAddress], left: Callable[[], int] = lambda: 0,
    cfg: TrackerConfig = CFG,
) -> TrackerService:  # fmt: skip
    return TrackerService(
        IH, peer_id(tag), port, tiers, lambda: TransferTotals(uploaded=11, downloaded=22, left=left()),
        got.extend, cfg,
    )  # fmt: skip


def events(tracker: HttpTracker) -> list[bytes]:
    return [q.get("event", [b""])[0] for path, q in tracker.requests if path == "/announce"]


async def test_seeder_and_leecher_find_each_other_and_stopped_is_sent_on_close() -> None:
    """A second service gets the first one's address; both send started, then stopped on close."""
    async with HttpTracker() as tracker:
        seed_got: list[PeerAddress] = []
        leech_got: list[PeerAddress] = []
        seed = service([[tracker.url()]], 1, 7001, seed_got)
        leech = service([[tracker.url()]], 2, 7002, leech_got, left=lambda: 100)
        seed.start()
        await wait_until(lambda: seed.status()[0].state == TrackerState.WORKING, 5, "seed announced")
        leech.start()
        await wait_until(lambda: leech_got == [PeerAddress("127.0.0.1", 7001)], 5, "leecher got the seed")
        status = leech.status()[0]
        assert (status.seeders, status.leechers, status.peers) == (1, 1, 1)
        first = tracker.requests[0][1]
        assert (first["uploaded"], first["downloaded"], first["left"]) == ([b"11"], [b"22"], [b"0"])
        await seed.close()
        await leech.close()
        assert events(tracker) == [b"started", b"started", b"stopped", b"stopped"]
        assert tracker.swarm.peers[IH.value] == {}


async def test_reannounces_on_the_interval_and_completed_goes_out_at_once() -> None:
    """With a tiny interval the service re-announces without an event; completed() is sent promptly."""
    async with HttpTracker(interval=0) as tracker:  # 0 s is clamped up to min_interval
        svc = service([[tracker.url()]], 1, 7001, [], left=lambda: 5)
        svc.start()
        await wait_until(lambda: events(tracker).count(b"") >= 3, 5, "three regular re-announces")
        svc.completed()
        await wait_until(lambda: b"completed" in events(tracker), 5, "completed announce")
        await svc.close()
        sent = events(tracker)
        assert sent[0] == b"started" and sent.count(b"completed") == 1 and sent[-1] == b"stopped"


async def test_failed_tiers_fall_through_and_a_working_tracker_leads_its_tier() -> None:
    """Dead and refusing trackers are skipped; the working one in the next tier answers and is remembered."""
    async with HttpTracker() as good, HttpTracker() as refusing:
        refusing.script["/announce"] = lambda q: http_answer(bencode.encode({b"failure reason": b"go away"}))
        dead = f"http://127.0.0.1:{closed_port()}/announce"
        got: list[PeerAddress] = []
        dead_udp = f"udp://127.0.0.1:{closed_port(socket.SOCK_DGRAM)}"
        svc = service([[dead, refusing.url()], [dead_udp, good.url()]], 1, 7001, got)
        other = service([[good.url()]], 3, 7003, [])
        other.start()
        await wait_until(lambda: other.status()[0].state == TrackerState.WORKING, 5, "other announced")
        svc.start()
        await wait_until(lambda: got == [PeerAddress("127.0.0.1", 7003)], 10, "peers via the second tier")
        by_url = {s.url: s for s in svc.status()}
        assert by_url[dead].state == by_url[refusing.url()].state == TrackerState.FAILED
        assert "go away" in (by_url[refusing.url()].message or "")
        assert by_url[good.url()].state == TrackerState.WORKING
        assert svc.urls[2] == good.url()  # moved to the front of its tier
        assert [s.tier for s in svc.status()] == [0, 0, 1, 1]
        await svc.close()
        await other.close()


async def test_all_trackers_failing_are_retried_with_back_off() -> None:
    """When every tracker fails, rounds repeat after retry_base * 2**n, capped."""
    async with HttpTracker() as tracker:
        tracker.script["/announce"] = lambda q: http_answer(b"garbage")
        svc = service([[tracker.url()]], 1, 7001, [])
        svc.start()
        await wait_until(lambda: len(tracker.requests) >= 4, 5, "four failed rounds")
        status = svc.status()[0]
        assert status.state == TrackerState.FAILED and status.failures >= 4
        await svc.close()
        assert all(q.get("event") == [b"started"] for _, q in tracker.requests)  # never got through


async def test_udp_tracker_service_and_scrape() -> None:
    """Over UDP the leecher gets the seed, and scrape reports one seed and one leecher."""
    async with UdpTracker() as tracker:
        got: list[PeerAddress] = []
        seed = service([[tracker.url()]], 1, 7001, [])
        leech = service([[tracker.url()]], 2, 7002, got, left=lambda: 1)
        seed.start()
        await wait_until(lambda: seed.status()[0].state == TrackerState.WORKING, 5, "seed announced")
        leech.start()
        await wait_until(lambda: got == [PeerAddress("127.0.0.1", 7001)], 5, "leecher got the seed")
        stats = await leech.scrape()
        assert stats is not None and (stats.complete, stats.incomplete) == (1, 1)
        assert leech.status()[0].downloaded == 0
        await seed.close()
        await leech.close()
        assert [r.announce.event.name for r in tracker.received if r.announce][-2:] == ["STOPPED", "STOPPED"]


async def test_disabled_or_empty_service_does_nothing() -> None:
    """With trackers disabled, or none usable, start() announces nothing and close() is quick."""
    async with HttpTracker() as tracker:
        off = service([[tracker.url()]], 1, 7001, [], cfg=replace(CFG, enabled=False))
        off.start()
        empty = service([["wss://x/announce"]], 1, 7001, [])
        empty.start()
        await asyncio.sleep(0.2)
        await off.close()
        await empty.close()
        assert tracker.requests == [] and empty.status() == []


async def test_announce_now_is_held_to_the_minimum_interval() -> None:
    """Asking for peers over and over announces at most once per min interval (the tracker's, if larger)."""
    async with HttpTracker() as tracker:
        tracker.script["/announce"] = lambda q: http_answer(
            bencode.encode({b"interval": 1800, b"min interval": 1})
        )
        svc = service([[tracker.url()]], 1, 7001, [], cfg=replace(CFG, min_interval=0.3))
        svc.start()
        await wait_until(lambda: len(tracker.requests) == 1, 5, "first announce")
        loop = asyncio.get_running_loop()
        start = loop.time()
        while loop.time() - start < 2.5:
            svc.announce_now()
            await asyncio.sleep(0.02)
        await svc.close()
        regular = [q for _, q in tracker.requests if "event" not in q]
        assert 1 <= len(regular) <= 3  # the tracker's min interval (1 s) wins over ours (0.3 s)


async def test_tracker_id_is_echoed_and_a_failing_callback_does_not_stop_announcing() -> None:
    """A tracker id from one answer goes back in the next announce; on_peers raising is only logged."""
    async with HttpTracker(interval=0) as tracker:
        answer = {b"interval": 0, b"tracker id": b"T-42", b"peers": bytes([127, 0, 0, 9, 0, 80])}
        tracker.script["/announce"] = lambda q: http_answer(bencode.encode(answer))

        def broken(peers: list[PeerAddress]) -> None:
            raise RuntimeError("engine bug")

        svc = TrackerService(IH, peer_id(1), 7001, [[tracker.url()]], lambda: TransferTotals(), broken, CFG)
        svc.start()
        await wait_until(lambda: len(tracker.requests) >= 3, 5, "announces go on after the callback failed")
        await svc.close()
        assert "trackerid" not in tracker.requests[0][1]
        assert tracker.requests[1][1]["trackerid"] == [b"T-42"]


async def test_completed_before_the_first_answer_is_carried_by_started() -> None:
    """A download that finishes before any tracker answered sends started with left=0, not a second event."""
    async with HttpTracker() as tracker:
        svc = service([[tracker.url()]], 1, 7001, [])
        svc.completed()
        svc.start()
        await wait_until(lambda: svc.status()[0].state == TrackerState.WORKING, 5, "announced")
        await asyncio.sleep(0.2)
        await svc.close()
        assert events(tracker) == [b"started", b"stopped"]
