"""The receiving half of a uTP connection: ack_nr, the reorder buffer, the FIN, the window.

Packets arrive by sequence number.  The next expected one (``ack_nr + 1``) is
delivered at once, followed by every buffered packet that now follows in order;
a later one waits in the reorder buffer and is reported back in the selective
ACK.  What the buffer may hold is bounded twice: ``max_reorder_packets`` ahead
of ``ack_nr`` and ``recv_buffer`` bytes (reorder buffer plus bytes held while
reading is paused).  A packet that does not fit is dropped (the sender resends
it once the window opens; a zero-window probe is such a packet); more than
``max_window_violations`` of them before reading resumes is a
:class:`~p2pshare.errors.RemoteProtocolError`.
"""

from __future__ import annotations

from p2pshare.config import UtpConfig
from p2pshare.core.utp.packet import SEQ_MASK, seq_diff
from p2pshare.errors import RemoteProtocolError

__all__ = ["Receiver", "RecvBudget"]


class RecvBudget:
    """Bytes held by all connections' receive buffers together, against ``max_total_recv_buffer``."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def free(self) -> int:
        return max(0, self.limit - self.used)

    def take(self, n: int) -> bool:
        if self.used + n > self.limit:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used -= n


class Receiver:
    """In-order delivery with a bounded reorder buffer; see the module docstring."""

    __slots__ = (
        "ack_nr",
        "budget",
        "config",
        "dropped",
        "eof",
        "eof_seq",
        "held",
        "held_bytes",
        "ooo",
        "ooo_bytes",
        "paused",
        "violations",
    )

    def __init__(self, config: UtpConfig, ack_nr: int, budget: RecvBudget | None = None) -> None:
        self.config = config
        self.budget = budget if budget is not None else RecvBudget(config.max_total_recv_buffer)
        self.ack_nr = ack_nr  #: last sequence number received in order
        self.ooo: dict[int, bytes] = {}
        self.ooo_bytes = 0
        self.held: list[bytes] = []  #: in-order bytes kept while reading is paused
        self.held_bytes = 0
        self.paused = False
        self.eof_seq: int | None = None  #: sequence number of the peer's FIN
        self.eof = False  #: every packet up to the FIN was delivered
        self.dropped = 0
        self.violations = 0  #: packets that did not fit, since reading last resumed

    @property
    def window(self) -> int:
        """Bytes we can still take (advertised as ``wnd_size``)."""
        free = min(self.config.recv_buffer - self.held_bytes - self.ooo_bytes, self.budget.free)
        return free if free > 0 else 0

    def receive(self, seq: int, payload: bytes | memoryview, is_fin: bool, out: list[bytes]) -> bool:
        """Take one DATA/FIN packet; append deliverable bytes to ``out``.  False for a duplicate."""
        d = seq_diff(seq, self.ack_nr)
        if d <= 0:
            return False
        eof_seq = self.eof_seq
        if eof_seq is not None and seq_diff(seq, eof_seq) > 0:
            self.dropped += 1  # data after the FIN
            return True
        if d > self.config.max_reorder_packets:
            self.dropped += 1
            return True
        if is_fin:
            if eof_seq is None:
                self.eof_seq = seq
            payload = b""
        size = len(payload)
        if d != 1:
            if seq in self.ooo:
                return False
            if size and self.held_bytes + self.ooo_bytes + size > self.config.recv_buffer:
                self._violation()
                return True
            if not self.budget.take(size):
                self.dropped += 1  # every connection together is at its limit: not this peer's fault
                return True
            self.ooo[seq] = bytes(payload)
            self.ooo_bytes += size
            return True
        if self.paused and size:
            if self.held_bytes + self.ooo_bytes + size > self.config.recv_buffer:
                self._violation()  # no room: dropped (a zero-window probe, or a peer ignoring the window)
                return True
            if not self.budget.take(size):
                self.dropped += 1
                return True
            self.budget.give(size)  # taken again by _deliver
        self._deliver(payload, out)
        ack = seq
        ooo = self.ooo
        if ooo:
            nxt = (ack + 1) & SEQ_MASK
            while nxt in ooo:
                data = ooo.pop(nxt)
                self.ooo_bytes -= len(data)
                self.budget.give(len(data))
                self._deliver(data, out)
                ack = nxt
                nxt = (ack + 1) & SEQ_MASK
        self.ack_nr = ack
        if self.eof_seq == ack:
            self.eof = True
            self.ooo.clear()
            self.budget.give(self.ooo_bytes)
            self.ooo_bytes = 0
        return True

    def _violation(self) -> None:
        self.dropped += 1
        self.violations += 1
        if self.violations > self.config.max_window_violations:
            raise RemoteProtocolError(
                f"uTP peer sent {self.violations} packets past our receive window of "
                f"{self.config.recv_buffer} bytes"
            )

    def _deliver(self, data: bytes | memoryview, out: list[bytes]) -> None:
        if not data:
            return
        if self.paused:
            self.budget.used += len(data)  # room was checked (or the bytes came out of the reorder buffer)
            self.held.append(bytes(data))
            self.held_bytes += len(data)
        else:
            out.append(bytes(data))

    def resume(self) -> list[bytes]:
        """Reading resumes: the held bytes, to deliver now."""
        self.paused = False
        self.violations = 0
        held, self.held = self.held, []
        self.budget.give(self.held_bytes)
        self.held_bytes = 0
        return held

    def release(self) -> None:
        """The connection is gone: drop its buffers and return their bytes to the budget."""
        self.budget.give(self.held_bytes + self.ooo_bytes)
        self.held.clear()
        self.ooo.clear()
        self.held_bytes = self.ooo_bytes = 0

    def sack(self) -> bytes | None:
        """The selective-ACK bitmask for the reorder buffer (None when it is empty)."""
        if not self.ooo:
            return None
        limit = self.config.max_sack_bytes * 8
        base = self.ack_nr + 2
        bits = 0
        for seq in self.ooo:
            off = (seq - base) & SEQ_MASK
            if off < limit:
                bits |= 1 << off
        if not bits:
            return None
        nbytes = ((bits.bit_length() + 31) // 32) * 4
        return bits.to_bytes(nbytes, "little")
