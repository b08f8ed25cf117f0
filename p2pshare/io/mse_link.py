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
    """What both wrappers share: handlers, the replayed prefix, close, flow control."""

    def __init__(self, inner: Link, prefix: bytes) -> None:
        self._inner = inner
        self._on_data: DataHandler | None = None
        self._on_close: CloseHandler | None = None
        self._early = bytearray(prefix)  # plaintext received before set_handlers
        self._early_close: tuple[Exception | None] | None = None
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
        if self._early:
            early = bytes(self._early)
            self._early.clear()
            on_data(memoryview(early))
        if self._early_close is not None:
            self._report_close(self._early_close[0])
        elif not self._inner.closed:
            self._inner.resume_reading()

    async def wait_writable(self) -> None:
        await self._inner.wait_writable()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    # -- from the inner link ----------------------------------------------------------

    def _deliver(self, data: memoryview) -> None:
        if self._on_data is None:
            self._early += data
        else:
            self._on_data(data)

    def _inner_data(self, data: memoryview) -> None:
        self._deliver(data)

    def _inner_close(self, exc: Exception | None) -> None:
        if self._on_close is None:
            self._early_close = (exc,)
        else:
            self._report_close(exc)

    def _report_close(self, exc: Exception | None) -> None:
        if not self._close_reported and self._on_close is not None:
            self._close_reported = True
            self._on_close(exc)


class ReplayLink(_WrappedLink):
    """A plaintext link that first delivers ``prefix`` (bytes a handshake already read)."""

    def write(self, data: Buffer) -> None:
        self._inner.write(data)

    def writelines(self, parts: Iterable[Buffer]) -> None:
        self._inner.writelines(parts)


class EncryptedLink(_WrappedLink):
    """An RC4 stream over ``inner``: the keystreams of ``cipher``, positioned after the handshake."""

    def __init__(self, inner: Link, cipher: StreamCipher, prefix: bytes = b"") -> None:
        self._cipher = cipher
        self._read_buf = bytearray(_READ_BUFFER)
        super().__init__(inner, prefix)

    def _inner_data(self, data: memoryview) -> None:
        n = len(data)
        if n > len(self._read_buf):
            self._read_buf = bytearray(n)
        view = memoryview(self._read_buf)[:n]
        self._cipher.decryptor.update_into(data, view)
        self._deliver(view)  # valid only during the call, as the Link contract says

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


def _result_link(inner: Link, machine: MseMachine, event: HandshakeDone) -> Link:
    if event.method is Method.RC4:
        assert machine.cipher is not None
        return EncryptedLink(inner, machine.cipher, event.initial_payload)
    return ReplayLink(inner, event.initial_payload)


async def _run(link: Link, machine: MseMachine) -> tuple[Link, HandshakeDone | PlaintextStream]:
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
            done.set_result((_result_link(link, machine, event), event))

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
    result, _ = await _run(link, machine)
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
    result, event = await _run(link, machine)
    return result, event.info_hash if isinstance(event, HandshakeDone) else None
