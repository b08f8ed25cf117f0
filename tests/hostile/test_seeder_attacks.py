"""A ``share`` attacked from 127.0.0.9 while an honest ``get`` (127.0.0.3) downloads from it.

The issue's numbers are scaled down where the mechanism is the same: 200 slowloris
connections instead of 1,000, 1,000,000 unread requests instead of 2,000,000, and
3,000 connections in a burst instead of 500 a second for 20 seconds.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.e2e.procs import processes
from tests.hostile.checks import assert_only_blamed
from tests.hostile.harness import (
    GETTER_HOST,
    LIAR_HOST,
    MiB,
    RssSampler,
    downloaded_file,
    reasons_for,
    rss_mib,
    start_getter,
    start_seeder,
)
from tests.hostile.peers import churn, request_flood, slowloris

#: What a seeder may grow by under each attack (it rests at ~55 MiB).
SLOWLORIS_GROWTH_MIB = 30.0  #: 200 pending connections: a few KiB each, not a 256 KiB read buffer each
FLOOD_GROWTH_MIB = 15.0  #: the outgoing cap (DefenceConfig.max_outgoing_buffer, 4 MiB) plus the honest upload
CHURN_GROWTH_MIB = 8.0  #: what 3,000 finished connections may leave behind


def test_slowloris_handshakes_do_not_lock_out_an_honest_leecher(tmp_path: Path) -> None:
    """200 connections trickling a handshake a byte a second neither starve an honest leecher nor
    grow the seeder's memory past a few KiB each."""
    with processes() as procs:
        shared = start_seeder(procs, tmp_path, size=2 * MiB)
        base = rss_mib(shared.proc.pid)
        stop = threading.Event()
        attack = slowloris((shared.host, shared.port), LIAR_HOST, 200, stop, shared.info.info_hash.value)
        try:
            with RssSampler(shared.proc.pid) as mem:
                time.sleep(3)  # the attack is in place before the honest peer comes
                getter = start_getter(procs, tmp_path, str(shared.torrent), [shared.address], timeout=30)
                rc = getter.wait(60)
        finally:
            stop.set()
            attack.join(timeout=10)
        assert rc == 0, getter.describe()
        assert downloaded_file(tmp_path, shared) == shared.data
        assert_only_blamed(shared.proc, None, [GETTER_HOST], ban=False)
        assert_only_blamed(getter, None, [shared.host], ban=False)
        assert mem.peak - base < SLOWLORIS_GROWTH_MIB, (base, mem.peak)


def test_a_peer_that_never_reads_its_replies_is_dropped_at_the_outgoing_cap(tmp_path: Path) -> None:
    """A peer sending 1,000,000 requests and reading nothing is dropped once its replies pass the
    outgoing cap, while an honest leecher completes."""
    with processes() as procs:
        shared = start_seeder(procs, tmp_path, size=2 * MiB)
        base = rss_mib(shared.proc.pid)
        stop = threading.Event()
        result: dict[str, object] = {}
        flood = request_flood(shared, LIAR_HOST, 1_000_000, stop, result)
        try:
            with RssSampler(shared.proc.pid) as mem:
                getter = start_getter(procs, tmp_path, str(shared.torrent), [shared.address], timeout=30)
                rc = getter.wait(60)
                shared.proc.wait_for_event(
                    lambda e: (
                        e.get("event") in ("peer_disconnected", "peer_banned")
                        and e["address"].startswith(LIAR_HOST + ":")
                    ),
                    30,
                )
        finally:
            stop.set()
            flood.join(timeout=10)
        assert rc == 0, getter.describe()
        assert downloaded_file(tmp_path, shared) == shared.data
        assert any("outgoing" in r for r in reasons_for(shared.proc, LIAR_HOST)), reasons_for(
            shared.proc, LIAR_HOST
        )
        assert_only_blamed(shared.proc, LIAR_HOST, [GETTER_HOST], ban=False)
        assert mem.peak - base < FLOOD_GROWTH_MIB, (base, mem.peak)


def test_connection_churn_leaves_nothing_behind(tmp_path: Path) -> None:
    """3,000 connections that handshake and leave raise the seeder's resident memory by less than
    a few MiB, and an honest leecher still completes afterwards."""
    with processes() as procs:
        shared = start_seeder(procs, tmp_path, size=2 * MiB)
        time.sleep(1)
        base = rss_mib(shared.proc.pid)
        answered = churn(shared, LIAR_HOST, 3000, time.monotonic() + 60)
        time.sleep(2)  # let the last connections close
        after = rss_mib(shared.proc.pid)
        getter = start_getter(procs, tmp_path, str(shared.torrent), [shared.address], timeout=30)
        rc = getter.wait(60)
        assert answered >= 2900, answered
        assert rc == 0, getter.describe()
        assert downloaded_file(tmp_path, shared) == shared.data
        assert_only_blamed(shared.proc, None, [GETTER_HOST], ban=False)
        assert after - base < CHURN_GROWTH_MIB, (base, after)
