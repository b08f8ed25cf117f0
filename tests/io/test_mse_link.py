"""The MSE drivers and the encrypted Link: in memory and over real loopback TCP, with flow control."""

from __future__ import annotations

import asyncio
import hashlib
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.config import EncryptionPolicy, MseConfig
from p2pshare.core.mse import PLAIN_HEADER, FailureReason, skey_lookup
from p2pshare.io.link import Link
from p2pshare.io.mse_link import EncryptedLink, MseError, ReplayLink, mse_accept, mse_initiate
from tests.helpers.memlink import MemLink, mem_pair
from tests.helpers.tcplink import tcp_pair

INFO_HASH = bytes(range(1, 21))
LOOKUP = skey_lookup([bytes(20), INFO_HASH])
CFG = MseConfig(handshake_timeout=5.0)
PLAIN_HANDSHAKE = PLAIN_HEADER + bytes(8) + INFO_HASH + b"-XX0001-" + bytes(12)


class Sink:
    """Collects what a link delivers, and its close."""

    def __init__(self, link: Link) -> None:
        self.data = bytearray()
        self.chunks = 0
        self.closed: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.got_more = asyncio.Event()
        link.set_handlers(self._on_data, self._on_close)

    def _on_data(self, view: memoryview) -> None:
        self.data += view
        self.chunks += 1
        self.got_more.set()

    def _on_close(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)

    async def wait_for(self, n: int, timeout: float = 10.0) -> bytes:
        async with asyncio.timeout(timeout):
            while len(self.data) < n:
                self.got_more.clear()
                await self.got_more.wait()
        return bytes(self.data)


async def handshake(
    a_link: Link, b_link: Link, *, a_cfg: MseConfig = CFG, b_cfg: MseConfig = CFG, ia: bytes = b""
) -> tuple[Link, Link, bytes | None]:
    (a, (b, info_hash)) = await asyncio.gather(
        mse_initiate(a_link, INFO_HASH, None, a_cfg, initial_payload=ia),
        mse_accept(b_link, LOOKUP, None, b_cfg),
    )
    return a, b, info_hash


async def test_memory_pair_encrypts_both_ways() -> None:
    """Over an in-memory pair both ends get an EncryptedLink, the acceptor the info hash and the IA."""
    a_raw, b_raw = mem_pair()
    a, b, info_hash = await handshake(a_raw, b_raw, ia=b"hello")
    assert isinstance(a, EncryptedLink) and isinstance(b, EncryptedLink)
    assert info_hash == INFO_HASH
    sa, sb = Sink(a), Sink(b)
    a.write(b" world")
    b.write(b"pong")
    assert await sb.wait_for(11) == b"hello world"
    assert await sa.wait_for(4) == b"pong"
    assert a.remote_address == ("127.0.0.3", 6881)


async def test_ciphertext_on_the_wire() -> None:
    """What an EncryptedLink writes is not the plaintext, and the other end restores it."""
    a_raw, b_raw = mem_pair()
    a, b, _ = await handshake(a_raw, b_raw)
    seen = bytearray()
    real_writelines = a_raw.writelines

    def spy(parts: object) -> None:
        chunk = b"".join(bytes(p) for p in parts)  # type: ignore[attr-defined]
        seen.extend(chunk)
        real_writelines([chunk])

    a_raw.writelines = spy  # type: ignore[method-assign]
    sb = Sink(b)
    message = b"\x00\x00\x00\x01\x02" * 100
    a.write(message)
    assert await sb.wait_for(len(message)) == message
    assert bytes(seen) != message and len(seen) == len(message)


