"""MSE/PE under the wire protocol: the handshake drivers and the encrypted ``Link``.

:func:`mse_initiate` (we dialed) and :func:`mse_accept` (we accepted) run the
sans-I/O machines of :mod:`p2pshare.core.mse` over a :class:`~p2pshare.io.link.Link`
with a deadline, and return the link the wire protocol should use from then on:

* an :class:`EncryptedLink` when RC4 was selected: it decrypts in ``on_data`` and
  encrypts each ``write`` / ``writelines`` batch with one pass into one buffer, so the
  engine's batching survives (one inner write per batch, never one per block);
* a :class:`ReplayLink` when the payload is plaintext (selected after an MSE
  handshake, or a plain BitTorrent peer under ``prefer``/``off``): it first replays
  the bytes the handshake already read, then passes everything through.

Either wrapper holds the inner link's reading paused until the consumer calls
``set_handlers``, so nothing piles up in between.  A failed handshake aborts the
inner link and raises :class:`~p2pshare.core.mse.MseError` (``.reason`` says why);
under ``prefer`` an initiator dials again in plaintext.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from p2pshare.config import EncryptionPolicy, MseConfig
from p2pshare.core.mse import (
    Failed,
    FailureReason,
    HandshakeDone,
    Initiator,
    Method,
    MseError,
    MseMachine,
    PlaintextStream,
    Receiver,
    SkeyLookup,
    StreamCipher,
)
from p2pshare.io.link import Buffer, CloseHandler, DataHandler, Link

__all__ = ["EncryptedLink", "FailureReason", "MseError", "ReplayLink", "mse_accept", "mse_initiate"]

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
    def remote_address(self) -> tuple[str, int]:
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
    """An RC4 stream over ``inner``: the keystreams of ``cipher``, positioned after the handshake.

    Small reads are decrypted at once on the event loop.  Reads of at least
    ``config.decrypt_offload_min`` bytes are copied and decrypted in place on a worker
    thread (``cryptography`` releases the GIL while RC4 runs), so decryption overlaps the
    engine's own work; one job per link at a time keeps the keystream in order, reads that
    arrive meanwhile queue behind it, and past ``config.max_decrypt_backlog`` queued bytes
    the inner link stops reading until the queue drains.
    """

    def __init__(
        self, inner: Link, cipher: StreamCipher, prefix: bytes = b"", config: MseConfig | None = None
    ) -> None:
        cfg = config or MseConfig()
        self._cipher = cipher
        self._read_buf = bytearray(_READ_BUFFER)
        self._offload_min = cfg.decrypt_offload_min
        self._max_backlog = cfg.max_decrypt_backlog
        self._backlog: list[bytearray] = []
        self._backlog_bytes = 0
        self._job: asyncio.Future[bytearray] | None = None
        super().__init__(inner, prefix)

    def _busy(self) -> bool:
        return self._job is not None or bool(self._backlog)

    def _may_read(self) -> bool:
        return self._backlog_bytes <= self._max_backlog

    def _inner_data(self, data: memoryview) -> None:
        n = len(data)
        if not self._busy() and (self._offload_min <= 0 or n < self._offload_min):
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
        loop = asyncio.get_running_loop()
        self._job = loop.run_in_executor(None, self._decrypt_in_place, chunk)
        self._job.add_done_callback(self._job_done)

    def _decrypt_in_place(self, chunk: bytearray) -> bytearray:
        """(worker thread) the only user of the decryptor while a job runs."""
        self._cipher.decryptor.update_into(chunk, chunk)
        return chunk

    def _job_done(self, job: asyncio.Future[bytearray]) -> None:
        self._job = None
        if job.cancelled():
            return
        error = job.exception()
        if error is not None:  # pragma: no cover - RC4 over a buffer does not fail
            self._inner.abort()
            return
        self._start_job()  # the next read's decryption overlaps this delivery
        self._deliver(memoryview(job.result()))
        self._read_if_allowed()
        self._maybe_report_close()

    def write(self, data: Buffer) -> None:
        if data and not self._inner.closed:
            self._inner.write(self._cipher.encrypt(data))

    def writelines(self, parts: Iterable[Buffer]) -> None:
        """Encrypt the whole batch into one buffer and hand it on as one write."""
        if self._inner.closed:
            return
        chunks = [p for p in parts if len(p)]
        if not chunks:
            return
        if len(chunks) == 1:
            self._inner.write(self._cipher.encrypt(chunks[0]))
            return
        out = bytearray(sum(len(p) for p in chunks))
        view = memoryview(out)
        at = 0
        update_into = self._cipher.encryptor.update_into
        for part in chunks:
            at += update_into(part, view[at:])
        self._inner.write(out)


def _result_link(inner: Link, machine: MseMachine, event: HandshakeDone, config: MseConfig) -> Link:
    if event.method is Method.RC4:
        assert machine.cipher is not None
        return EncryptedLink(inner, machine.cipher, event.initial_payload, config)
    return ReplayLink(inner, event.initial_payload)


async def _run(
    link: Link, machine: MseMachine, config: MseConfig
) -> tuple[Link, HandshakeDone | PlaintextStream]:
    """Drive ``machine`` over ``link`` until its final event; build the wrapper in the same callback."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[Link, HandshakeDone | PlaintextStream]] = loop.create_future()

    def settle() -> None:
        out = machine.data_to_send()
        if out:
            link.write(out)
        event = machine.next_event()
        if event is None or done.done():
            return
        timer.cancel()
        if isinstance(event, Failed):
            link.abort()
            done.set_exception(event.error())
        elif isinstance(event, PlaintextStream):
            done.set_result((ReplayLink(link, event.data), event))
        else:
            done.set_result((_result_link(link, machine, event, config), event))

    def on_data(data: memoryview) -> None:
        if not machine.finished:
            machine.receive_data(data)
            settle()

    def on_close(exc: Exception | None) -> None:
        if not machine.finished:
            machine.receive_data(b"")
            settle()

    def on_timer() -> None:
        deadline = machine.get_timer()
        if deadline is not None:
            machine.handle_timer(max(loop.time(), deadline))
            settle()

    deadline = machine.get_timer()
    assert deadline is not None
    timer = loop.call_at(deadline, on_timer)
    link.set_handlers(on_data, on_close)
    settle()  # the initiator's first message
    try:
        return await done
    finally:
        timer.cancel()
        if not done.done():  # cancelled from outside
            link.abort()


