"""The in-memory link pair keeps the Link rules: ordered delivery, flow control, close semantics."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.core.types import PeerAddress
from p2pshare.io.link import Link
from p2pshare.io.memory_link import MemoryLink, memory_link_pair


class Sink:
    """Records what a link delivers."""

    def __init__(self, link: Link) -> None:
        self.data = bytearray()
        self.closes: list[Exception | None] = []
        link.set_handlers(self.on_data, self.closes.append)

    def on_data(self, view: memoryview) -> None:
        self.data += view


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_a_memory_link_is_a_link() -> None:
    """Both ends satisfy the Link protocol and see each other's address."""
    a, b = memory_link_pair(PeerAddress("127.0.0.3", 1), PeerAddress("127.0.0.4", 2))
    ends: tuple[Link, Link] = (a, b)
    assert ends[0].remote_address == ("127.0.0.4", 2)
    assert ends[1].remote_address == ("127.0.0.3", 1)


async def test_bytes_arrive_in_order_on_a_later_loop_turn() -> None:
    """Writes are delivered in order, never from inside write, in reads of at most read_size."""
    a, b = memory_link_pair(read_size=4)
    sink = Sink(b)
    reads: list[int] = []

    def on_data(view: memoryview) -> None:
        reads.append(len(view))
        sink.on_data(view)

    b.set_handlers(on_data, sink.closes.append)
    a.write(b"hello ")
    a.writelines([b"wor", memoryview(b"ld")])
    assert sink.data == b""
    await _turns()
    assert sink.data == b"hello world"
    assert max(reads) <= 4


async def test_bytes_before_set_handlers_are_delivered_once_attached() -> None:
    """Bytes written before the consumer attaches wait for it, in order."""
    a, b = memory_link_pair()
    a.write(b"early")
    await _turns()
    sink = Sink(b)
    await _turns()
    assert sink.data == b"early"


async def test_a_paused_reader_makes_the_writer_unwritable_until_it_drains() -> None:
    """Flow control: a backlog above high water blocks the writer until it drains below low water."""
    a, b = memory_link_pair(high_water=100, low_water=10, read_size=1000)
    sink = Sink(b)
    b.pause_reading()
    a.write(bytes(150))
    await _turns()
    assert sink.data == b""
    assert a.write_buffer_size == 150 and not a.writable
    waiter = asyncio.ensure_future(a.wait_writable())
    await _turns()
    assert not waiter.done()
    b.resume_reading()
    async with asyncio.timeout(1):
        await waiter
    assert a.writable and a.write_buffer_size == 0
    assert len(sink.data) == 150


async def test_close_delivers_pending_bytes_then_closes_both_ends() -> None:
    """An orderly close flushes what was written; both ends report None once."""
    a, b = memory_link_pair()
    sa, sb = Sink(a), Sink(b)
    a.write(b"last words")
    a.close()
    a.write(b"dropped")
    await _turns()
    assert sb.data == b"last words"
    assert sa.closes == [None] and sb.closes == [None]
    assert a.closed and b.closed


async def test_abort_drops_pending_bytes_and_resets_the_other_end() -> None:
    """An abort loses unsent bytes and the other end sees a ConnectionResetError."""
    a, b = memory_link_pair()
    sa, sb = Sink(a), Sink(b)
    a.write(b"never seen")
    a.abort()
    await _turns()
    assert sb.data == b""
    assert sa.closes == [None]
    assert len(sb.closes) == 1 and isinstance(sb.closes[0], ConnectionResetError)


async def test_wait_writable_returns_when_the_link_closes() -> None:
    """A writer blocked on a full buffer is released when the link closes."""
    a, b = memory_link_pair(high_water=1, low_water=0)
    Sink(b).data  # noqa: B018  (attach a consumer)
    b.pause_reading()
    a.write(b"xx")
    waiter = asyncio.ensure_future(a.wait_writable())
    await _turns()
    assert not waiter.done()
    b.close()
    async with asyncio.timeout(1):
        await waiter


async def test_a_close_before_the_consumer_attaches_is_reported_on_attach() -> None:
    """A link closed by the other end before set_handlers still reports its close once."""
    a, b = memory_link_pair()
    a.close()
    await _turns()
    sink = Sink(b)
    await _turns()
    assert sink.closes == [None]
    assert isinstance(b, MemoryLink) and b.closed


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(min_size=0, max_size=300), max_size=20),
    st.integers(1, 64),
    st.lists(st.booleans(), max_size=20),
)
def test_any_writes_arrive_whole_and_in_order(
    chunks: list[bytes], read_size: int, pauses: list[bool]
) -> None:
    """Whatever the write sizes, read size and pauses, the reader gets exactly the bytes written, in order."""

    async def run() -> bytes:
        a, b = memory_link_pair(high_water=128, low_water=32, read_size=read_size)
        sink = Sink(b)
        for i, chunk in enumerate(chunks):
            if i < len(pauses) and pauses[i]:
                b.pause_reading()
            a.write(chunk)
            await asyncio.sleep(0)
            b.resume_reading()
            if not a.writable:
                async with asyncio.timeout(1):
                    await a.wait_writable()
        a.close()
        async with asyncio.timeout(1):
            while not sink.closes:
                await asyncio.sleep(0)
        return bytes(sink.data)

    assert asyncio.run(run()) == b"".join(chunks)
