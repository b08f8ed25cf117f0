"""The streams an MSE handshake leaves behind, as ``Link``s: RC4 both ways, or a plaintext replay.

* :class:`EncryptedLink` wraps the inner link with the two RC4 keystreams: it decrypts
  what arrives before ``on_data`` and encrypts every ``write`` / ``writelines`` batch with
  one pass into one buffer and one inner write (the engine's batching survives; never one
  cipher call and one write per block).
* :class:`ReplayLink` first delivers the bytes a handshake already read, then passes
  everything through (a plaintext payload, or a plain BitTorrent peer).

Both hold the inner link's reading paused until the consumer calls ``set_handlers``, hold
plaintext while the consumer has reading paused, and report the close after the last byte.

RC4 in ``cryptography`` releases the GIL, so an :class:`EncryptedLink` runs large jobs
(reads and write batches of at least ``MseConfig.offload_min_bytes``) on worker threads,
overlapping the event loop: one job per direction at a time keeps each keystream in
order, smaller work queues behind a running job, and ``MseConfig.max_offload_backlog``
bounds what waits (reading pauses; ``writable`` turns False).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from concurrent.futures import Executor

from p2pshare.config import MseConfig
from p2pshare.core.mse import Rc4, StreamCipher
from p2pshare.core.types import Addr
from p2pshare.io.link import Buffer, CloseHandler, DataHandler, Link

__all__ = ["EncryptedLink", "ReplayLink"]

#: Initial size of the buffer decrypted reads land in (grows to the largest read seen).
_READ_BUFFER = 256 * 1024


class _WrappedLink:
    """What both wrappers share: handlers, held plaintext, an orderly close, flow control.

    Plaintext that cannot be delivered yet (no consumer, or the consumer paused reading)
    is held and delivered, in order, by ``set_handlers`` / ``resume_reading``; the close
    is reported after the last byte.
    """

    def __init__(self, inner: Link, prefix: bytes) -> None:
        self._inner = inner
        self._on_data: DataHandler | None = None
        self._on_close: CloseHandler | None = None
        self._held = bytearray(prefix)  # plaintext not yet delivered
        self._paused = False  # by the consumer
        self._close_pending: tuple[Exception | None] | None = None
        self._close_reported = False
        inner.pause_reading()  # until the consumer is attached
        inner.set_handlers(self._inner_data, self._inner_close)

    # -- Link ---------------------------------------------------------------------

    @property
    def remote_address(self) -> Addr:
        return self._inner.remote_address

    @property
    def closed(self) -> bool:
        return self._inner.closed

    @property
    def writable(self) -> bool:
        return self._inner.writable

    @property
    def write_buffer_size(self) -> int:
        return self._inner.write_buffer_size

    def set_handlers(self, on_data: DataHandler, on_close: CloseHandler) -> None:
        self._on_data = on_data
        self._on_close = on_close
        self._flush()
        self._read_if_allowed()

    async def wait_writable(self) -> None:
        await self._inner.wait_writable()

    def pause_reading(self) -> None:
        self._paused = True
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._paused = False
        self._flush()
        self._read_if_allowed()

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    # -- for subclasses -------------------------------------------------------------

    def _busy(self) -> bool:
        """True while received bytes are still on their way to plaintext."""
        return False

    def _may_read(self) -> bool:
        return True

    def _read_if_allowed(self) -> None:
        if (
            self._on_data is not None
            and not self._paused
            and self._close_pending is None
            and self._may_read()
            and not self._inner.closed
        ):
            self._inner.resume_reading()

    def _deliver(self, data: memoryview) -> None:
        if self._on_data is None or self._paused or self._held:
            self._held += data
            self._flush()
        else:
            self._on_data(data)

    def _flush(self) -> None:
        while self._held and self._on_data is not None and not self._paused:
            data = bytes(self._held)
            self._held.clear()
            self._on_data(memoryview(data))
        self._maybe_report_close()

    def _maybe_report_close(self) -> None:
        if (
            self._close_pending is not None
            and not self._close_reported
            and self._on_close is not None
            and not self._held
            and not self._busy()
        ):
            self._close_reported = True
            self._on_close(self._close_pending[0])

    # -- from the inner link ----------------------------------------------------------

    def _inner_data(self, data: memoryview) -> None:
        self._deliver(data)

    def _inner_close(self, exc: Exception | None) -> None:
        self._close_pending = (exc,)
        self._maybe_report_close()


class ReplayLink(_WrappedLink):
    """A plaintext link that first delivers ``prefix`` (bytes a handshake already read)."""

    def write(self, data: Buffer) -> None:
        self._inner.write(data)

    def writelines(self, parts: Iterable[Buffer]) -> None:
        self._inner.writelines(parts)


class EncryptedLink(_WrappedLink):
    """An RC4 stream over ``inner``: the keystreams of ``cipher``, positioned after the handshake."""

    def __init__(
        self,
        inner: Link,
        cipher: StreamCipher,
        prefix: bytes = b"",
        config: MseConfig | None = None,
        *,
        executor: Executor | None = None,
    ) -> None:
        """``executor`` runs the RC4 jobs (None: the event loop's default executor)."""
        cfg = config or MseConfig()
        self._cipher = cipher
        self._executor = executor
        self._read_buf = bytearray(_READ_BUFFER)
        self._offload_min = cfg.offload_min_bytes
        self._max_backlog = cfg.max_offload_backlog
        # reading: received ciphertext waiting for the decrypt job
        self._backlog: list[bytearray] = []
        self._backlog_bytes = 0
        self._job: asyncio.Future[bytearray] | None = None
        # writing: plaintext batches waiting for (or in) the encrypt job
        self._out_queue: list[bytearray] = []
        self._out_pending = 0
        self._out_job: asyncio.Future[bytearray] | None = None
        self._out_room = asyncio.Event()
        self._out_room.set()
        self._closing = False  # close() was called; the inner link closes once writes are out
        super().__init__(inner, prefix)

    # -- reading ------------------------------------------------------------------------

    def _busy(self) -> bool:
        return self._job is not None or bool(self._backlog)

    def _may_read(self) -> bool:
        return self._backlog_bytes <= self._max_backlog

    def _offload(self, n: int) -> bool:
        return 0 < self._offload_min <= n

    def _inner_data(self, data: memoryview) -> None:
        n = len(data)
        if not self._busy() and not self._offload(n):
            if n > len(self._read_buf):
                self._read_buf = bytearray(n)
            view = memoryview(self._read_buf)[:n]
            self._cipher.decryptor.update_into(data, view)
            self._deliver(view)  # valid only during the call, as the Link contract says
            return
        self._backlog.append(bytearray(data))
        self._backlog_bytes += n
        if not self._may_read():
            self._inner.pause_reading()
        self._start_job()

    def _start_job(self) -> None:
        if self._job is not None or not self._backlog:
            return
        chunk = self._backlog[0] if len(self._backlog) == 1 else bytearray().join(self._backlog)
        self._backlog.clear()
        self._backlog_bytes = 0
        self._job = asyncio.get_running_loop().run_in_executor(
            self._executor, self._in_place, self._cipher.decryptor, chunk
        )
        self._job.add_done_callback(self._job_done)

    @staticmethod
    def _in_place(rc4: Rc4, chunk: bytearray) -> bytearray:
        """(worker thread) the only user of this keystream while the job runs."""
        rc4.update_into(chunk, chunk)
        return chunk

    def _job_done(self, job: asyncio.Future[bytearray]) -> None:
        self._job = None
        if job.cancelled() or job.exception() is not None:  # pragma: no cover - RC4 does not fail
            self._inner.abort()
            return
        self._start_job()  # the next read's decryption overlaps this delivery
        self._deliver(memoryview(job.result()))
        self._read_if_allowed()
        self._maybe_report_close()

    # -- writing ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closing or self._inner.closed

    @property
    def writable(self) -> bool:
        return self._inner.writable and self._out_pending <= self._max_backlog

    @property
    def write_buffer_size(self) -> int:
        return self._inner.write_buffer_size + self._out_pending

    async def wait_writable(self) -> None:
        while self._out_pending > self._max_backlog and not self.closed:
            self._out_room.clear()
            await self._out_room.wait()
        await self._inner.wait_writable()

    def write(self, data: Buffer) -> None:
        if len(data):
            self._send([data], len(data))

    def writelines(self, parts: Iterable[Buffer]) -> None:
        """Encrypt the whole batch into one buffer and hand it on as one write."""
        chunks = [p for p in parts if len(p)]
        if chunks:
            self._send(chunks, sum(len(p) for p in chunks))

    def _send(self, parts: list[Buffer], total: int) -> None:
        if self.closed:
            return
        idle = self._out_job is None and not self._out_queue
        if idle and not self._offload(total):
            if len(parts) == 1:
                self._inner.write(self._cipher.encrypt(parts[0]))
                return
            out = bytearray(total)
            view = memoryview(out)
            at = 0
            update_into = self._cipher.encryptor.update_into
            for part in parts:
                at += update_into(part, view[at:])
            self._inner.write(out)
            return
        buf = bytearray(total)  # the batch is copied now: the caller may reuse its buffers
        at = 0
        for part in parts:
            buf[at : at + len(part)] = part
            at += len(part)
        self._out_queue.append(buf)
        self._out_pending += total
        self._start_out_job()

    def _start_out_job(self) -> None:
        if self._out_job is not None or not self._out_queue:
            return
        queue = self._out_queue
        chunk = queue[0] if len(queue) == 1 else bytearray().join(queue)
        queue.clear()
        loop = asyncio.get_running_loop()
        self._out_job = loop.run_in_executor(self._executor, self._in_place, self._cipher.encryptor, chunk)
        self._out_job.add_done_callback(self._out_job_done)

    def _out_job_done(self, job: asyncio.Future[bytearray]) -> None:
        self._out_job = None
        if job.cancelled() or job.exception() is not None:  # pragma: no cover - RC4 does not fail
            self._inner.abort()
            return
        chunk = job.result()
        self._out_pending -= len(chunk)
        if not self._inner.closed:
            self._inner.write(chunk)
        self._start_out_job()
        if self._out_pending <= self._max_backlog:
            self._out_room.set()
        if self._closing and self._out_job is None:
            self._inner.close()

    def close(self) -> None:
        """Flush (including batches still being encrypted), then close."""
        if self._closing:
            return
        self._closing = True
        self._out_room.set()
        if self._out_job is None:
            self._inner.close()

    def abort(self) -> None:
        self._out_queue.clear()
        self._closing = True
        self._out_room.set()
        self._inner.abort()