@pytest.mark.parametrize("offload", [0, 1], ids=["inline", "worker"])
async def test_writelines_is_one_inner_write(offload: int) -> None:
    """A batch of headers and blocks is encrypted into one inner write, not one per part."""
    cfg = MseConfig(offload_min_bytes=offload)
    a_raw, b_raw = mem_pair()
    a, b, _ = await handshake(a_raw, b_raw, a_cfg=cfg, b_cfg=cfg)
    sb = Sink(b)
    parts: list[bytes | memoryview] = []
    for i in range(8):
        parts += [b"\x00\x00\x40\x09\x07" + i.to_bytes(4, "big"), memoryview(bytes([i]) * 16384)]
    before = a_raw.writes
    a.writelines(parts)
    want = b"".join(bytes(p) for p in parts)
    assert await sb.wait_for(len(want)) == want
    assert a_raw.writes == before + 1


async def test_plaintext_payload_when_acceptor_prefers_it() -> None:
    """With prefer_rc4 off, both ends get a ReplayLink and the IA still reaches the acceptor."""
    a_raw, b_raw = mem_pair()
    a, b, info_hash = await handshake(a_raw, b_raw, b_cfg=MseConfig(prefer_rc4=False), ia=b"ia")
    assert isinstance(a, ReplayLink) and isinstance(b, ReplayLink) and info_hash == INFO_HASH
    sb = Sink(b)
    a.write(b"clear")
    assert await sb.wait_for(7) == b"iaclear"


@pytest.mark.parametrize("policy", [EncryptionPolicy.PREFER, EncryptionPolicy.OFF])
async def test_plain_peer_falls_through(policy: EncryptionPolicy) -> None:
    """A plain BitTorrent peer is accepted under prefer and off, and its handshake is replayed whole."""
    a_raw, b_raw = mem_pair()
    a_raw.write(PLAIN_HANDSHAKE[:10])
    accepting = asyncio.ensure_future(mse_accept(b_raw, LOOKUP, policy, CFG))
    await asyncio.sleep(0.01)
    a_raw.write(PLAIN_HANDSHAKE[10:])
    link, info_hash = await accepting
    assert isinstance(link, ReplayLink) and info_hash is None
    sink = Sink(link)
    assert await sink.wait_for(len(PLAIN_HANDSHAKE)) == PLAIN_HANDSHAKE


async def test_require_refuses_a_plain_peer() -> None:
    """Under require the acceptor refuses a plain BitTorrent peer and drops the link."""
    a_raw, b_raw = mem_pair()
    sa = Sink(a_raw)
    a_raw.write(PLAIN_HANDSHAKE)
    with pytest.raises(MseError) as err:
        await mse_accept(b_raw, LOOKUP, EncryptionPolicy.REQUIRE, CFG)
    assert err.value.reason is FailureReason.PLAINTEXT_REFUSED
    assert b_raw.closed
    async with asyncio.timeout(5):
        await sa.closed


async def test_off_refuses_an_mse_peer() -> None:
    """With encryption off the acceptor refuses an MSE initiator, which sees the link drop."""
    a_raw, b_raw = mem_pair()
    results = await asyncio.gather(
        mse_initiate(a_raw, INFO_HASH, EncryptionPolicy.PREFER, CFG),
        mse_accept(b_raw, LOOKUP, EncryptionPolicy.OFF, CFG),
        return_exceptions=True,
    )
    assert [type(r) for r in results] == [MseError, MseError]
    assert isinstance(results[1], MseError) and results[1].reason is FailureReason.ENCRYPTION_REFUSED


async def test_initiate_under_off_returns_the_link() -> None:
    """Under off the initiator makes no handshake and returns the link unchanged."""
    a_raw, _ = mem_pair()
    assert await mse_initiate(a_raw, INFO_HASH, EncryptionPolicy.OFF, CFG) is a_raw


async def test_unknown_torrent_fails_both_sides() -> None:
    """An initiator naming a torrent the acceptor does not serve fails on both sides."""
    a_raw, b_raw = mem_pair()
    results = await asyncio.gather(
        mse_initiate(a_raw, bytes(range(50, 70)), None, CFG),
        mse_accept(b_raw, LOOKUP, None, CFG),
        return_exceptions=True,
    )
    assert isinstance(results[0], MseError) and results[0].reason is FailureReason.CLOSED
    assert isinstance(results[1], MseError) and results[1].reason is FailureReason.UNKNOWN_SKEY


