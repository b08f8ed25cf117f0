"""The reachability room: port mapping and LSD wired into a session, with fake router and LAN."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.core.lsd import PeerFound
from p2pshare.engine import runner
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.reach_events import ReachabilityNote
from p2pshare.engine.reachability import (
    Reachability,
    describe_portmap_event,
    start_reachability,
    usable_external,
)
from p2pshare.engine.session import Session
from p2pshare.errors import NoPeersError, UsageError
from p2pshare.io.portmap_events import (
    ExternalAddressFound,
    MethodUnavailable,
    PortMapEvent,
    PortMapFailed,
    PortMapped,
    PortMapStatus,
    PortUnmapped,
)
from tests.engine.memory_swarm import make_payload

EXTERNAL = "11.11.0.1"


class FakeMapper:
    """Records what the room asks; ``script`` is replayed as events when started."""

    instances: ClassVar[list[FakeMapper]] = []

    def __init__(
        self, config: Any, natpmp: Any, *, tcp_port: int, udp_port: int | None, on_event: Any
    ) -> None:
        self.tcp_port, self.udp_port, self.on_event = tcp_port, udp_port, on_event
        self.script: list[PortMapEvent] = list(SCRIPT)
        self.mappings: list[PortMapped] = []
        self.external: str | None = None
        self.closed = False
        self.close_delay = CLOSE_DELAY[0]
        FakeMapper.instances.append(self)

    async def start(self) -> None:
        for event in self.script:
            if isinstance(event, PortMapped):
                self.mappings.append(event)
            if isinstance(event, ExternalAddressFound):
                self.external = event.address
            self.on_event(event)

    async def wait_settled(self, timeout: float) -> PortMapStatus:
        return self.status()

    def status(self) -> PortMapStatus:
        return PortMapStatus(
            gateway="192.168.1.1",
            local_ip="192.168.1.10",
            methods=(("natpmp", "mapped" if self.mappings else "unavailable"), ("upnp", "unavailable")),
            active_method="natpmp/pcp" if self.mappings else None,
            external_address=self.external,
            external_source="natpmp/pcp" if self.external else None,
            mappings=tuple(self.mappings),
            errors=(),
            closed=self.closed,
        )

    async def close(self) -> None:
        await asyncio.sleep(self.close_delay)
        self.closed = True


class FakeLsd:
    instances: ClassVar[list[FakeLsd]] = []

    def __init__(self, config: Any, *, listen_port: int, on_peer: Callable[[PeerFound], None]) -> None:
        self.listen_port, self.on_peer = listen_port, on_peer
        self.torrents: list[bytes] = []
        self.closed = False
        FakeLsd.instances.append(self)

    async def start(self) -> None:
        return None

    def add_torrent(self, info_hash: bytes) -> None:
        self.torrents.append(info_hash)

    def remove_torrent(self, info_hash: bytes) -> None:
        self.torrents.remove(info_hash)

    def stats(self) -> dict[str, Any]:
        return {"announces_sent": len(self.torrents), "heard": 0}

    async def close(self) -> None:
        self.closed = True


SCRIPT: list[PortMapEvent] = []
CLOSE_DELAY = [0.0]


@pytest.fixture(autouse=True)
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeMapper.instances.clear()
    FakeLsd.instances.clear()
    SCRIPT[:] = [
        ExternalAddressFound("natpmp/pcp", EXTERNAL),
        PortMapped("natpmp/pcp", "tcp", 0, 50000, 7200),
        PortMapped("natpmp/pcp", "udp", 0, 50001, 7200),
    ]
    CLOSE_DELAY[0] = 0.0
    monkeypatch.setattr("p2pshare.engine.reachability.PortMapper", FakeMapper)
    monkeypatch.setattr("p2pshare.engine.reachability.LsdService", FakeLsd)


def test_each_portmap_event_becomes_one_line_saying_whether_it_went_well() -> None:
    """Mapped/unmapped/external notes are ok; failed/unavailable notes are not, and say why."""
    notes = [
        describe_portmap_event(PortMapped("upnp/WANIPConnection:1", "tcp", 6881, 6881, 3600)),
        describe_portmap_event(PortUnmapped("upnp/WANIPConnection:1", "udp", 6881)),
        describe_portmap_event(ExternalAddressFound("natpmp/pcp", EXTERNAL)),
        describe_portmap_event(PortMapFailed("upnp", "ConflictInMappingEntry", "tcp", 6881)),
        describe_portmap_event(MethodUnavailable("natpmp", "no answer from 192.168.1.1")),
    ]
    assert [(n.kind, n.ok) for n in notes] == [
        ("mapped", True),
        ("unmapped", True),
        ("external", True),
        ("failed", False),
        ("unavailable", False),
    ]
    assert "6881 mapped to 6881" in notes[0].message
    assert "ConflictInMappingEntry" in notes[3].message and "TCP 6881" in notes[3].message
    assert "192.168.1.1" in notes[4].message


@pytest.mark.parametrize(
    ("address", "usable"),
    [
        (EXTERNAL, EXTERNAL),
        ("192.168.1.1", None),
        ("100.64.0.7", None),
        ("127.0.0.1", None),
        ("nonsense", None),
    ],
)
def test_only_a_global_external_address_is_offered_to_others(address: str, usable: str | None) -> None:
    """A private or carrier-grade NAT address is never put in x.pe or voted to the DHT."""
    assert usable_external(address) == usable


async def test_a_session_maps_its_tcp_and_dht_ports_and_announces_its_torrents_on_lsd(tmp_path: Path) -> None:
    """start_reachability maps the listen port and the DHT's UDP port, and LSD gets every torrent."""
    info, _ = make_payload(64 * 1024, 16 * 1024)
    session = Session(listen_host="127.0.0.1")
    await session.start()
    try:
        await session.start_dht(bootstrap=[], host="127.0.0.1")
        torrent = await session.add_torrent(TorrentParams(info.info_hash, info=info, download_dir=tmp_path))
        reach = await session.start_reachability(port_mapping=True, lsd=True)
        mapper, lsd = FakeMapper.instances[0], FakeLsd.instances[0]
        assert (mapper.tcp_port, mapper.udp_port) == (session.port, session.dht_port())
        assert lsd.listen_port == session.port
        assert lsd.torrents == [torrent.info_hash.value]
        assert reach.public_endpoint() == (EXTERNAL, 50000)
        assert "mapped 11.11.0.1:50000" in reach.summary()
    finally:
        await session.close()
    assert mapper.closed and lsd.closed


