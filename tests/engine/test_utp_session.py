"""uTP in the session: downloads over uTP, the tcp/utp/both policy and its fallback, one UDP port."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.engine import events as ev
from p2pshare.engine.create import CreatedTorrent, create_torrent
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.transports import Transport
from p2pshare.io.utp_socket import UtpLink, UtpSocket
from p2pshare.io.utp_udp import SharedTransport
from tests.engine.conftest import MakeSession, MakeShare, assert_same_files, seed, wait_complete, wait_until


def _params(share: CreatedTorrent, out: Path) -> TorrentParams:
    return TorrentParams(share.info.info_hash, info=share.info, download_dir=out)


def _config(mode: str, **transport: object) -> Config:
    return replace(DEFAULT_CONFIG, transport=replace(DEFAULT_CONFIG.transport, mode=mode, **transport))


async def test_utp_only_sessions_download_over_utp(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """Two sessions with --transport utp complete a download, and the link between them is a uTP link."""
    share = make_share({"a.bin": 3 * 1024 * 1024 + 77}, piece_length=65536)
    seeder_s = await sessions("127.0.2.1", _config("utp"))
    await seed(seeder_s, share)
    leech_s = await sessions("127.0.2.2", _config("utp"))
    leech = await leech_s.add_torrent(_params(share, tmp_path))
    assert seeder_s.port and seeder_s.port == seeder_s.utp.port
    leech.add_peers([("127.0.2.1", seeder_s.port)], "test")
    await wait_until(lambda: bool(leech.peers), 10, "a connection")
    assert all(isinstance(p.link, UtpLink) for p in leech.peers.values())
    await wait_complete(leech, 30)
    assert_same_files(share, tmp_path)
    assert leech_s.transports.stats.dials == {"tcp": 0, "utp": 1}
    assert seeder_s.utp.incoming.accepted == 1


async def test_both_falls_back_to_tcp_when_the_peer_has_no_utp(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """A leecher that dials uTP first reaches a TCP-only seeder by falling back to TCP."""
    share = make_share({"b.bin": 512 * 1024}, piece_length=32768)
    seeder_s = await sessions("127.0.2.3", _config("tcp"))
    await seed(seeder_s, share)
    cfg = _config("both", prefer_utp=True)
    cfg = replace(cfg, swarm=replace(cfg.swarm, connect_timeout=1.0))
    leech_s = await sessions("127.0.2.4", cfg)
    leech = await leech_s.add_torrent(_params(share, tmp_path))
    leech.add_peers([("127.0.2.3", seeder_s.port)], "test")
    await wait_complete(leech, 30)
    assert leech_s.transports.stats.fallbacks == 1
    assert leech_s.transports.order(("127.0.2.3", seeder_s.port)) == [Transport.TCP, Transport.UTP]
    assert seeder_s.utp.socket is None


async def test_an_incoming_utp_peer_is_dialled_over_utp_first(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """Once a host reached us over uTP, our dials to it try uTP first; others still start with TCP."""
    share = make_share({"c.bin": 256 * 1024}, piece_length=32768)
    seeder_s = await sessions("127.0.2.5", _config("both"))
    await seed(seeder_s, share)
    leech_s = await sessions("127.0.2.6", _config("utp"))
    leech = await leech_s.add_torrent(_params(share, tmp_path))
    leech.add_peers([("127.0.2.5", seeder_s.port)], "test")
    await wait_complete(leech, 30)
    policy = seeder_s.transports
    assert policy.order(("127.0.2.6", 4000)) == [Transport.UTP, Transport.TCP]
    assert policy.order(("127.0.2.7", 4000)) == [Transport.TCP, Transport.UTP]


async def test_a_tcp_session_opens_no_udp_and_dials_only_tcp(sessions: MakeSession) -> None:
    """With --transport tcp there is no uTP socket, and a uTP dial is refused at once."""
    s = await sessions("127.0.2.8", _config("tcp"))
    assert s.utp.socket is None
    assert s.transports.order(("127.0.0.9", 1)) == [Transport.TCP]
    try:
        await s.connect_utp(("127.0.0.9", 1))  # type: ignore[arg-type]
    except ConnectionError as exc:
        assert "not enabled" in str(exc)
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("a uTP dial without uTP must fail")


async def test_the_dht_rides_on_the_utp_socket(sessions: MakeSession) -> None:
    """The DHT node uses the session's uTP socket (one UDP port) and still answers another node."""
    a = await sessions("127.0.2.9")
    dht_a = await a.start_dht(bootstrap=[])
    assert dht_a.port == a.utp.port == a.port
    assert isinstance(dht_a.endpoint._transport, SharedTransport)
    b = await sessions("127.0.2.10")
    dht_b = await b.start_dht(bootstrap=[("127.0.2.9", dht_a.port)])
    assert await dht_b.wait_ready(10)