async def test_silent_peer_times_out() -> None:
    """A peer that never answers fails the handshake at the deadline and the link is dropped."""
    a_raw, b_raw = mem_pair()
    Sink(b_raw)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(MseError) as err:
        await mse_initiate(a_raw, INFO_HASH, None, MseConfig(handshake_timeout=0.2))
    assert err.value.reason is FailureReason.TIMEOUT
    assert 0.15 <= loop.time() - start < 3.0
    assert a_raw.closed


async def test_bytes_before_set_handlers_wait_in_order() -> None:
    """Payload that arrives before the consumer attaches is held (reading paused) and delivered in order."""
    a_raw, b_raw = mem_pair()
    a, b, _ = await handshake(a_raw, b_raw, ia=b"0")
    for i in range(1, 6):
        a.write(str(i).encode())
        await asyncio.sleep(0.005)
    assert b_raw._paused  # the wrapper holds the inner link until it has a consumer
    sb = Sink(b)
    assert await sb.wait_for(6) == b"012345"


async def test_close_reaches_the_other_end_after_the_data() -> None:
    """Closing an EncryptedLink delivers everything written, then an orderly close."""
    a_raw, b_raw = mem_pair()
    a, b, _ = await handshake(a_raw, b_raw)
    sb = Sink(b)
    sa = Sink(a)
    a.write(b"last words")
    a.close()
    async with asyncio.timeout(5):
        assert await sb.closed is None
        await sa.closed
    assert bytes(sb.data) == b"last words"