async def test_a_peer_heard_by_lsd_is_added_to_the_torrent_it_announced_and_others_are_ignored(
    tmp_path: Path,
) -> None:
    """LSD's peer goes to the matching torrent as an "lsd" address; an unknown hash changes nothing."""
    info, _ = make_payload(64 * 1024, 16 * 1024)
    session = Session(listen_host="127.0.0.1")
    await session.start()
    try:
        torrent = await session.add_torrent(TorrentParams(info.info_hash, info=info, download_dir=tmp_path))
        await session.start_reachability(port_mapping=False, lsd=True)
        lsd = FakeLsd.instances[0]
        lsd.on_peer(PeerFound(b"\x01" * 20, "127.0.0.9", 7000))
        assert torrent.status().known_peers == 0
        lsd.on_peer(PeerFound(torrent.info_hash.value, "127.0.0.9", 7000))
        assert torrent.status().known_peers == 1
        assert FakeMapper.instances == []
    finally:
        await session.close()


async def test_the_routers_external_address_is_a_bep42_vote_that_one_dht_node_can_confirm() -> None:
    """The gateway's address alone is not adopted, but with one DHT node agreeing the node id follows it."""
    session = Session(listen_host="127.0.0.1")
    await session.start()
    try:
        dht = await session.start_dht(bootstrap=[], host="127.0.0.1")
        await session.start_reachability(port_mapping=True, lsd=False)
        node = dht.endpoint.node
        assert node.external_ip is None  # two votes of the three needed
        node._vote(EXTERNAL, "11.11.0.200", dht.endpoint.now())
        assert node.external_ip == EXTERNAL
        from p2pshare.core.dht.ids import is_secure_id

        assert is_secure_id(node.node_id, EXTERNAL)
    finally:
        await session.close()


