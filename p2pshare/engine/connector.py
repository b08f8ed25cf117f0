"""The connector room: MSE/PE on every link a session dials or accepts, per ``--encryption``.

=========  ==========================================  ===================================
policy     we dial                                     we accept
=========  ==========================================  ===================================
prefer     MSE first; plaintext again if the peer      MSE (matched by SKEY among every
           does not speak it (remembered)              torrent served) or plain BitTorrent
require    MSE, RC4 only                               MSE, RC4 only; plain is refused
off        plain BitTorrent                            plain BitTorrent; MSE is refused
=========  ==========================================  ===================================

What we learn about a peer is remembered per address (bounded, oldest forgotten first):

* ``ENCRYPTED``: it spoke MSE with us once, or PEX flagged it as preferring encryption
  (BEP 11 flag ``0x01``): a later failed MSE dial is not retried in plaintext, which such
  a peer (libtorrent or Transmission with encryption forced) would refuse anyway;
* ``PLAINTEXT``: it did not speak MSE and the plaintext retry worked: dial it in
  plaintext from then on (one connection per attempt instead of two).

The torrent never sees any of this: :meth:`Connector.dial` and :meth:`Connector.accept`
return a :class:`~p2pshare.io.link.Link` like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from enum import Enum

from p2pshare.config import ConnectorConfig, EncryptionPolicy, MseConfig
from p2pshare.core.mse import MseError, req2, retry_plaintext
from p2pshare.core.types import PeerAddress
from p2pshare.io.link import Link
from p2pshare.io.mse_link import mse_accept, mse_initiate

__all__ = ["PEX_PREFERS_ENCRYPTION", "Connector", "EncryptionFailed", "Learned"]

log = logging.getLogger("p2pshare.connector")

#: BEP 11: the ``added.f`` flag of a peer that prefers encryption.
PEX_PREFERS_ENCRYPTION = 0x01

Opener = Callable[[], Awaitable[Link]]


class Learned(Enum):
    """What a peer showed us about encryption."""

    ENCRYPTED = "encrypted"  #: spoke MSE with us (or PEX says it prefers it): never fall back
    PLAINTEXT = "plaintext"  #: does not speak MSE: dial it in plaintext


class EncryptionFailed(ConnectionError):
    """An outgoing MSE handshake failed and the policy allows no plaintext retry (a dial failure)."""


class Connector:
    """Wraps dialed and accepted links in MSE/PE as the policy says; remembers what peers need."""

    def __init__(self, mse: MseConfig, config: ConnectorConfig | None = None) -> None:
        self.mse = mse
        self.config = config or ConnectorConfig()
        self._skeys: dict[bytes, bytes] = {}  #: req2(info hash) -> info hash, every torrent served
        self._learned: dict[PeerAddress, Learned] = {}
        self._executor: ThreadPoolExecutor | None = None
        self.pending_accepts = 0
        self.retried_plaintext = 0  #: outgoing MSE dials redone in plaintext (for tests and status)

    @property
    def policy(self) -> EncryptionPolicy:
        return self.mse.policy

    # -- torrents served ---------------------------------------------------------------

    def serve(self, info_hash: bytes) -> None:
        """Incoming MSE peers asking for ``info_hash`` (by SKEY) are matched from now on."""
        self._skeys[req2(info_hash)] = info_hash

    def withdraw(self, info_hash: bytes) -> None:
        self._skeys.pop(req2(info_hash), None)

    # -- what peers need ---------------------------------------------------------------

    def learned(self, address: PeerAddress) -> Learned | None:
        return self._learned.get(address)

    def remember(self, address: PeerAddress, learned: Learned) -> None:
        self._learned.pop(address, None)
        self._learned[address] = learned
        while len(self._learned) > self.config.max_remembered_peers:
            del self._learned[next(iter(self._learned))]

    def pex_flags(self, address: PeerAddress, flags: int) -> None:
        """PEX hook (BEP 11 ``added.f``): a peer flagged as preferring encryption is dialed with MSE only."""
        if flags & PEX_PREFERS_ENCRYPTION and address not in self._learned:
            self.remember(address, Learned.ENCRYPTED)

    # -- links -------------------------------------------------------------------------

    @property
    def executor(self) -> Executor | None:
        """The session's RC4 worker pool (None: RC4 runs inline on the loop)."""
        if self.config.crypto_workers <= 0:
            return None
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.config.crypto_workers, thread_name_prefix="p2pshare-rc4")
        return self._executor

    async def dial(self, address: PeerAddress, info_hash: bytes, open_link: Opener) -> Link:
        """Open a link to ``address`` for ``info_hash`` with ``open_link``, encrypted as the policy says.

        Raises OSError/TimeoutError when the peer cannot be reached, and
        :class:`EncryptionFailed` (an OSError) when MSE failed and no plaintext retry is allowed.
        """
        policy = self.policy
        learned = self._learned.get(address)
        plain_known = policy is EncryptionPolicy.PREFER and learned is Learned.PLAINTEXT
        if policy is EncryptionPolicy.OFF or plain_known:
            return await open_link()
        link = await open_link()
        try:
            wrapped = await mse_initiate(link, info_hash, policy, self.mse, executor=self.executor)
        except MseError as exc:
            if learned is Learned.ENCRYPTED or not retry_plaintext(exc, policy):
                raise EncryptionFailed(str(exc)) from exc
            log.debug("%s does not speak MSE (%s): dialing again in plaintext", address, exc.reason.value)
            plain = await open_link()
            self.retried_plaintext += 1
            self.remember(address, Learned.PLAINTEXT)
            return plain
        self.remember(address, Learned.ENCRYPTED)
        return wrapped

    def accepting(self) -> bool:
        """May one more incoming MSE handshake start (the cap on those in progress)?"""
        room = self.pending_accepts < self.config.max_pending_accepts
        return room and self.policy is not EncryptionPolicy.OFF

    async def accept(self, link: Link) -> tuple[Link, bytes | None]:
        """Run the receiver's side on an incoming ``link`` whose first bytes were not plain BitTorrent.

        Returns the link to use and the info hash the peer named by SKEY (None for a plain
        peer: its own handshake names the torrent).  Raises :class:`MseError`.
        """
        self.pending_accepts += 1
        try:
            return await mse_accept(link, self._skeys.get, self.policy, self.mse, executor=self.executor)
        finally:
            self.pending_accepts -= 1

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
