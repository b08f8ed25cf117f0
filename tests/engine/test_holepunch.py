"""BEP 55 in the engine on in-memory links: a relayed rendezvous, every error, the budgets, connect."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from p2pshare.config import Config
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire import messages as wm
from p2pshare.core.wire.extension import ExtensionHandshake
from p2pshare.core.wire.holepunch import (
    HolepunchError,
    HolepunchMessage,
    HolepunchType,
    decode_holepunch,
    encode_holepunch,
)
from p2pshare.engine import events as ev
from p2pshare.errors import Violation
from tests.engine.memory_swarm import (
    MemoryHost,
    RawPeer,
    Swarm,
    dial,
    make_payload,
    memory_swarm,
    of,
    quick_config,
    until,
)

HP = 7  #: the id our scripted peers ask for ut_holepunch
RENDEZVOUS, CONNECT, ERROR = HolepunchType.RENDEZVOUS, HolepunchType.CONNECT, HolepunchType.ERROR


def _config(**transport: object) -> Config:
    cfg = quick_config()
    return replace(cfg, transport=replace(cfg.transport, **transport))


async def _raw(
    swarm: Swarm, host: MemoryHost, info: object, source: str, *, holepunch: bool = True
) -> RawPeer:
    """A scripted peer at ``source``:6881 connected to ``host``, its BEP 10 handshake sent."""
    raw = await dial(swarm, host, info, source, extensions=True)  # type: ignore[arg-type]
    await until(lambda: bool(raw.wire), "the torrent's handshake")
    m = {"ut_holepunch": HP} if holepunch else {}
    raw.send(ExtensionHandshake(m=m, p=6881, yourip=bytes(int(x) for x in host.address[0].split("."))))
    await until(lambda: raw.conn.peer_extensions is not None, "the torrent's extension handshake")
    return raw


def _hp(raw: RawPeer, msg: HolepunchMessage) -> None:
    ext = raw.conn.peer_ext_id("ut_holepunch")
    assert ext is not None, "the torrent did not offer ut_holepunch"
    raw.send(wm.Extended(ext, encode_holepunch(msg)))


def _got(raw: RawPeer) -> list[HolepunchMessage]:
    return [decode_holepunch(e.payload) for e in raw.of(wm.Extended) if e.ext_id == HP]


async def test_two_peers_that_cannot_dial_each_other_meet_through_a_relay(tmp_path: Path) -> None:
    """A's direct dial to T fails; A asks the relay both are connected to, and both dial uTP at once."""
    info, _ = make_payload(200_000, 32768)
    async with memory_swarm(tmp_path) as swarm:
        relay, relay_host = await swarm.add("127.0.30.1", info, config=_config())  # no seed: none finish
        target, t_host = await swarm.add("127.0.30.3", info, config=_config())
        a, a_host = await swarm.add("127.0.30.2", info, config=_config())
        target.add_peers([relay_host.address], "test")
        a.add_peers([relay_host.address], "test")
        await until(lambda: len(relay.holepunch.supporting()) == 2, "both at the relay with ut_holepunch")
        real = a_host.connect

        async def firewalled(address: PeerAddress, info_hash: bytes) -> object:
            if address == t_host.address:
                raise ConnectionRefusedError("behind a NAT")
            return await real(address, info_hash)

        a_host.connect = firewalled  # type: ignore[method-assign,assignment]
        a.add_peers([t_host.address], "pex")
        await until(lambda: t_host.address in a.peers or a_host.address in target.peers, "A and T to meet")
        assert relay.holepunch.stats.relayed == 1
        assert a.holepunch.stats.rendezvous_sent == 1
        assert a_host.utp_dials == [t_host.address]
        assert t_host.utp_dials == [a_host.address]