async def test_a_private_router_address_casts_no_dht_vote() -> None:
    """Behind double NAT (the router's own address is private) the DHT hears nothing from the mapper."""
    SCRIPT[0] = ExternalAddressFound("natpmp/pcp", "100.64.3.4")
    session = Session(listen_host="127.0.0.1")
    await session.start()
    try:
        dht = await session.start_dht(bootstrap=[], host="127.0.0.1")
        reach = await session.start_reachability(port_mapping=True, lsd=False)
        assert dht.endpoint.node._votes == {}
        assert reach.external_address == "100.64.3.4" and reach.public_endpoint() is None
    finally:
        await session.close()


async def test_a_router_that_never_answers_the_delete_cannot_hang_exit() -> None:
    """close() gives the mapper config.reach.close_timeout and then goes on."""
    CLOSE_DELAY[0] = 60.0
    config = replace(DEFAULT_CONFIG, reach=replace(DEFAULT_CONFIG.reach, close_timeout=0.2))
    reach = Reachability(config, port_mapping=True, lsd=False)
    await reach.start(tcp_port=6881, udp_port=6881)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await reach.close()
    assert loop.time() - began < 5.0
    assert FakeMapper.instances[0].closed is False


async def test_failures_are_notes_never_exceptions() -> None:
    """A refused mapping reaches on_note as a failed note; the room keeps running, with no public address."""
    SCRIPT[:] = [PortMapFailed("upnp", "ConflictInMappingEntry", "tcp", 6881)]
    notes: list[ReachabilityNote] = []
    reach = Reachability(Config(), port_mapping=True, lsd=True, on_note=notes.append)
    await reach.start(tcp_port=6881, udp_port=None)
    assert [n.kind for n in notes] == ["failed"]
    assert reach.public_endpoint() is None
    assert "LSD 0 sent" in reach.summary()
    await reach.close()


async def test_a_second_method_unavailable_is_quiet_while_another_still_searches() -> None:
    """NAT-PMP missing while UPnP maps is logged, not shown as a failure."""
    SCRIPT[:] = [
        PortMapped("upnp/WANIPConnection:1", "tcp", 6881, 6881, 0),
        MethodUnavailable("natpmp", "no answer"),
    ]
    notes: list[ReachabilityNote] = []
    reach = Reachability(Config(), port_mapping=True, lsd=False, on_note=notes.append)
    await reach.start(tcp_port=6881, udp_port=None)
    assert [n.kind for n in notes] == ["mapped"]
    await reach.close()


async def test_the_runner_waits_for_the_mapping_only_when_asked_and_does_nothing_when_both_are_off() -> None:
    """start_reachability returns the public endpoint for share, and None with mapping and LSD off."""
    session = Session(listen_host="127.0.0.1")
    await session.start()
    try:
        off = runner.SwarmOptions(host="127.0.0.1")
        assert await start_reachability(session, off, lambda _: None) is None
        assert session.reach is None
        on = runner.SwarmOptions(host="127.0.0.1", port_mapping=True, lsd=True, mapping_wait=1.0)
        assert await start_reachability(session, on, lambda _: None) == (EXTERNAL, 50000)
    finally:
        await session.close()


async def test_with_lsd_on_a_get_needs_no_dht_and_no_peer_to_start(tmp_path: Path) -> None:
    """download() with LSD on and nothing else runs (and times out with no peers) instead of a usage error."""
    info, _ = make_payload(64 * 1024, 16 * 1024)
    options = runner.SwarmOptions(host="127.0.0.1", lsd=True)
    with pytest.raises(NoPeersError):
        await runner.download(info.info_hash, options, out_dir=tmp_path, timeout=0.3)
    assert FakeLsd.instances[0].torrents == [info.info_hash.value] and FakeLsd.instances[0].closed
    with pytest.raises(UsageError):
        await runner.download(info.info_hash, runner.SwarmOptions(host="127.0.0.1"), out_dir=tmp_path)
