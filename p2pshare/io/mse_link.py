"""MSE/PE under the wire protocol: the handshake drivers and the encrypted ``Link``.

:func:`mse_initiate` (we dialed) and :func:`mse_accept` (we accepted) run the
sans-I/O machines of :mod:`p2pshare.core.mse` over a :class:`~p2pshare.io.link.Link`
with a deadline, and return the link the wire protocol should use from then on:

* an :class:`~p2pshare.io.mse_stream.EncryptedLink` when RC4 was selected;
* a :class:`~p2pshare.io.mse_stream.ReplayLink` when the payload is plaintext (selected
  after an MSE handshake, or a plain BitTorrent peer under ``prefer``/``off``): it first
  replays the bytes the handshake already read, then passes everything through.

The wrapper is built inside the callback that finished the handshake, so no byte that
follows can reach the handshake's handlers.  A failed handshake aborts the
inner link and raises :class:`~p2pshare.core.mse.MseError` (``.reason`` says why);
under ``prefer`` an initiator dials again in plaintext.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

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
)
from p2pshare.io.link import Link
from p2pshare.io.mse_stream import EncryptedLink, ReplayLink

__all__ = ["EncryptedLink", "FailureReason", "MseError", "ReplayLink", "mse_accept", "mse_initiate"]


def _result_link(
    inner: Link, machine: MseMachine, event: HandshakeDone, config: MseConfig, executor: Executor | None
) -> Link:
    if event.method is Method.RC4:
        assert machine.cipher is not None
        return EncryptedLink(inner, machine.cipher, event.initial_payload, config, executor=executor)
    return ReplayLink(inner, event.initial_payload)


async def _run(
    link: Link, machine: MseMachine, config: MseConfig, executor: Executor | None
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
            done.set_result((_result_link(link, machine, event, config, executor), event))

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
    executor: Executor | None = None,
) -> Link:
    """Run the initiator's handshake on a fresh outgoing ``link``; return the link to use.

    Under ``off`` no handshake is made and ``link`` comes back as it is.  ``initial_payload``
    (e.g. our BitTorrent handshake) travels encrypted inside the MSE handshake.  On failure
    the link is aborted and :class:`MseError` raised.  ``executor`` runs the RC4 of large
    reads and writes (None: the loop's default executor).
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
    result, _ = await _run(link, machine, cfg, executor)
    return result


async def mse_accept(
    link: Link,
    lookup_skey: SkeyLookup,
    policy: EncryptionPolicy | None = None,
    cfg: MseConfig | None = None,
    *,
    executor: Executor | None = None,
) -> tuple[Link, bytes | None]:
    """Run the receiver's side on a fresh incoming ``link``: MSE or plain BitTorrent, per policy.

    Returns the link to use and the info hash the peer named by SKEY (None for a plain
    BitTorrent peer, whose own handshake names it).  On failure the link is aborted and
    :class:`MseError` raised.
    """
    cfg = cfg or MseConfig()
    machine = Receiver(lookup_skey, config=cfg, now=asyncio.get_running_loop().time(), policy=policy)
    result, event = await _run(link, machine, cfg, executor)
    return result, event.info_hash if isinstance(event, HandshakeDone) else None
