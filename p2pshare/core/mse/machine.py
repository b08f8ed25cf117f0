"""What both MSE handshake machines share: buffers, events, the deadline, the steps loop.

Theory of operation
===================

A machine is fed the peer's bytes with :meth:`receive_data` (``b""`` = end of
stream), hands back what to write with :meth:`data_to_send`, and reports with
:meth:`next_event`: exactly one final event, :class:`HandshakeDone`,
:class:`PlaintextStream` (receiver only) or :class:`Failed`.  It never raises for
anything the peer sends; every length the peer controls is checked against
:class:`~p2pshare.config.MseConfig` before a byte is waited for.

The protocol is a fixed list of steps.  Each subclass keeps ``self._step``, a method
that looks at the buffered bytes and either returns False (wait for more) or consumes
what it needs, moves ``self._step`` on and returns True.  :meth:`_advance` runs steps
until one waits or the machine finishes.  So every transition lives in the step
methods of one class, in protocol order.

After :class:`HandshakeDone` with RC4, :attr:`cipher` holds both directions'
keystreams, positioned where the payload starts; with plaintext it stays None.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable

from p2pshare.config import MseConfig
from p2pshare.core.mse.crypto import StreamCipher, private_key_from, public_key
from p2pshare.core.mse.events import Event, Failed, FailureReason, HandshakeDone, Method, PlaintextStream
from p2pshare.errors import LocalProtocolError

__all__ = ["MseMachine", "RandomBytes"]

#: Source of randomness (keys, pad lengths, pads); tests pass a seeded one.
RandomBytes = Callable[[int], bytes]

Step = Callable[[], bool]


class MseMachine:
    """Shared core of :class:`~p2pshare.core.mse.initiator.Initiator` and ``Receiver``."""

    def __init__(self, config: MseConfig, now: float, random_bytes: RandomBytes | None) -> None:
        self._cfg = config
        self._random: RandomBytes = random_bytes or secrets.token_bytes
        self._buf = bytearray()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._deadline: float | None = now + config.handshake_timeout
        self._finished = False
        self._private = private_key_from(self._random(20))
        self._public = public_key(self._private)
        self._step: Step = self._no_step
        self.cipher: StreamCipher | None = None
        self.method: Method | None = None
        self.info_hash: bytes | None = None

    # -- the verbs ------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed the stream."""
        if self._finished:
            raise LocalProtocolError("the MSE handshake is over: use .cipher for the payload stream")
        if not data:
            self._fail(FailureReason.CLOSED, f"stream closed after {len(self._buf)} unread bytes")
            return
        self._buf += data
        self._advance()

    def data_to_send(self) -> bytes:
        """Bytes to write to the peer now (empty when there are none)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | None:
        """The next event, or None while the handshake waits for bytes."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event]:
        """Every pending event, in order."""
        out = list(self._events)
        self._events.clear()
        return out

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must be called (None once finished)."""
        return self._deadline

    def handle_timer(self, now: float) -> None:
        if self._deadline is not None and now >= self._deadline:
            self._fail(FailureReason.TIMEOUT, f"no complete handshake within {self._cfg.handshake_timeout}s")

    @property
    def finished(self) -> bool:
        return self._finished

    # -- for subclasses ---------------------------------------------------------------

    def _no_step(self) -> bool:
        return False

    def _advance(self) -> None:
        while not self._finished and self._step():
            pass

    def _pad(self) -> bytes:
        """A random pad of 0..send_pad_max bytes (the spec allows at most 512)."""
        limit = min(self._cfg.send_pad_max, 512)
        n = int.from_bytes(self._random(2), "big") % (limit + 1)
        return self._random(n)

    def _take(self, n: int) -> bytes:
        chunk = bytes(self._buf[:n])
        del self._buf[:n]
        return chunk

    def _find_marker(self, marker: bytes) -> int | None:
        """Offset of ``marker`` within the sync window, None to wait; fails past the window."""
        window = self._cfg.sync_window + len(marker)
        at = self._buf.find(marker, 0, window)
        if at >= 0:
            return at
        if len(self._buf) >= window:
            detail = f"no sync marker within {self._cfg.sync_window} bytes of padding"
            self._fail(FailureReason.NO_SYNC, detail)
        return None

    def _fail(self, reason: FailureReason, detail: str) -> None:
        if self._finished:
            return
        self._finish(Failed(reason, detail))

    def _done(self, method: Method, info_hash: bytes, cipher: StreamCipher | None, ia: bytes = b"") -> None:
        """Finish: the rest of the buffer is payload, decrypted with the chosen method."""
        rest = bytes(self._buf)
        self._buf.clear()
        if cipher is not None and rest:
            rest = cipher.decrypt(rest)
        self.cipher = cipher
        self.method = method
        self.info_hash = info_hash
        self._finish(HandshakeDone(method, info_hash, ia + rest))

    def _plaintext(self) -> None:
        data = bytes(self._buf)
        self._buf.clear()
        self._finish(PlaintextStream(data))

    def _finish(self, event: Event) -> None:
        self._finished = True
        self._deadline = None
        self._step = self._no_step
        self._events.append(event)