async def test_a_stranger_sending_no_handshake_over_utp_is_cut_off(sessions: MakeSession) -> None:
    """An incoming uTP link that sends something other than a BitTorrent handshake is aborted."""
    s = await sessions("127.0.2.11", _config("utp"))
    sock = await UtpSocket.open("127.0.2.12", 0)
    try:
        link = await sock.connect(("127.0.2.11", s.port), timeout=5)
        closed: list[Exception | None] = []
        link.set_handlers(lambda data: None, closed.append)
        link.write(b"GET / HTTP/1.1\r\n\r\n")
        await wait_until(lambda: bool(closed), 10, "the link to be cut")
        assert s.utp.incoming.pending == 0
        assert s.utp.incoming.accepted == 0
    finally:
        sock.close()


async def test_tcp_link_kind_is_kept_for_tcp_dials(
    make_share: MakeShare, sessions: MakeSession, tmp_path: Path
) -> None:
    """With both transports and no hint, the first dial is TCP (MSE may wrap it), not uTP."""
    share = make_share({"d.bin": 128 * 1024}, piece_length=32768)
    seeder_s = await sessions("127.0.2.13")
    await seed(seeder_s, share)
    leech_s = await sessions("127.0.2.14")
    leech = await leech_s.add_torrent(_params(share, tmp_path))
    kinds: list[type] = []
    real_attach = leech.attach

    def attach(link: object, **kw: object) -> None:
        kinds.append(type(link))
        real_attach(link, **kw)  # type: ignore[arg-type]

    leech.attach = attach  # type: ignore[method-assign]
    leech.add_peers([("127.0.2.13", seeder_s.port)], "test")
    await wait_complete(leech, 30)
    assert len(kinds) == 1 and not issubclass(kinds[0], UtpLink)
    assert leech_s.transports.stats.dials == {"tcp": 1, "utp": 0}


async def test_a_refused_peer_is_reached_by_hole_punching_over_utp(
    sessions: MakeSession, tmp_path: Path
) -> None:
    """A cannot dial T; the relay both know introduces them and one uTP link joins them on both sides."""
    src = tmp_path / "hp.bin"
    src.write_bytes(bytes(range(256)) * 4096)
    info = create_torrent(src).info
    relay = await sessions("127.0.2.21")
    target = await sessions("127.0.2.22")
    asker = await sessions("127.0.2.23")
    seen: list[ev.EngineEvent] = []

    def params(name: str) -> TorrentParams:
        return TorrentParams(info.info_hash, info=info, download_dir=tmp_path / name)

    r = await relay.add_torrent(params("r"))
    t = await target.add_torrent(params("t"))
    a = await asker.add_torrent(params("a"), on_event=seen.append)
    t_addr = ("127.0.2.22", target.port)
    real = asker.connect

    async def nat(address: object, info_hash: bytes) -> object:
        if tuple(address) == t_addr:  # type: ignore[arg-type]
            raise ConnectionRefusedError("behind a NAT")
        return await real(address, info_hash)  # type: ignore[arg-type]

    asker.connect = nat  # type: ignore[method-assign,assignment]
    t.add_peers([("127.0.2.21", relay.port)], "test")
    a.add_peers([("127.0.2.21", relay.port)], "test")
    await wait_until(lambda: len(r.holepunch.supporting()) == 2, 10, "both at the relay")
    a.add_peers([t_addr], "test")
    await wait_until(
        lambda: any(p.address[0] == "127.0.2.22" and p.handshake_done for p in a.peers.values()),
        10,
        "A and T to meet",
    )
    await wait_until(
        lambda: any(p.address[0] == "127.0.2.23" and p.handshake_done for p in t.peers.values()),
        10,
        "T to see A",
    )
    a_side = [p for p in a.peers.values() if p.address[0] == "127.0.2.22"]
    t_side = [p for p in t.peers.values() if p.address[0] == "127.0.2.23"]
    assert len(a_side) == len(t_side) == 1
    assert isinstance(a_side[0].link, UtpLink) and isinstance(t_side[0].link, UtpLink)
    assert a_side[0].outgoing != t_side[0].outgoing  # the same connection, seen from each end
    assert r.holepunch.stats.relayed == 1
