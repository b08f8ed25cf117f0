"""The sending half's book-keeping: packets sent and not yet acknowledged, in sequence order.

:class:`SentPackets` knows which packets are out, which are queued for resending,
and how many bytes are in flight (sent, unacknowledged, not given up as lost).  It
applies cumulative acks (``ack_nr``) and selective acks (the SACK bitmask) and says
which packets the SACK shows lost: those with at least ``dup_ack_limit`` later
packets acknowledged.  Policy (windows, timers, the congestion controller) stays in
:class:`~p2pshare.core.utp.connection.UtpConnection`.
"""

from __future__ import annotations

from p2pshare.core.utp.congestion import RttEstimator
from p2pshare.core.utp.packet import HEADER_SIZE, SEQ_MASK, PacketType, seq_diff

__all__ = ["OutPacket", "SentPackets"]


class OutPacket:
    """A packet we sent and the peer has not acknowledged yet."""

    __slots__ = ("kind", "lost", "need_resend", "payload", "sent_at", "seq", "size", "transmissions")

    def __init__(self, kind: PacketType, seq: int, payload: bytes) -> None:
        self.kind = kind
        self.seq = seq
        self.payload = payload
        self.size = len(payload) + HEADER_SIZE
        self.sent_at = 0.0
        self.transmissions = 0
        self.need_resend = False  #: queued for retransmission (not counted in flight)
        self.lost = False  #: declared lost once already (only the timer resends it again)


class SentPackets:
    """Unacknowledged packets by sequence number; see the module docstring."""

    __slots__ = ("inflight", "out", "resend", "seq_nr", "snd_una")

    def __init__(self, seq_nr: int) -> None:
        self.seq_nr = seq_nr  #: next sequence number to use
        self.snd_una = seq_nr  #: oldest unacknowledged sequence number
        self.out: dict[int, OutPacket] = {}
        self.resend: list[int] = []  #: sequence numbers to resend, oldest first
        self.inflight = 0  #: bytes sent, unacknowledged and not marked for resending

    def __len__(self) -> int:
        return len(self.out)

    def add(self, kind: PacketType, payload: bytes) -> OutPacket:
        """A new packet with the next sequence number (not sent yet)."""
        p = OutPacket(kind, self.seq_nr, payload)
        self.out[p.seq] = p
        self.seq_nr = (self.seq_nr + 1) & SEQ_MASK
        return p

    def transmitted(self, p: OutPacket, now: float) -> None:
        p.need_resend = False
        p.transmissions += 1
        p.sent_at = now
        self.inflight += p.size

    def _acked(self, p: OutPacket, now: float, rtt: RttEstimator) -> int:
        if not p.need_resend:
            self.inflight -= p.size
        if p.transmissions == 1:  # Karn: only packets sent once time the path
            rtt.sample(now - p.sent_at)
        return p.size

    def ack_through(self, ack: int, now: float, rtt: RttEstimator) -> int | None:
        """Apply a cumulative ack: bytes newly acknowledged, 0 for a duplicate, None if out of range."""
        d = seq_diff(ack, self.snd_una)
        if d < -1 or seq_diff(ack, self.seq_nr) >= 0:
            return None  # stale, or acknowledges what we never sent
        acked = 0
        out = self.out
        seq = self.snd_una
        for _ in range(d + 1):
            p = out.pop(seq, None)
            if p is not None:
                acked += self._acked(p, now, rtt)
            seq = (seq + 1) & SEQ_MASK
        self.snd_una = seq
        return acked

    def ack_selective(
        self, ack: int, sack: bytes, now: float, rtt: RttEstimator, dup_ack_limit: int
    ) -> tuple[int, list[int]]:
        """Apply a SACK bitmask: (bytes newly acknowledged, sequence numbers it shows lost)."""
        out = self.out
        base = (ack + 2) & SEQ_MASK
        bits = int.from_bytes(sack, "little")
        acked = 0
        offsets: list[int] = []
        while bits:
            low = bits & -bits
            off = low.bit_length() - 1
            bits ^= low
            offsets.append(off)
            p = out.pop((base + off) & SEQ_MASK, None)
            if p is not None:
                acked += self._acked(p, now, rtt)
        lost: list[int] = []
        if len(offsets) >= dup_ack_limit:
            threshold = offsets[len(offsets) - dup_ack_limit]
            for off in range(-1, threshold):
                seq = (base + off) & SEQ_MASK
                if seq in out:
                    lost.append(seq)
        return acked, lost

    def mark_lost(self, seq: int) -> bool:
        """Queue ``seq`` for a fast resend, once; False if it is not eligible."""
        p = self.out.get(seq)
        if p is None or p.lost or p.need_resend or p.transmissions == 0:
            return False
        p.lost = True
        p.need_resend = True
        self.inflight -= p.size
        self.resend.append(seq)
        return True

    def mark_all_for_resend(self) -> None:
        """A timeout: every packet out is to be sent again, oldest first; nothing is in flight."""
        resend = []
        seq = self.snd_una
        out = self.out
        while seq != self.seq_nr:
            p = out.get(seq)
            if p is not None:
                p.need_resend = True
                p.lost = False
                resend.append(seq)
            seq = (seq + 1) & SEQ_MASK
        self.resend = resend
        self.inflight = 0

    def clear(self) -> None:
        self.out.clear()
        self.resend.clear()
        self.inflight = 0
