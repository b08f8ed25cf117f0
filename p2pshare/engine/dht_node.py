"""The DHT as a service for the engine and the CLI.

:class:`DhtService` runs one sans-I/O :class:`~p2pshare.core.dht.node.DhtNode` on a
UDP socket (:class:`~p2pshare.io.dht_endpoint.DhtEndpoint`) and offers awaitable
operations.  Every wait it performs is bounded by a timeout.

Typical use by the engine::

    dht = await DhtService.start(port=0, bootstrap=bootstrap_from_env() or config.dht.bootstrap,
                                 state_dir=default_state_dir(), config=config.dht)
    try:
        async for peer in dht.get_peers(info_hash, timeout=30):   # peers as they are found
            ...
        dht.keep_announced(info_hash, tcp_port)                   # now and every 15 minutes
        dht.add_node(peer_ip, dht_port)                           # from a BEP 3 PORT message
    finally:
        await dht.close()                                         # saves id + good nodes

API
---
``await DhtService.start(*, host="0.0.0.0", port=0, bootstrap, state_dir, config=DhtConfig(),
node_id=None)``
    Bind, load saved state (node id + good nodes) from ``state_dir`` (None: keep
    nothing), ping the saved nodes and look up our own id through them and through
    ``bootstrap`` (host names are resolved, IPs used as given).  Returns at once;
    ``await wait_ready(timeout)`` waits for the table to fill.
``port`` / ``node_id`` / ``address``
    The bound UDP port, our current id, the bound (ip, port).
``get_peers(info_hash, *, timeout) -> AsyncIterator[PeerAddress]``
    Yield each distinct peer as the lookup finds it; stops when the lookup ends or
    ``timeout`` seconds pass (never raises on timeout).
``await find_peers(info_hash, *, timeout) -> list[PeerAddress]``
    The same, collected.
``await announce(info_hash, port, *, implied_port=False, timeout=None) -> int``
    Look up the hash and announce ``port`` to the closest nodes; returns how many
    acknowledged (0 if none or on timeout; default bound ``config.announce_timeout``).
``keep_announced(info_hash, port, *, implied_port=False)`` / ``stop_announcing(info_hash)``
    Announce now and every ``config.reannounce_interval`` (15 min) until stopped.
``add_node(host, port)``
    A node we heard of (BEP 3 PORT message): ping it, add it if it answers.
``await get_item(target | (public_key, salt), *, timeout=None) -> Item | None``
    BEP 44 get: the verified item with the highest seq (None if none was found in
    time; default bound ``config.item_timeout``).  A bare target finds an immutable
    item or an unsalted mutable one; a salted item needs ``(public_key, salt)``.
``await put_immutable(value, *, timeout=None) -> PutResult``
    Store a bencodable value under its SHA-1 on the closest nodes.
``await put_mutable(private_key, value, seq, salt=b"", cas=None, *, timeout=None) -> PutResult``
    Sign ``value`` with a 32-byte ed25519 private key and store it; ``PutResult.seen``
    is the newest version the lookup met (publish ``seen.seq + 1`` next).
``status() -> dict``
    Nodes in the table by state, buckets, stored peers, traffic counters, etc.
``await save_state()`` / ``await close()``
    Persist now / stop everything, save, close the socket.

:func:`run_standalone` runs a node until cancelled (``p2pshare dht``), and
:func:`bootstrap_from_env` reads ``P2PSHARE_BOOTSTRAP`` (``HOST:PORT,HOST:PORT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2pshare.config import DhtConfig
from p2pshare.core.dht.events import DhtEvent, ItemFound, LookupDone, PeersFound
from p2pshare.core.dht.items import Item, immutable_item, mutable_target, sign_mutable
from p2pshare.core.dht.krpc import Addr
from p2pshare.core.dht.node import DhtNode
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.io.dht_endpoint import DhtEndpoint, is_ip_literal
from p2pshare.io.dht_state import BOOTSTRAP_ENV, DhtState, bootstrap_from_env, load_state, save_state_async

if TYPE_CHECKING:
    from p2pshare.io.utp_socket import UtpSocket

__all__ = ["BOOTSTRAP_ENV", "DhtService", "PutResult", "bootstrap_from_env", "run_standalone"]

log = logging.getLogger(__name__)

_CLOSE_WAIT = 5.0  #: bound on waiting for our own tasks to finish when closing
_READY_POLL = 0.1  #: wait_ready() re-checks the table this often


def _add_node(addr: Addr, node: DhtNode, now: float) -> None:
    node.add_node(addr, now)


@dataclass(frozen=True, slots=True)
class PutResult:
    """What a BEP 44 put achieved: the item's target, how many nodes stored it, the newest copy seen."""

    target: bytes
    stored: int
    seen: Item | None = None


