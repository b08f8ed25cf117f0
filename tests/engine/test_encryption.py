"""MSE/PE in the session: --encryption prefer/require/off, SKEY routing among torrents, remembered peers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from p2pshare.config import DEFAULT_CONFIG, Config, ConnectorConfig, EncryptionPolicy
from p2pshare.core.mse import MseError
from p2pshare.core.types import PeerAddress
from p2pshare.core.wire import PeerConnection
from p2pshare.core.wire.messages import make_peer_id
from p2pshare.engine.connector import Connector, EncryptionFailed, Learned
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.session import Session
from p2pshare.io.link import Link
from p2pshare.io.mse_link import EncryptedLink, mse_initiate
from p2pshare.io.peer_link import open_link
from tests.engine.conftest import MakeSession, MakeShare, assert_same_files, seed, wait_complete, wait_until


def policy(p: EncryptionPolicy) -> Config:
    return replace(DEFAULT_CONFIG, mse=replace(DEFAULT_CONFIG.mse, policy=p))


async def _download(
    make_share: MakeShare,
    sessions: MakeSession,
    tmp_path: Path,
    seeder: EncryptionPolicy,
    leecher: EncryptionPolicy,
    prefix: str,
) -> tuple[Session, Session, bool]:
    """A leecher with ``leecher`` policy dials a seeder with ``seeder``; True when it completed."""
    share = make_share({"payload.bin": 600_000}, piece_length=32768)
    seed_s = await sessions(f"{prefix}.1", policy(seeder))
    await seed(seed_s, share)
    leech_s = await sessions(f"{prefix}.2", policy(leecher))
    t = await leech_s.add_torrent(
        TorrentParams(share.info.info_hash, info=share.info, download_dir=tmp_path / "out")
    )
    t.add_peers([(f"{prefix}.1", seed_s.port)], "test")
    try:
        await wait_complete(t, 8)
    except (AssertionError, TimeoutError):
        return seed_s, leech_s, False
    assert_same_files(share, tmp_path / "out")
    return seed_s, leech_s, True


def _links(session: Session) -> list[Link]:
    return [p.link for t in session.torrents.values() for p in t.peers.values()]


@pytest.mark.parametrize(
    ("seeder", "leecher", "encrypted"),
    [
        (EncryptionPolicy.PREFER, EncryptionPolicy.PREFER, True),
        (EncryptionPolicy.REQUIRE, EncryptionPolicy.PREFER, True),
        (EncryptionPolicy.PREFER, EncryptionPolicy.REQUIRE, True),
        (EncryptionPolicy.REQUIRE, EncryptionPolicy.REQUIRE, True),
        (EncryptionPolicy.OFF, EncryptionPolicy.PREFER, False),
        (EncryptionPolicy.PREFER, EncryptionPolicy.OFF, False),
        (EncryptionPolicy.OFF, EncryptionPolicy.OFF, False),
    ],
)
async def test_policies_that_agree_complete_a_download(
    make_share: MakeShare,
    sessions: MakeSession,
    tmp_path: Path,
    seeder: EncryptionPolicy,
    leecher: EncryptionPolicy,
    encrypted: bool,
) -> None:
    """Every pair of policies with a common method downloads, over RC4 exactly when both allow it."""
    seed_s, leech_s, done = await _download(make_share, sessions, tmp_path, seeder, leecher, "127.0.40")
    assert done
    links = _links(leech_s) + _links(seed_s)
    kinds = {isinstance(link, EncryptedLink) for link in links}
    assert kinds == {encrypted} or not links  # seeds drop each other once complete
    retried = leech_s.connector.retried_plaintext
    assert retried == (1 if (seeder, leecher) == (EncryptionPolicy.OFF, EncryptionPolicy.PREFER) else 0)


@pytest.mark.parametrize(
    ("seeder", "leecher"),
    [(EncryptionPolicy.OFF, EncryptionPolicy.REQUIRE), (EncryptionPolicy.REQUIRE, EncryptionPolicy.OFF)],
)
async def test_require_against_off_never_connects(
    make_share: MakeShare,
    sessions: MakeSession,
    tmp_path: Path,
    seeder: EncryptionPolicy,
    leecher: EncryptionPolicy,
) -> None:
    """require refuses plaintext both ways: against off, no peer connects and nothing downloads."""
    share = make_share({"payload.bin": 100_000}, piece_length=32768)
    seed_s = await sessions("127.0.41.1", policy(seeder))
    await seed(seed_s, share)
    leech_s = await sessions("127.0.41.2", policy(leecher))
    t = await leech_s.add_torrent(
        TorrentParams(share.info.info_hash, info=share.info, download_dir=tmp_path / "out")
    )
    t.add_peers([("127.0.41.1", seed_s.port)], "test")
    await wait_until(lambda: t.book.known[PeerAddress("127.0.41.1", seed_s.port)].attempts >= 1, 5, "a dial")
    await asyncio.sleep(0.5)
    assert t.downloaded == 0
    assert not any(p.handshake_done for p in t.peers.values())


async def test_incoming_mse_is_matched_by_skey_among_torrents(
    make_share: MakeShare, sessions: MakeSession
) -> None:
    """Two torrents on one session: an MSE peer naming the second by SKEY reaches the second."""
    first = make_share({"a.bin": 50_000}, piece_length=16384, name="first")
    second = make_share({"b.bin": 70_000}, piece_length=16384, name="second")
    s = await sessions("127.0.42.1", policy(EncryptionPolicy.REQUIRE))
    await seed(s, first)
    await seed(s, second)
    ih = second.info.info_hash.value
    raw = await open_link("127.0.42.1", s.port, 5, local_host="127.0.42.2")
    conn = PeerConnection(ih, make_peer_id(), initiator=True, num_pieces=second.info.num_pieces)
    link = await mse_initiate(raw, ih, EncryptionPolicy.REQUIRE, initial_payload=conn.handshake_bytes())
    assert isinstance(link, EncryptedLink)
    got = bytearray()
    link.set_handlers(lambda d: got.extend(d), lambda e: None)
    await wait_until(lambda: len(got) >= 68, 5, "the handshake")
    assert bytes(got[28:48]) == ih  # the second torrent answered, in the encrypted stream
    await wait_until(lambda: len(s.torrents[ih].peers) == 1, 5, "the peer")
    assert not s.torrents[first.info.info_hash.value].peers
    link.close()


async def test_mse_for_an_unknown_torrent_is_dropped(make_share: MakeShare, sessions: MakeSession) -> None:
    """An MSE peer whose SKEY names no torrent we serve fails the handshake and gets closed."""
    share = make_share({"a.bin": 20_000}, piece_length=16384)
    s = await sessions("127.0.43.1")
    await seed(s, share)
    raw = await open_link("127.0.43.1", s.port, 5, local_host="127.0.43.2")
    with pytest.raises(MseError):
        await mse_initiate(raw, b"\x07" * 20, EncryptionPolicy.REQUIRE)


async def test_require_listener_closes_a_plain_peer(make_share: MakeShare, sessions: MakeSession) -> None:
    """Under require a plain BitTorrent handshake is closed unanswered."""
    share = make_share({"a.bin": 20_000}, piece_length=16384)
    s = await sessions("127.0.44.1", policy(EncryptionPolicy.REQUIRE))
    await seed(s, share)
    link = await open_link("127.0.44.1", s.port, 5, local_host="127.0.44.2")
    got = bytearray()
    link.set_handlers(lambda d: got.extend(d), lambda e: None)
    conn = PeerConnection(share.info.info_hash.value, make_peer_id(), initiator=True)
    link.write(conn.handshake_bytes())
    await wait_until(lambda: link.closed, 5, "the close")
    assert got == b""


async def _refusing_open() -> Link:
    """A peer that accepts TCP and closes at once (a plain-only client dropping our MSE bytes)."""
    from p2pshare.io.memory_link import memory_link_pair

    mine, theirs = memory_link_pair(PeerAddress("127.0.45.1", 1), PeerAddress("127.0.45.2", 2))
    theirs.set_handlers(lambda d: theirs.close(), lambda e: None)
    return mine


async def test_a_peer_that_spoke_mse_is_never_retried_in_plaintext() -> None:
    """Once remembered as encrypted (by MSE or PEX flag 0x01), a failed MSE dial fails with no plaintext."""
    connector = Connector(DEFAULT_CONFIG.mse, ConnectorConfig(crypto_workers=0))
    addr = PeerAddress("127.0.45.2", 2)
    opened: list[int] = []

    async def opener() -> Link:
        opened.append(1)
        return await _refusing_open()

    connector.pex_flags(addr, 0x01)
    assert connector.learned(addr) is Learned.ENCRYPTED
    with pytest.raises(EncryptionFailed):
        await connector.dial(addr, b"\x01" * 20, opener)
    assert len(opened) == 1


async def test_a_plain_only_peer_is_retried_then_dialed_plain() -> None:
    """Under prefer a peer that drops MSE is redialed in plaintext, and dialed plain from then on."""
    connector = Connector(DEFAULT_CONFIG.mse, ConnectorConfig(crypto_workers=0))
    addr = PeerAddress("127.0.45.2", 2)
    opened: list[int] = []

    async def opener() -> Link:
        opened.append(1)
        return await _refusing_open()

    await connector.dial(addr, b"\x01" * 20, opener)
    assert (len(opened), connector.learned(addr), connector.retried_plaintext) == (2, Learned.PLAINTEXT, 1)
    await connector.dial(addr, b"\x01" * 20, opener)
    assert len(opened) == 3  # straight to plaintext


async def test_require_never_falls_back() -> None:
    """Under require a peer that drops MSE is a failed dial, with no plaintext connection."""
    cfg = replace(DEFAULT_CONFIG.mse, policy=EncryptionPolicy.REQUIRE)
    connector = Connector(cfg, ConnectorConfig(crypto_workers=0))
    opened: list[int] = []

    async def opener() -> Link:
        opened.append(1)
        return await _refusing_open()

    with pytest.raises(EncryptionFailed):
        await connector.dial(PeerAddress("127.0.45.2", 2), b"\x01" * 20, opener)
    assert len(opened) == 1


def test_remembered_peers_are_bounded() -> None:
    """The memory keeps at most max_remembered_peers addresses, forgetting the oldest first."""
    connector = Connector(DEFAULT_CONFIG.mse, ConnectorConfig(max_remembered_peers=3))
    for i in range(5):
        connector.remember(PeerAddress(f"127.0.46.{i}", 1), Learned.PLAINTEXT)
    assert connector.learned(PeerAddress("127.0.46.1", 1)) is None
    assert connector.learned(PeerAddress("127.0.46.4", 1)) is Learned.PLAINTEXT
    connector.pex_flags(PeerAddress("127.0.46.4", 1), 0x01)  # what we saw wins over a PEX flag
    assert connector.learned(PeerAddress("127.0.46.4", 1)) is Learned.PLAINTEXT


def test_pex_flags_reach_the_connector_through_the_session() -> None:
    """The TorrentHost PEX hook: a peer flagged 0x01 is remembered as encrypted, other flags are not."""
    session = Session(DEFAULT_CONFIG)
    session.pex_flags(PeerAddress("127.0.47.1", 6881), 0x01 | 0x02)
    session.pex_flags(PeerAddress("127.0.47.2", 6881), 0x02)
    assert session.connector.learned(PeerAddress("127.0.47.1", 6881)) is Learned.ENCRYPTED
    assert session.connector.learned(PeerAddress("127.0.47.2", 6881)) is None