async def test_the_relay_answers_each_error_of_the_bep(tmp_path: Path) -> None:
    """NoSuchPeer, NoSelf, NotConnected and NoSupport each come back for the case the BEP names."""
    info, data = make_payload(100_000, 32768)
    async with memory_swarm(tmp_path) as swarm:
        relay, host = await swarm.add("127.0.31.1", info, data=data, config=_config())
        asker = await _raw(swarm, host, info, "127.0.31.2")
        plain = await _raw(swarm, host, info, "127.0.31.3", holepunch=False)
        await until(lambda: len(relay.peers) == 2 and len(relay.holepunch.supporting()) == 1, "both peers")
        cases = [
            (("127.0.31.9", 0), HolepunchError.NO_SUCH_PEER),
            (("127.0.31.2", 6881), HolepunchError.NO_SUCH_PEER),  # the asker itself
            (("127.0.31.1", host.address[1]), HolepunchError.NO_SELF),
            (("127.0.31.9", 6881), HolepunchError.NOT_CONNECTED),
            (("127.0.31.3", 6881), HolepunchError.NO_SUPPORT),
        ]
        for endpoint, _ in cases:
            _hp(asker, HolepunchMessage(RENDEZVOUS, *endpoint))
        await until(lambda: len(_got(asker)) == len(cases), "five errors")
        assert [(m.msg_type, m.endpoint, m.error) for m in _got(asker)] == [
            (ERROR, endpoint, code) for endpoint, code in cases
        ]
        assert relay.holepunch.stats.relayed == 0
        assert not _got(plain)


async def test_a_relay_keeps_to_its_per_peer_budget(tmp_path: Path) -> None:
    """With two relays a minute per peer, the third rendezvous is dropped and the target hears twice."""
    info, data = make_payload(100_000, 32768)
    async with memory_swarm(tmp_path) as swarm:
        relay, host = await swarm.add(
            "127.0.32.1", info, data=data, config=_config(relay_per_peer_per_minute=2)
        )
        asker = await _raw(swarm, host, info, "127.0.32.2")
        target = await _raw(swarm, host, info, "127.0.32.3")
        await until(lambda: len(relay.holepunch.supporting()) == 2, "both peers")
        for _ in range(3):
            _hp(asker, HolepunchMessage(RENDEZVOUS, "127.0.32.3", 6881))
        await until(lambda: relay.holepunch.stats.rate_limited == 1, "the third to be refused")
        await until(lambda: len(_got(target)) == 2, "two connects at the target")
        assert _got(target) == [HolepunchMessage(CONNECT, "127.0.32.2", 6881)] * 2
        assert _got(asker) == [HolepunchMessage(CONNECT, "127.0.32.3", 6881)] * 2
        assert relay.holepunch.stats.relayed == 2


async def test_messages_from_a_peer_without_the_extension_are_ignored(tmp_path: Path) -> None:
    """A peer that did not announce ut_holepunch gets no answer to a rendezvous, and stays connected."""
    info, data = make_payload(100_000, 32768)
    async with memory_swarm(tmp_path) as swarm:
        relay, host = await swarm.add("127.0.33.1", info, data=data, config=_config())
        plain = await _raw(swarm, host, info, "127.0.33.2", holepunch=False)
        await until(lambda: len(relay.peers) == 1, "the peer")
        _hp(plain, HolepunchMessage(RENDEZVOUS, "127.0.33.9", 6881))
        await until(lambda: relay.holepunch.stats.ignored == 1, "the message to be ignored")
        assert not plain.of(wm.Extended) or all(e.ext_id != HP for e in plain.of(wm.Extended))
        assert len(relay.peers) == 1


async def test_a_malformed_holepunch_message_drops_the_peer(tmp_path: Path) -> None:
    """A truncated ut_holepunch message is a protocol violation of kind MALFORMED."""
    info, data = make_payload(100_000, 32768)
    async with memory_swarm(tmp_path) as swarm:
        relay, host = await swarm.add("127.0.34.1", info, data=data, config=_config())
        raw = await _raw(swarm, host, info, "127.0.34.2")
        await until(lambda: len(relay.holepunch.supporting()) == 1, "the peer")
        ext = raw.conn.peer_ext_id("ut_holepunch")
        assert ext is not None
        raw.send(wm.Extended(ext, b"\x00\x00\x7f\x00"))
        await until(lambda: not relay.peers, "the peer to be dropped")
        dropped = of(swarm.events["127.0.34.1"], ev.PeerDisconnected)
        assert dropped and dropped[0].kind is Violation.MALFORMED