class DhtService:
    """A running DHT node; see the module docstring.  Build it with :meth:`start`."""

    def __init__(self, config: DhtConfig, state_dir: Path | None) -> None:
        self.config = config
        self.state_dir = state_dir
        self._endpoint: DhtEndpoint | None = None
        self._waiters: dict[int, asyncio.Queue[DhtEvent]] = {}
        self._ready = asyncio.Event()
        self._announcers: dict[bytes, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -- lifecycle --------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        *,
        host: str = "0.0.0.0",
        port: int = 0,
        bootstrap: Sequence[Addr],
        state_dir: Path | None,
        config: DhtConfig | None = None,
        node_id: bytes | None = None,
        rng: random.Random | None = None,
        utp: UtpSocket | None = None,
    ) -> DhtService:
        """Bind ``host:port`` and join the DHT through saved nodes and ``bootstrap``.

        With ``utp``, the node rides on that uTP socket instead (one UDP port for both,
        demultiplexed by the first byte); ``host``/``port`` are then the socket's.
        """
        config = config if config is not None else DhtConfig()
        self = cls(config, state_dir)
        state = None
        if state_dir is not None:
            state = await asyncio.to_thread(load_state, state_dir, max_nodes=config.max_saved_nodes)
        if node_id is None and state is not None:
            node_id = state.node_id
        ipv6 = ":" in host

        def factory(now: float) -> DhtNode:
            return DhtNode(config, now=now, node_id=node_id, rng=rng, ipv6=ipv6)

        if utp is not None:
            self._endpoint = utp.attach_dht(factory, dht_config=config, on_event=self._on_event)
        else:
            self._endpoint = await DhtEndpoint.open(
                factory, host=host, port=port, config=config, on_event=self._on_event
            )
        seeds: list[Addr] = []
        if state is not None:
            seeds.extend(addr for _, addr in state.nodes)
        for h, p in bootstrap:
            for addr in await self._endpoint.resolve(h, p):
                if addr not in seeds:
                    seeds.append(addr)
        ep = self._endpoint

        def join(node: DhtNode, now: float) -> None:
            for addr in seeds:
                node.add_node(addr, now)
            node.bootstrap(seeds, now)

        ep.call(join)
        if state_dir is not None:
            self._spawn(self._save_periodically())
        log.info("DHT node %s listening on UDP %s:%d", ep.node.node_id.hex(), *ep.local_address)
        return self

    async def __aenter__(self) -> DhtService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel our tasks, save state (if a state dir was given), close the socket."""
        if self._closed:
            return
        self._closed = True
        tasks = [*self._tasks, *self._announcers.values()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_CLOSE_WAIT)
        self._announcers.clear()
        try:
            await self.save_state()
        except OSError as exc:
            log.warning("could not save DHT state: %s", exc)
        if self._endpoint is not None:
            self._endpoint.close()
        for q in self._waiters.values():
            q.put_nowait(_CLOSED)
        self._ready.set()  # wakes wait_ready() callers; they see the service closed

    async def save_state(self) -> None:
        """Write our id and good nodes to the state dir now (no-op without one)."""
        if self.state_dir is None or self._endpoint is None:
            return
        node = self._endpoint.node
        nodes = node.good_nodes(self._endpoint.now())[: self.config.max_saved_nodes]
        await save_state_async(self.state_dir, DhtState(node.node_id, tuple(nodes)))

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.config.state_save_interval)
            try:
                await self.save_state()
            except OSError as exc:
                log.warning("could not save DHT state: %s", exc)

    # -- properties -------------------------------------------------------------------

    @property
    def endpoint(self) -> DhtEndpoint:
        if self._endpoint is None:
            raise RuntimeError("DhtService.start() has not finished")
        return self._endpoint

    @property
    def port(self) -> int:
        return self.endpoint.local_address[1]

    @property
    def address(self) -> Addr:
        return self.endpoint.local_address

    @property
    def node_id(self) -> bytes:
        return self.endpoint.node.node_id

    def status(self) -> dict[str, Any]:
        """A snapshot for status views: table, storage, lookups and traffic counters."""
        ep = self.endpoint
        return {
            **ep.node.status(ep.now()),
            **ep.stats,
            "port": self.port,
            "announcing": len(self._announcers),
            "outgoing_queue": ep.queued,
        }

    # -- readiness --------------------------------------------------------------------

    async def wait_ready(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the first bootstrap lookup ended with nodes in the table."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        table = self.endpoint.node.table
        # The bootstrap lookup ending wakes us; nodes that join by querying us are seen by polling.
        while not len(table) and not self._closed and (remaining := deadline - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, _READY_POLL)):
                    await self._ready.wait()
        return len(table) > 0

    # -- lookups ----------------------------------------------------------------------

    def _on_event(self, ev: DhtEvent) -> None:
        if isinstance(ev, LookupDone) and ev.kind == "bootstrap" and ev.nodes_responded:
            self._ready.set()
        lookup_id = getattr(ev, "lookup_id", None)
        if lookup_id is not None:
            q = self._waiters.get(lookup_id)
            if q is not None:
                q.put_nowait(ev)

    async def get_peers(self, info_hash: InfoHash, *, timeout: float) -> AsyncIterator[PeerAddress]:
        """Yield distinct peers for ``info_hash`` as found; ends with the lookup or after ``timeout`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not len(self.endpoint.node.table):
            await self.wait_ready(max(0.0, deadline - loop.time()) / 2)
        if self._closed:
            return
        queue: asyncio.Queue[DhtEvent] = asyncio.Queue()
        lookup_id = self.endpoint.call(lambda n, now: n.start_get_peers(info_hash.value, now))
        self._waiters[lookup_id] = queue
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    async with asyncio.timeout(remaining):
                        ev = await queue.get()
                except TimeoutError:
                    return
                if isinstance(ev, PeersFound):
                    for peer in ev.peers:
                        yield peer
                elif ev is _CLOSED or isinstance(ev, LookupDone):
                    return
        finally:
            self._waiters.pop(lookup_id, None)
            if not self._closed:
                self.endpoint.call(lambda n, now: n.cancel_lookup(lookup_id))

    async def find_peers(self, info_hash: InfoHash, *, timeout: float) -> list[PeerAddress]:
        """All peers one get_peers lookup finds (bounded by ``timeout``)."""
        return [p async for p in self.get_peers(info_hash, timeout=timeout)]

    async def announce(
        self, info_hash: InfoHash, port: int, *, implied_port: bool = False, timeout: float | None = None
    ) -> int:
        """Announce ``port`` for ``info_hash``; returns how many nodes acknowledged (0 on timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.announce_timeout if timeout is None else timeout)
        if not len(self.endpoint.node.table):
            await self.wait_ready(max(0.0, deadline - loop.time()) / 2)
        if self._closed:
            return 0
        queue: asyncio.Queue[DhtEvent] = asyncio.Queue()
        lookup_id = self.endpoint.call(
            lambda n, now: n.start_announce(info_hash.value, port, now, implied_port=implied_port)
        )
        self._waiters[lookup_id] = queue
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return 0
                try:
                    async with asyncio.timeout(remaining):
                        ev = await queue.get()
                except TimeoutError:
                    return 0
                if ev is _CLOSED:
                    return 0
                if isinstance(ev, LookupDone):
                    return ev.announced_to
        finally:
            self._waiters.pop(lookup_id, None)
            if not self._closed:
                self.endpoint.call(lambda n, now: n.cancel_lookup(lookup_id))

    def keep_announced(self, info_hash: InfoHash, port: int, *, implied_port: bool = False) -> None:
        """Announce now and every ``reannounce_interval`` until :meth:`stop_announcing`."""
        self.stop_announcing(info_hash)
        self._announcers[info_hash.value] = asyncio.create_task(
            self._announce_loop(info_hash, port, implied_port), name=f"dht-announce-{info_hash.hex[:8]}"
        )

    def stop_announcing(self, info_hash: InfoHash) -> None:
        """Stop re-announcing ``info_hash`` (entries on other nodes expire by themselves)."""
        task = self._announcers.pop(info_hash.value, None)
        if task is not None:
            task.cancel()

    async def _announce_loop(self, info_hash: InfoHash, port: int, implied_port: bool) -> None:
        while True:
            count = await self.announce(info_hash, port, implied_port=implied_port)
            log.info("announced %s to %d DHT nodes", info_hash, count)
            # Nobody took it: try again sooner than the regular interval.
            delay = self.config.reannounce_interval if count else self.config.bootstrap_retry
            await asyncio.sleep(min(delay, self.config.reannounce_interval))

    # -- BEP 44 items -----------------------------------------------------------------

    async def _item_lookup(
        self, start: Callable[[DhtNode, float], int], timeout: float | None
    ) -> tuple[LookupDone | None, Item | None]:
        """Run one item lookup to its end or ``timeout``; its LookupDone (None on timeout) and best item."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.item_timeout if timeout is None else timeout)
        if not len(self.endpoint.node.table):
            await self.wait_ready(max(0.0, deadline - loop.time()) / 2)
        if self._closed:
            return None, None
        queue: asyncio.Queue[DhtEvent] = asyncio.Queue()
        lookup_id = self.endpoint.call(start)
        self._waiters[lookup_id] = queue
        best: Item | None = None
        try:
            while (remaining := deadline - loop.time()) > 0:
                try:
                    async with asyncio.timeout(remaining):
                        ev = await queue.get()
                except TimeoutError:
                    break
                if isinstance(ev, ItemFound):
                    best = ev.item
                elif ev is _CLOSED:
                    break
                elif isinstance(ev, LookupDone):
                    return ev, best
            return None, best
        finally:
            self._waiters.pop(lookup_id, None)
            if not self._closed:
                self.endpoint.call(lambda n, now: n.cancel_lookup(lookup_id))

    async def get_item(
        self, target: bytes | tuple[bytes, bytes], *, timeout: float | None = None
    ) -> Item | None:
        """The newest verified item under ``target`` or ``(public_key, salt)``; None if none in time."""
        salt = b""
        if isinstance(target, tuple):
            key, salt = target
            target = mutable_target(key, salt)
        if len(target) != 20:
            raise ValueError("a BEP 44 target is 20 bytes")
        want = target
        _, item = await self._item_lookup(lambda n, now: n.start_get_item(want, now, salt=salt), timeout)
        return item

    async def put_immutable(self, value: object, *, timeout: float | None = None) -> PutResult:
        """Store a bencodable ``value`` under its SHA-1 on the nodes closest to it."""
        return await self._put(immutable_item(value), None, timeout)

    async def put_mutable(
        self,
        private_key: bytes,
        value: object,
        seq: int,
        salt: bytes = b"",
        cas: int | None = None,
        *,
        timeout: float | None = None,
    ) -> PutResult:
        """Sign ``value`` (seq, salt) with a 32-byte ed25519 private key and store it."""
        return await self._put(sign_mutable(private_key, value, seq, salt), cas, timeout)

    async def _put(self, item: Item, cas: int | None, timeout: float | None) -> PutResult:
        done, seen = await self._item_lookup(lambda n, now: n.start_put_item(item, now, cas=cas), timeout)
        return PutResult(item.target, done.announced_to if done is not None else 0, seen)

    def add_node(self, host: str, port: int) -> None:
        """A DHT node we heard of (BEP 3 PORT message): ping it; it joins the table if it answers."""
        if self._closed or not 0 < port < 65536:
            return
        if is_ip_literal(host):
            self.endpoint.call(lambda n, now: n.add_node((host, port), now))
            return

        async def resolve_and_add() -> None:
            for addr in await self.endpoint.resolve(host, port):
                if not self._closed:
                    self.endpoint.call(functools.partial(_add_node, addr))

        self._spawn(resolve_and_add())

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def wrapper() -> None:
            await coro

        task = asyncio.ensure_future(wrapper())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


#: Put in waiter queues when the service closes, so pending waits end at once.
_CLOSED: Any = LookupDone(0, "closed", b"", 0, 0, 0, 0, 0, ())


async def run_standalone(
    port: int,
    bootstrap: Sequence[Addr],
    state_dir: Path | None,
    config: DhtConfig,
    on_ready: Callable[[DhtService], object] | None = None,
    *,
    host: str = "0.0.0.0",
    stop: asyncio.Event | None = None,
) -> None:
    """Run a DHT node (``p2pshare dht``) until ``stop`` is set or the task is cancelled.

    ``on_ready(service)`` is called once the socket is bound (use it to print the
    port and poll ``status()``); the state is saved periodically and on exit.
    """
    service = await DhtService.start(
        host=host, port=port, bootstrap=bootstrap, state_dir=state_dir, config=config
    )
    try:
        if on_ready is not None:
            result = on_ready(service)
            if asyncio.iscoroutine(result):
                await result
        if stop is None:
            stop = asyncio.Event()
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(service.close())