async def _stream(src: Link, dst: Link, total: int, seed: int) -> tuple[bytes, bytes]:
    """Send ``total`` bytes in batches of 16 KiB blocks honouring flow control; return both digests."""
    rng = random.Random(seed)
    block = rng.randbytes(16384)
    sent = hashlib.sha1()
    got = hashlib.sha1()
    received = 0
    done = asyncio.get_running_loop().create_future()
    pauses = 0

    def on_data(view: memoryview) -> None:
        nonlocal received, pauses
        got.update(view)
        received += len(view)
        if received >= total and not done.done():
            done.set_result(None)
        elif received // (4 << 20) > pauses:  # now and then, push back on the sender
            pauses += 1
            dst.pause_reading()
            asyncio.get_running_loop().call_later(0.01, dst.resume_reading)

    dst.set_handlers(on_data, lambda exc: None)
    sent_bytes = 0
    while sent_bytes < total:
        batch = []
        for i in range(8):
            header = (16393).to_bytes(4, "big") + b"\x07" + (sent_bytes // 16384 + i).to_bytes(8, "big")
            batch += [header[:13], block]
        src.writelines(batch)
        for part in batch:
            sent.update(part)
        sent_bytes += sum(len(p) for p in batch)
        if not src.writable:
            await src.wait_writable()
    total = sent_bytes
    if received >= total and not done.done():
        done.set_result(None)
    async with asyncio.timeout(60):
        await done
    return sent.digest(), got.digest()


async def test_tcp_big_transfer_both_ways() -> None:
    """24 MiB each way over loopback TCP arrive intact through EncryptedLinks with flow control."""
    async with tcp_pair("127.0.0.1") as (client, server):
        a, b, _ = await handshake(client, server, ia=b"")
        assert isinstance(a, EncryptedLink) and isinstance(b, EncryptedLink)
        (s1, g1), (s2, g2) = await asyncio.gather(_stream(a, b, 24 << 20, 1), _stream(b, a, 24 << 20, 2))
    assert s1 == g1 and s2 == g2


async def test_tcp_peer_closing_mid_handshake() -> None:
    """A TCP peer that hangs up during the handshake gives the initiator a CLOSED error."""
    async with tcp_pair("127.0.0.1") as (client, server):
        got = bytearray()

        def on_data(view: memoryview) -> None:
            got.extend(view)
            server.close()

        server.set_handlers(on_data, lambda exc: None)
        with pytest.raises(MseError) as err:
            await mse_initiate(client, INFO_HASH, None, CFG)
        assert err.value.reason is FailureReason.CLOSED
        assert len(got) >= 96


def test_mem_link_is_a_link() -> None:
    """The test links and the wrappers satisfy the Link protocol's surface."""
    names = ["remote_address", "closed", "writable", "write_buffer_size", "set_handlers", "write"]
    names += ["writelines", "wait_writable", "pause_reading", "resume_reading", "close", "abort"]
    for cls in (MemLink, EncryptedLink, ReplayLink):
        assert all(hasattr(cls, n) for n in names), cls


OFFLOAD = MseConfig(handshake_timeout=5.0, offload_min_bytes=1, max_offload_backlog=100_000)


async def test_offloaded_decryption_keeps_order_and_bounds_the_backlog() -> None:
    """Reads decrypted on worker threads arrive whole and in order, and a full backlog pauses reading."""
    a_raw, b_raw = mem_pair()
    a, b, _ = await handshake(a_raw, b_raw, a_cfg=OFFLOAD, b_cfg=OFFLOAD)
    rng = random.Random(5)
    chunks = [rng.randbytes(rng.randrange(1, 70_000)) for _ in range(60)]
    paused_seen = False
    real_pause = b_raw.pause_reading

    def spy_pause() -> None:
        nonlocal paused_seen
        paused_seen = True
        real_pause()

    b_raw.pause_reading = spy_pause  # type: ignore[method-assign]
    sb = Sink(b)
    for chunk in chunks:
        a.write(chunk)
    want = b"".join(chunks)
    assert await sb.wait_for(len(want)) == want
    assert paused_seen


async def test_consumer_pause_holds_offloaded_data() -> None:
    """After the consumer pauses, decryptions in flight are held back until it resumes, in order."""
    a_raw, b_raw = mem_pair()
    a, b, _ = await handshake(a_raw, b_raw, a_cfg=OFFLOAD, b_cfg=OFFLOAD)
    got = bytearray()
    calls = 0

    def on_data(view: memoryview) -> None:
        nonlocal calls
        calls += 1
        got.extend(view)
        if calls == 1:
            b.pause_reading()  # more is queued behind this read, some of it being decrypted

    b.set_handlers(on_data, lambda exc: None)
    chunks = [bytes([i]) * 50_000 for i in range(10)]
    for chunk in chunks:
        a.write(chunk)
    await asyncio.sleep(0.2)
    assert calls == 1 and len(got) < 500_000
    b.resume_reading()
    async with asyncio.timeout(5):
        while len(got) < 500_000:
            await asyncio.sleep(0.01)
    assert bytes(got) == b"".join(chunks)


async def test_close_waits_for_offloaded_data() -> None:
    """A close that arrives while a read is being decrypted is reported after its bytes."""
    a_raw, b_raw = mem_pair()
    a, b, _ = await handshake(a_raw, b_raw, a_cfg=OFFLOAD, b_cfg=OFFLOAD)
    order: list[object] = []
    b.set_handlers(lambda v: order.append(len(v)), lambda exc: order.append("closed"))
    a.write(bytes(500_000))
    a.close()
    async with asyncio.timeout(5):
        while "closed" not in order:
            await asyncio.sleep(0.01)
    assert order[-1] == "closed" and sum(n for n in order if isinstance(n, int)) == 500_000


async def test_mixed_inline_and_worker_writes_keep_order() -> None:
    """Small writes that follow a batch still being encrypted on a worker queue behind it, in order."""
    cfg = MseConfig(offload_min_bytes=1000)
    a_raw, b_raw = mem_pair()
    a, b, _ = await handshake(a_raw, b_raw, a_cfg=cfg, b_cfg=cfg)
    sb = Sink(b)
    rng = random.Random(9)
    pieces = [rng.randbytes(rng.choice([10, 999, 1000, 5000, 70_000])) for _ in range(80)]
    for i, piece in enumerate(pieces):
        if i % 3:
            a.write(piece)
        else:
            a.writelines([piece[:7], memoryview(piece)[7:]])
    want = b"".join(pieces)
    assert await sb.wait_for(len(want)) == want


async def test_write_backlog_drives_writable() -> None:
    """Batches queued for encryption past max_offload_backlog make the link unwritable until they drain."""
    cfg = MseConfig(offload_min_bytes=1, max_offload_backlog=100_000)
    a_raw, b_raw = mem_pair()
    a, b, _ = await handshake(a_raw, b_raw, a_cfg=cfg, b_cfg=cfg)
    sb = Sink(b)
    for _ in range(4):
        a.write(bytes(80_000))
    assert not a.writable
    assert a.write_buffer_size >= 320_000
    async with asyncio.timeout(5):
        await a.wait_writable()
    assert a.writable
    assert await sb.wait_for(320_000) == bytes(320_000)


async def test_close_flushes_worker_writes_then_drops_later_writes() -> None:
    """close() sends every batch still being encrypted before closing; writes after it are dropped."""
    cfg = MseConfig(offload_min_bytes=1)
    a_raw, b_raw = mem_pair()
    a, b, _ = await handshake(a_raw, b_raw, a_cfg=cfg, b_cfg=cfg)
    sb = Sink(b)
    a.write(b"x" * 200_000)
    a.close()
    assert a.closed
    a.write(b"too late")
    async with asyncio.timeout(5):
        assert await sb.closed is None
    assert bytes(sb.data) == b"x" * 200_000


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the jobs it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="test-rc4")
        self.jobs = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.jobs += 1
        return super().submit(fn, *args, **kwargs)