async def test_the_initiator_moves_to_the_next_relay_and_stops_on_no_support(tmp_path: Path) -> None:
    """NotConnected from the first relay sends the rendezvous to the second; NoSupport ends the attempt."""
    info, _ = make_payload(100_000, 32768)
    async with memory_swarm(tmp_path) as swarm:
        a, host = await swarm.add("127.0.35.1", info, config=_config())
        r1 = await _raw(swarm, host, info, "127.0.35.2")
        r2 = await _raw(swarm, host, info, "127.0.35.3")
        await until(lambda: len(a.holepunch.supporting()) == 2, "two relays")
        target = ("127.0.35.9", 6881)
        assert a.holepunch.want(target, 0.0)
        await until(lambda: len(_got(r1)) + len(_got(r2)) == 1, "a rendezvous")
        first, second = (r1, r2) if _got(r1) else (r2, r1)
        assert _got(first) == [HolepunchMessage(RENDEZVOUS, *target)]
        _hp(first, HolepunchMessage(ERROR, *target, HolepunchError.NOT_CONNECTED))
        await until(lambda: len(_got(second)) == 1, "the second relay to be asked")
        _hp(second, HolepunchMessage(ERROR, *target, HolepunchError.NO_SUPPORT))
        await until(lambda: a.holepunch.stats.errors_received[HolepunchError.NO_SUPPORT] == 1, "no support")
        assert not a.holepunch.want(target, 1000.0)  # no relay can help with that target
        _hp(first, HolepunchMessage(ERROR, "127.0.35.8", 1, HolepunchError.NO_SELF))  # never asked
        await until(lambda: a.holepunch.stats.ignored == 1, "the stray error to be ignored")


async def test_connect_dials_utp_at_once_but_not_to_a_connected_peer_or_past_the_budget(
    tmp_path: Path,
) -> None:
    """A connect starts a uTP dial; one for a peer we already have, or past the minute's budget, does not."""
    info, _ = make_payload(100_000, 32768)
    async with memory_swarm(tmp_path) as swarm:
        a, host = await swarm.add("127.0.36.1", info, config=_config(connects_per_minute=2))
        relay = await _raw(swarm, host, info, "127.0.36.2")
        await until(lambda: len(a.holepunch.supporting()) == 1, "the relay")
        _hp(relay, HolepunchMessage(CONNECT, "127.0.36.2", 6881))  # the relay itself: connected
        for port in (7001, 7002, 7003):
            _hp(relay, HolepunchMessage(CONNECT, "127.0.36.5", port))
        await until(lambda: a.holepunch.stats.connects_received == 4, "four connects")
        await until(lambda: len(host.utp_dials) == 2, "two dials")
        assert host.utp_dials == [PeerAddress("127.0.36.5", 7001), PeerAddress("127.0.36.5", 7002)]
        assert a.holepunch.stats.rate_limited == 1
        assert a.holepunch.stats.ignored == 1


async def test_a_tcp_only_torrent_offers_no_holepunch(tmp_path: Path) -> None:
    """With --transport tcp the extension handshake does not list ut_holepunch."""
    info, data = make_payload(100_000, 32768)
    async with memory_swarm(tmp_path) as swarm:
        relay, host = await swarm.add("127.0.37.1", info, data=data, config=_config(mode="tcp"))
        raw = await _raw(swarm, host, info, "127.0.37.2")
        await until(lambda: len(relay.peers) == 1 and raw.conn.peer_extensions is not None, "handshakes")
        assert raw.conn.peer_ext_id("ut_holepunch") is None
        assert raw.conn.peer_ext_id("ut_metadata") is not None


async def test_a_pex_peer_flagged_unreachable_is_asked_of_the_peer_that_told_us(tmp_path: Path) -> None:
    """The PEX hook: the uTP flag reaches the host, and the teller is asked for a rendezvous at once."""
    info, _ = make_payload(100_000, 32768)
    async with memory_swarm(tmp_path) as swarm:
        a, host = await swarm.add("127.0.38.1", info, config=_config())
        other = await _raw(swarm, host, info, "127.0.38.2")
        teller = await _raw(swarm, host, info, "127.0.38.3")
        await until(lambda: len(a.holepunch.supporting()) == 2, "two relays")
        target = PeerAddress("127.0.38.9", 6881)
        a.note_pex_peer(target, PeerAddress("127.0.38.3", 6881), utp=True, reachable=False)
        await until(lambda: bool(_got(teller)), "the rendezvous")
        assert _got(teller) == [HolepunchMessage(RENDEZVOUS, *target)]
        assert not _got(other)
        assert host.utp_hints == [target]
