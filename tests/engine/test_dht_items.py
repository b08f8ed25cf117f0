"""BEP 44 items through DhtService: real nodes on loopback UDP (127.0.0.x), key files, reflection."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from p2pshare.config import DhtConfig
from p2pshare.core.dht import krpc
from p2pshare.core.dht.items import immutable_target, mutable_target, public_key_of
from p2pshare.engine.dht_node import DhtService
from p2pshare.errors import LocalProtocolError, UsageError
from p2pshare.io.dht_keys import (
    generate_private_key,
    load_or_create_private_key,
    load_private_key,
    public_key_hex,
    save_private_key,
)
from tests.engine.test_dht_service import swarm

CFG = DhtConfig(bootstrap=())

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def twenty() -> AsyncIterator[list[DhtService]]:
    services = await swarm(20, first=120)
    try:
        assert all(await asyncio.gather(*(s.wait_ready(10) for s in services)))
        yield services
    finally:
        await asyncio.gather(*(s.close() for s in services))


async def test_immutable_item_round_trip(twenty: list[DhtService]) -> None:
    """A value put by one loopback node is got, identical, by another through its SHA-1 target."""
    value = {b"files": [b"a.txt", b"b.txt"], b"n": 2}
    result = await twenty[3].put_immutable(value, timeout=10)
    assert result.target == immutable_target(b"d5:filesl5:a.txt5:b.txte1:ni2ee") and result.stored >= 4
    item = await twenty[15].get_item(result.target, timeout=10)
    assert item is not None and item.decoded() == value and not item.mutable


async def test_mutable_versions_and_salt(twenty: list[DhtService]) -> None:
    """Mutable puts of seq 1 then 2 under a salt are read back as seq 2 via (public key, salt)."""
    key = generate_private_key()
    first = await twenty[2].put_mutable(key, {b"ih": b"1" * 20}, 1, b"photos", timeout=10)
    assert first.stored >= 4 and first.seen is None
    second = await twenty[5].put_mutable(key, {b"ih": b"2" * 20}, 2, b"photos", cas=1, timeout=10)
    assert second.stored >= 4 and second.seen is not None and second.seen.seq == 1
    item = await twenty[17].get_item((public_key_of(key), b"photos"), timeout=10)
    assert item is not None and item.seq == 2 and item.decoded() == {b"ih": b"2" * 20}
    assert item.target == mutable_target(public_key_of(key), b"photos") == second.target


async def test_missing_item_is_none_within_the_bound(twenty: list[DhtService]) -> None:
    """A get for a target nobody stored returns None, well within its timeout."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await twenty[8].get_item(os.urandom(20), timeout=8) is None
    assert loop.time() - t0 < 8.5


async def test_bad_requests_are_the_callers_error(twenty: list[DhtService]) -> None:
    """A target that is not 20 bytes, a value over 1000 bytes or a negative seq raise at once."""
    with pytest.raises(ValueError):
        await twenty[0].get_item(b"short")
    with pytest.raises(LocalProtocolError):
        await twenty[0].put_immutable(b"x" * 1000)
    with pytest.raises(LocalProtocolError):
        await twenty[0].put_mutable(generate_private_key(), b"x", -1)
    assert twenty[0].status()["lookups"] == 0


async def test_reflection_flood_gets_bounded_small_answers() -> None:
    """3,000 malformed queries from one address get no more replies than the rate limit, never more bytes."""
    svc = await DhtService.start(host="127.0.0.150", bootstrap=[], state_dir=None, config=CFG)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.151", 0))
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    nid = b"\x42" * 20
    floods = [
        b"d1:t2:aa1:y1:qe",  # the 18-byte kind of issue 12: not a query at all
        krpc.encode_query(b"aa", b"find_node", {b"id": nid, b"target": b"abc"}),  # a 203 each
    ]
    try:
        for data in floods:
            got = sent = 0
            out_bytes = 0
            t0 = loop.time()
            for _ in range(3000):
                sock.sendto(data, svc.address)
                sent += len(data)
                if _ % 100 == 0:
                    await asyncio.sleep(0)  # let the service read
            deadline = loop.time() + 1.0
            while loop.time() < deadline:
                try:
                    reply = sock.recv(2048)
                except BlockingIOError:
                    await asyncio.sleep(0.02)
                    continue
                got += 1
                out_bytes += len(reply)
            elapsed = loop.time() - t0
            budget = CFG.incoming_burst + CFG.incoming_rate_per_source * elapsed
            assert got <= budget and out_bytes <= sent, (data, got, budget, out_bytes)
            if data.startswith(b"d1:t"):
                assert got == 0
        assert svc.status()["dropped_rate_limited"] > 0
    finally:
        sock.close()
        await svc.close()


def test_key_file_round_trip(tmp_path: Path) -> None:
    """A saved key loads back unchanged, is readable by its owner only, and yields its public key."""
    key = generate_private_key()
    path = tmp_path / "keys" / "share.key"
    save_private_key(path, key)
    assert load_private_key(path) == key and len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_hex(key) == public_key_of(key).hex() and len(public_key_hex(key)) == 64


def test_load_or_create_reuses_the_stored_key(tmp_path: Path) -> None:
    """The first call creates a key file; later calls return the same key."""
    path = tmp_path / "publish.key"
    first = load_or_create_private_key(path)
    assert path.exists() and load_or_create_private_key(path) == first


def test_raw_32_byte_key_file_is_accepted(tmp_path: Path) -> None:
    """A key file holding the 32 raw bytes (no hex) is read as well."""
    path = tmp_path / "raw.key"
    path.write_bytes(bytes(range(32)))
    assert load_private_key(path) == bytes(range(32))


@pytest.mark.parametrize("content", [b"", b"zz" * 32, b"ab" * 31, b"x" * 5000])
def test_bad_key_file_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    """A file that is not a key, or a missing one, gives a UsageError that names the file."""
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=r"bad\.key"):
        load_private_key(path)
    with pytest.raises(UsageError, match=r"missing\.key"):
        load_private_key(tmp_path / "missing.key")