async def test_rc4_jobs_run_on_the_given_executor() -> None:
    """With an executor handed in, the large reads and writes are en/decrypted on it."""
    cfg = MseConfig(offload_min_bytes=1000)
    a_raw, b_raw = mem_pair()
    pool_a, pool_b = CountingExecutor(), CountingExecutor()
    try:
        a, (b, _) = await asyncio.gather(
            mse_initiate(a_raw, INFO_HASH, None, cfg, executor=pool_a),
            mse_accept(b_raw, LOOKUP, None, cfg, executor=pool_b),
        )
        sb = Sink(b)
        a.write(bytes(50_000))
        a.write(b"small")
        assert await sb.wait_for(50_005) == bytes(50_000) + b"small"
        assert pool_a.jobs >= 1 and pool_b.jobs >= 1
    finally:
        pool_a.shutdown()
        pool_b.shutdown()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 40_000), min_size=1, max_size=4), min_size=1, max_size=12),
    st.sampled_from([0, 1, 5000, 65536]),
    st.sampled_from([1000, 100_000, 4 << 20]),
)
def test_any_mix_of_writes_arrives_intact(batches: list[list[int]], offload: int, backlog: int) -> None:
    """Whatever the write sizes, batching and offload settings, the other end receives what was sent."""
    cfg = MseConfig(offload_min_bytes=offload, max_offload_backlog=backlog)

    async def run() -> None:
        a_raw, b_raw = mem_pair()
        a, b, _ = await handshake(a_raw, b_raw, a_cfg=cfg, b_cfg=cfg)
        sb = Sink(b)
        sent = bytearray()
        rng = random.Random(len(batches))
        for sizes in batches:
            parts = [rng.randbytes(n) for n in sizes]
            sent += b"".join(parts)
            if len(parts) == 1:
                a.write(parts[0])
            else:
                a.writelines(parts)
            if not a.writable:
                await a.wait_writable()
        assert await sb.wait_for(len(sent)) == bytes(sent)

    asyncio.run(run())