async def mse_initiate(
    link: Link,
    info_hash: bytes,
    policy: EncryptionPolicy | None = None,
    cfg: MseConfig | None = None,
    *,
    initial_payload: bytes = b"",
) -> Link:
    """Run the initiator's handshake on a fresh outgoing ``link``; return the link to use.

    Under ``off`` no handshake is made and ``link`` comes back as it is.  ``initial_payload``
    (e.g. our BitTorrent handshake) travels encrypted inside the MSE handshake.  On failure
    the link is aborted and :class:`MseError` raised.
    """
    cfg = cfg or MseConfig()
    policy = policy or cfg.policy
    if policy is EncryptionPolicy.OFF:
        return link
    machine = Initiator(
        info_hash,
        config=cfg,
        now=asyncio.get_running_loop().time(),
        policy=policy,
        initial_payload=initial_payload,
    )
    result, _ = await _run(link, machine, cfg)
    return result


async def mse_accept(
    link: Link,
    lookup_skey: SkeyLookup,
    policy: EncryptionPolicy | None = None,
    cfg: MseConfig | None = None,
) -> tuple[Link, bytes | None]:
    """Run the receiver's side on a fresh incoming ``link``: MSE or plain BitTorrent, per policy.

    Returns the link to use and the info hash the peer named by SKEY (None for a plain
    BitTorrent peer, whose own handshake names it).  On failure the link is aborted and
    :class:`MseError` raised.
    """
    cfg = cfg or MseConfig()
    machine = Receiver(lookup_skey, config=cfg, now=asyncio.get_running_loop().time(), policy=policy)
    result, event = await _run(link, machine, cfg)
    return result, event.info_hash if isinstance(event, HandshakeDone) else None
