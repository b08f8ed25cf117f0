"""DhtService: real nodes on loopback UDP (127.0.0.x), state persistence and the helpers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from p2pshare.config import DhtConfig
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.engine.dht_node import DhtService, bootstrap_from_env, run_standalone
from p2pshare.errors import UsageError
from p2pshare.io.dht_state import STATE_FILE

CFG = DhtConfig(bootstrap=())


async def swarm(count: int, first: int = 2, config: DhtConfig = CFG) -> list[DhtService]:
    """``count`` services on 127.0.0.<first>.., all bootstrapped from the first one."""
    boot = await DhtService.start(host=f"127.0.0.{first}", bootstrap=[], state_dir=None, config=config)
    rest = await asyncio.gather(
        *(
            DhtService.start(
                host=f"127.0.0.{first + i}",
                bootstrap=[("127.0.0.1", 9), boot.address],
                state_dir=None,
                config=config,
            )
            for i in range(1, count)
        )
    )
    return [boot, *rest]


@pytest.fixture
async def fifty() -> AsyncIterator[list[DhtService]]:
    services = await swarm(50)
    try:
        yield services
    finally:
        await asyncio.gather(*(s.close() for s in services))


@pytest.mark.timeout(60)
async def test_fifty_nodes_announce_and_find(fifty: list[DhtService]) -> None:
    """Among 50 loopback nodes (127.0.0.2-51), a peer announced by one is found by another."""
    ready = await asyncio.gather(*(s.wait_ready(10) for s in fifty))
    assert all(ready)
    info_hash = InfoHash(os.urandom(20))
    announced = await fifty[7].announce(info_hash, 6001, timeout=15)
    assert announced >= 3
    peers = await fifty[42].find_peers(info_hash, timeout=15)
    assert PeerAddress("127.0.0.9", 6001) in peers
    status = fifty[42].status()
    assert status["nodes"] >= 8 and status["port"] == fifty[42].port


async def test_get_peers_yields_as_found_and_stops_at_timeout() -> None:
    """get_peers is an async iterator that ends by itself within its timeout."""
    services = await swarm(6, first=60)
    try:
        await asyncio.gather(*(s.wait_ready(5) for s in services))
        info_hash = InfoHash(os.urandom(20))
        assert await services[1].announce(info_hash, 7000, implied_port=True, timeout=10) > 0
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        got = [p async for p in services[4].get_peers(info_hash, timeout=5)]
        assert loop.time() - t0 < 5.5
        assert got == [PeerAddress("127.0.0.61", services[1].port)]  # implied: our UDP port
        nothing = [p async for p in services[4].get_peers(InfoHash(os.urandom(20)), timeout=0.3)]
        assert nothing == []
    finally:
        await asyncio.gather(*(s.close() for s in services))


async def test_restart_from_state_needs_no_bootstrap(tmp_path: Path) -> None:
    """A node restarted from its state dir keeps its id and rejoins without bootstrap nodes."""
    services = await swarm(8, first=70)
    state = tmp_path / "state"
    try:
        node = await DhtService.start(
            host="127.0.0.80", bootstrap=[services[0].address], state_dir=state, config=CFG
        )
        assert await node.wait_ready(5)
        old_id = node.node_id
        await node.close()
        assert (state / STATE_FILE).exists()
        again = await DhtService.start(host="127.0.0.80", bootstrap=[], state_dir=state, config=CFG)
        try:
            assert again.node_id == old_id
            assert await again.wait_ready(5)
            info_hash = InfoHash(os.urandom(20))
            assert await services[3].announce(info_hash, 6500, timeout=10) > 0
            assert PeerAddress("127.0.0.73", 6500) in await again.find_peers(info_hash, timeout=10)
        finally:
            await again.close()
    finally:
        await asyncio.gather(*(s.close() for s in services))


async def test_keep_announced_reannounces_until_stopped() -> None:
    """keep_announced announces at once and again every reannounce_interval until stopped."""
    config = replace(CFG, reannounce_interval=0.3)
    services = await swarm(5, first=90, config=config)
    try:
        await asyncio.gather(*(s.wait_ready(5) for s in services))
        info_hash = InfoHash(os.urandom(20))
        services[2].keep_announced(info_hash, 6100)
        stored = services[0].endpoint.node.stats
        async with asyncio.timeout(10):
            while sum(s.endpoint.node.stats["announces_stored"] for s in services) < 6:
                await asyncio.sleep(0.05)
        services[2].stop_announcing(info_hash)
        assert services[2].status()["announcing"] == 0 and stored is not None
    finally:
        await asyncio.gather(*(s.close() for s in services))


async def test_add_node_pings_and_adds() -> None:
    """add_node (from a BEP 3 PORT message) puts a live node in the table."""
    a = await DhtService.start(host="127.0.0.100", bootstrap=[], state_dir=None, config=CFG)
    b = await DhtService.start(host="127.0.0.101", bootstrap=[], state_dir=None, config=CFG)
    try:
        a.add_node("127.0.0.101", b.port)
        async with asyncio.timeout(5):
            while a.status()["nodes"] == 0:
                await asyncio.sleep(0.02)
        assert a.endpoint.node.table.get(b.node_id) is not None
    finally:
        await a.close()
        await b.close()


async def test_close_ends_pending_lookups() -> None:
    """Closing the service ends a get_peers iteration that is still waiting."""
    a = await DhtService.start(host="127.0.0.110", bootstrap=[("127.0.0.1", 9)], state_dir=None, config=CFG)
    info_hash = InfoHash(os.urandom(20))

    async def consume() -> list[PeerAddress]:
        return [p async for p in a.get_peers(info_hash, timeout=20)]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    await a.close()
    async with asyncio.timeout(5):
        assert await task == []


async def test_run_standalone_until_stopped(tmp_path: Path) -> None:
    """run_standalone calls on_ready with the bound service and returns when stop is set, saving state."""
    stop = asyncio.Event()
    seen: list[int] = []

    def ready(service: DhtService) -> None:
        seen.append(service.port)
        stop.set()

    async with asyncio.timeout(10):
        await run_standalone(0, [], tmp_path, CFG, on_ready=ready, host="127.0.0.120", stop=stop)
    assert seen and seen[0] > 0 and (tmp_path / STATE_FILE).exists()


def test_bootstrap_from_env() -> None:
    """P2PSHARE_BOOTSTRAP is parsed as comma-separated HOST:PORT; unset means None."""
    assert bootstrap_from_env({}) is None
    assert bootstrap_from_env({"P2PSHARE_BOOTSTRAP": "127.0.0.1:6881, [::1]:7000,"}) == [
        ("127.0.0.1", 6881),
        ("::1", 7000),
    ]
    with pytest.raises(UsageError):
        bootstrap_from_env({"P2PSHARE_BOOTSTRAP": "nope"})


async def test_ipv6_loopback_nodes_use_compact_ipv6() -> None:
    """Nodes bound to ::1 exchange nodes6/18-byte peers (BEP 32) and find an announced peer."""
    try:
        boot = await DhtService.start(host="::1", bootstrap=[], state_dir=None, config=CFG)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    others = [
        await DhtService.start(host="::1", bootstrap=[boot.address], state_dir=None, config=CFG)
        for _ in range(3)
    ]
    services = [boot, *others]
    try:
        assert all(await asyncio.gather(*(s.wait_ready(5) for s in services)))
        info_hash = InfoHash(os.urandom(20))
        assert await others[0].announce(info_hash, 6200, timeout=10) > 0
        assert PeerAddress("::1", 6200) in await others[2].find_peers(info_hash, timeout=10)
    finally:
        await asyncio.gather(*(s.close() for s in services))
