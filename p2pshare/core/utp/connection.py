"""One uTP connection: the state machine, the send side, timers.  Theory of operation:

States (every transition is in this module)::

    connect() --> SYN_SENT --STATE acking the SYN--> CONNECTED
    SYN arrives --> SYN_RECV --any later packet--> CONNECTED
    CONNECTED --close(): queue drained, FIN sent--> (fin_sent) --FIN acked + peer FIN or linger--> CLOSED
    CONNECTED --peer FIN delivered in order--> Closed(EOF) reported, our FIN follows
    any --RESET / too many timeouts / idle / protocol breach / abort()--> CLOSED

Connection ids: the initiator picks ``recv_id`` and sends with ``send_id = recv_id + 1``;
its SYN carries ``recv_id``.  The acceptor swaps them.  DATA, FIN and SYN consume a
sequence number; STATE carries the next one without consuming it.

Sending: bytes given to ``send`` wait in ``sendbuf`` until the window allows a packet:
``inflight + size <= min(cwnd, peer wnd_size)``.  Every sent packet is kept until it is
acknowledged, cumulatively (``ack_nr``) or selectively (SACK).  A packet is lost when
``dup_ack_limit`` later packets were SACKed, or ``dup_ack_limit`` duplicate acks arrived;
it is resent at once (fast retransmit) and the window is cut once per window.  The
retransmission timer covers the oldest unacknowledged packet; when it fires every
packet in flight is marked for resending, the window drops to one packet and the timeout
doubles.

Packet size: ``packet_size`` (header included) by default.  To a destination inside
``large_packet_networks`` (loopback) the first full packet is padded to
``large_packet_size`` with padding extensions (which every receiver skips); once the
peer acknowledges it, every packet is that size.  If it is lost, it is resent as it
is without the padding (same payload, so nothing can be delivered twice) and the
connection stays at the small size.
"""

from __future__ import annotations

from enum import Enum

from p2pshare.config import UtpConfig
from p2pshare.core.utp.congestion import Ledbat, RttEstimator
from p2pshare.core.utp.events import Addr, Closed, CloseReason, Connected, DataReceived, UtpEvent
from p2pshare.core.utp.packet import (
    EXT_PADDING,
    EXT_SACK,
    HEADER_SIZE,
    SEQ_MASK,
    U32,
    Packet,
    PacketType,
    encode_header,
    encode_with_extensions,
)
from p2pshare.core.utp.receiver import Receiver, RecvBudget
from p2pshare.core.utp.sender import OutPacket, SentPackets
from p2pshare.errors import RemoteProtocolError

__all__ = ["ConnState", "UtpConnection"]

_DATA = PacketType.DATA
_FIN = PacketType.FIN
_STATE = PacketType.STATE
_RESET = PacketType.RESET
_SYN = PacketType.SYN


class ConnState(Enum):
    SYN_SENT = "syn_sent"
    SYN_RECV = "syn_recv"
    CONNECTED = "connected"
    CLOSED = "closed"


class UtpConnection:
    """See the module docstring; driven by :class:`~p2pshare.core.utp.manager.UtpManager`."""

    def __init__(
        self,
        handle: int,
        addr: Addr,
        config: UtpConfig,
        events: list[UtpEvent],
        *,
        recv_id: int,
        send_id: int,
        seq_nr: int,
        ack_nr: int,
        state: ConnState,
        large_packets: bool,
        now: float,
        budget: RecvBudget | None = None,
    ) -> None:
        self.handle = handle
        self.addr = addr
        self.config = config
        self.events = events
        self.recv_id = recv_id
        self.send_id = send_id
        self.state = state
        self.sack_room = 2 + config.max_sack_bytes
        self.mss = max(64, config.packet_size - HEADER_SIZE - self.sack_room)
        large = config.large_packet_size - HEADER_SIZE - self.sack_room
        self.probe_size = large if large_packets and large > self.mss else 0
        self.probe_seq: int | None = None
        self.rtt = RttEstimator(config)
        self.cc = Ledbat(config, self.mss)
        self.rx = Receiver(config, ack_nr, budget)
        self.tx = SentPackets(seq_nr)
        self.sendbuf = bytearray()
        self.peer_wnd = config.packet_size * config.initial_cwnd_packets
        self.peer_wnd_max = self.peer_wnd
        self.reply_micro = 0  #: timestamp_difference to echo: our clock minus the peer's
        self.need_ack = state is ConnState.SYN_RECV
        self.unacked_data = 0  #: in-order DATA packets received since our last packet
        self.ack_due: float | None = None  #: delayed ack deadline
        self.dup_acks = 0
        self.timeouts = 0  #: consecutive timeouts without progress
        self.rto_start = now
        self.created = now
        self.last_recv = now
        self.last_send = now
        self.want_close = False
        self.fin_sent = False
        self.closed_reported = False
        self.close_deadline: float | None = None
        self.dead = False  #: the manager forgets the connection
        self.half_open = state is ConnState.SYN_RECV
        self.pending_reset = False
        self.window_probe = False
        #: counters for status and benchmarks
        self.counters = {"timeouts": 0, "fast_resends": 0, "packets_sent": 0, "packets_received": 0}
        if state is ConnState.SYN_SENT:
            syn = self.tx.add(_SYN, b"")
            syn.need_resend = True
            self.tx.resend.append(syn.seq)

    # -- the user's side -------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview) -> None:
        if self.state is not ConnState.CLOSED and not self.want_close:
            self.sendbuf += data

    @property
    def buffered(self) -> int:
        """Bytes given to ``send`` that are not in a packet yet."""
        return len(self.sendbuf)

    def close(self, now: float) -> None:
        """Send what is queued, then a FIN; the connection lingers until the FIN exchange ends."""
        if self.state is ConnState.CLOSED or self.want_close:
            return
        self.want_close = True
        self.close_deadline = now + self.config.fin_linger
        if self.state is ConnState.SYN_SENT:
            self._finish(CloseReason.LOCAL)

    def abort(self) -> None:
        """Drop everything and tell the peer with a RESET."""
        if self.state is not ConnState.CLOSED and self.state is not ConnState.SYN_SENT:
            self.pending_reset = True
        self._finish(CloseReason.LOCAL)

    def pause_reading(self) -> None:
        self.rx.paused = True

    def resume_reading(self) -> None:
        if not self.rx.paused:
            return
        was_small = self.rx.window < self.mss
        for data in self.rx.resume():
            self.events.append(DataReceived(self.handle, data))
        if was_small and self.state is not ConnState.CLOSED:
            self.need_ack = True  # window update
        self._check_eof()

    # -- packets in ------------------------------------------------------------------

    def receive(self, pkt: Packet, now: float) -> None:
        """Process one packet addressed to this connection."""
        if self.state is ConnState.CLOSED:
            return
        kind = pkt.type
        if kind is _RESET:
            self._finish(CloseReason.RESET)
            return
        self.last_recv = now
        self.counters["packets_received"] += 1
        self.reply_micro = (int(now * 1e6) - pkt.timestamp) & U32
        if kind is _SYN:
            self.need_ack = True  # our answer to its SYN was lost
            return
        if self.state is ConnState.SYN_SENT:
            if kind is not _STATE or pkt.ack_nr != self.tx.snd_una:
                return
            self.rx.ack_nr = (pkt.seq_nr - 1) & SEQ_MASK
            self.state = ConnState.CONNECTED
            self.events.append(Connected(self.handle, self.addr))
        elif self.state is ConnState.SYN_RECV:
            self.state = ConnState.CONNECTED
            self.half_open = False
        self.peer_wnd = pkt.wnd_size
        if pkt.wnd_size > self.peer_wnd_max:
            self.peer_wnd_max = pkt.wnd_size
        self._process_ack(pkt, now)
        if kind is _DATA or kind is _FIN:
            delivered: list[bytes] = []
            rx = self.rx
            before = rx.ack_nr
            try:
                rx.receive(pkt.seq_nr, pkt.payload, kind is _FIN, delivered)
            except RemoteProtocolError as exc:
                self.pending_reset = True
                self._finish(CloseReason.PROTOCOL_ERROR, str(exc))
                return
            self._ack_policy(kind is _DATA and rx.ack_nr == (before + 1) & SEQ_MASK and not rx.ooo, now)
            if not self.closed_reported:
                for data in delivered:
                    self.events.append(DataReceived(self.handle, data))
            self._check_eof()
        if self.fin_sent and self.rx.eof and self.tx.snd_una == self.tx.seq_nr:
            self._finish(CloseReason.LOCAL)

    def _ack_policy(self, plain_in_order: bool, now: float) -> None:
        """Acknowledge at once, or (plain in-order data) every ``ack_every_packets`` / ``delayed_ack``."""
        if not plain_in_order or self.rx.paused:
            self.need_ack = True
            return
        self.unacked_data += 1
        if self.unacked_data >= self.config.ack_every_packets:
            self.need_ack = True
        elif self.ack_due is None:
            self.ack_due = now + self.config.delayed_ack

    def _check_eof(self) -> None:
        if self.rx.eof and not self.rx.paused and not self.closed_reported and not self.want_close:
            self.closed_reported = True
            self.events.append(Closed(self.handle, CloseReason.EOF))
            self.want_close = True  # answer with our FIN once our queue is out
            if self.close_deadline is None:
                self.close_deadline = self.last_recv + self.config.fin_linger

    def _process_ack(self, pkt: Packet, now: float) -> None:
        tx = self.tx
        if not tx.out:
            return
        acked = tx.ack_through(pkt.ack_nr, now, self.rtt)
        if acked is None:
            return
        if acked:
            self.dup_acks = 0
            self.timeouts = 0
            self.rtt.on_ack()
            self.rto_start = now
        elif pkt.type is _STATE and pkt.sack is None and not pkt.payload and tx.out:
            self.dup_acks += 1
            if self.dup_acks == self.config.dup_ack_limit:
                self._declare_lost(tx.snd_una)
        if pkt.sack is not None:
            more, lost = tx.ack_selective(pkt.ack_nr, pkt.sack, now, self.rtt, self.config.dup_ack_limit)
            acked += more
            for seq in lost:
                self._declare_lost(seq)
        if self.probe_seq is not None and self.probe_seq not in tx.out:
            self.probe_seq = None
            self.mss = self.probe_size
            self.cc.set_mss(self.mss)
            self.probe_size = 0
        if acked:
            cc = self.cc
            cc.on_ack(acked, pkt.timestamp_diff or None, now)
            if cc.cwnd > self.peer_wnd_max:  # no credit beyond what the peer ever offered
                cc.cwnd = float(max(self.peer_wnd_max, cc.mss))

    def _declare_lost(self, seq: int) -> None:
        if seq == self.probe_seq and seq in self.tx.out:
            self._probe_failed()
        if self.tx.mark_lost(seq):
            self.counters["fast_resends"] += 1
            self.cc.on_loss(seq, self.tx.seq_nr)

    # -- packets out -----------------------------------------------------------------

    def packets_to_send(self, now: float) -> list[bytearray]:
        """Every datagram the windows allow now (retransmissions first, then new data, then acks)."""
        if self.pending_reset:
            self.pending_reset = False
            return [self._build(_RESET, self.tx.seq_nr, b"", now)]
        if self.state is ConnState.CLOSED:
            return []
        out: list[bytearray] = []
        window = min(int(self.cc.cwnd), self.peer_wnd)
        if self.tx.resend:
            self._resend(out, window, now)
        if self.state is not ConnState.SYN_SENT and not self.tx.resend:
            self._send_new(out, window, now)  # the acceptor may send before the peer's first data
        if self.need_ack and not out and self.state is not ConnState.SYN_SENT:
            out.append(self._build(_STATE, self.tx.seq_nr, b"", now))
        if out:
            self.counters["packets_sent"] += len(out)
            self.need_ack = False
            self.unacked_data = 0
            self.ack_due = None
            self.last_send = now
        return out

    def _resend(self, out: list[bytearray], window: int, now: float) -> None:
        tx = self.tx
        queue = tx.resend
        i = 0
        while i < len(queue):
            p = tx.out.get(queue[i])
            if p is None or not p.need_resend:
                i += 1
                continue
            if tx.inflight and tx.inflight + p.size > window:
                break
            self._transmit(p, out, now)
            i += 1
        del queue[:i]

    def _send_new(self, out: list[bytearray], window: int, now: float) -> None:
        buf = self.sendbuf
        tx = self.tx
        limit = self.config.max_inflight_packets
        while buf:
            n = min(self.mss, len(buf))
            if tx.inflight + n + HEADER_SIZE > window:
                if tx.inflight:
                    break
                if self.peer_wnd < n + HEADER_SIZE:  # nothing in flight, the peer has no room
                    if not self.window_probe:
                        break
                    self.window_probe = False  # one packet per timeout probes the window
            if len(tx) >= limit:
                break
            p = tx.add(_DATA, bytes(buf[:n]))
            del buf[:n]
            if self.probe_size and self.probe_seq is None and n == self.mss:
                self.probe_seq = p.seq
                out.append(self._build(_DATA, p.seq, p.payload, now, pad_to=self.probe_size))
                self._transmit(p, None, now)
                continue
            self._transmit(p, out, now)
        if self.want_close and not buf and not self.fin_sent and len(tx) < limit:
            fin = tx.add(_FIN, b"")
            self.fin_sent = True
            self._transmit(fin, out, now)

    def _transmit(self, p: OutPacket, out: list[bytearray] | None, now: float) -> None:
        if not self.tx.inflight:
            self.rto_start = now
        self.tx.transmitted(p, now)
        if out is not None:
            out.append(self._build(p.kind, p.seq, p.payload, now))

    def _build(self, kind: PacketType, seq: int, payload: bytes, now: float, pad_to: int = 0) -> bytearray:
        sack = self.rx.sack() if kind is not _SYN else None
        hlen = HEADER_SIZE + (2 + len(sack) if sack else 0)
        if pad_to:
            return self._build_padded(kind, seq, payload, now, sack, pad_to)
        buf = bytearray(hlen + len(payload))
        encode_header(
            buf,
            kind,
            self.recv_id if kind is _SYN else self.send_id,
            int(now * 1e6),
            self.reply_micro,
            self.rx.window,
            seq,
            self.rx.ack_nr,
            sack,
        )
        if payload:
            buf[hlen:] = payload
        return buf

    def _build_padded(
        self, kind: PacketType, seq: int, payload: bytes, now: float, sack: bytes | None, pad_to: int
    ) -> bytearray:
        """A packet grown to ``pad_to`` payload bytes by padding extensions (the path probe)."""
        exts = [(EXT_SACK, sack)] if sack else []
        room = pad_to - len(payload) - sum(2 + len(e[1]) for e in exts)
        while room >= 2 + 1:
            n = min(255, room - 2)
            exts.append((EXT_PADDING, bytes(n)))
            room -= 2 + n
        return encode_with_extensions(
            kind,
            self.send_id,
            int(now * 1e6),
            self.reply_micro,
            self.rx.window,
            seq,
            self.rx.ack_nr,
            exts,
            payload,
        )

    # -- timers ----------------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.dead:
            return None
        cfg = self.config
        when = self.last_recv + cfg.idle_timeout
        if self.state is ConnState.CLOSED:
            return None
        if self.tx.inflight or self.tx.resend or self._window_shut():
            when = min(when, self.rto_start + self.rtt.rto)
        if self.state is ConnState.SYN_RECV:
            when = min(when, self.created + cfg.syn_recv_timeout)
        if self.state is ConnState.CONNECTED:
            when = min(when, self.last_send + cfg.keepalive_interval)
        if self.close_deadline is not None:
            when = min(when, self.close_deadline)
        if self.ack_due is not None:
            when = min(when, self.ack_due)
        return when

    def handle_timer(self, now: float) -> None:
        if self.state is ConnState.CLOSED:
            return
        cfg = self.config
        if self.close_deadline is not None and now >= self.close_deadline:
            self._finish(CloseReason.LOCAL)
            return
        if now >= self.last_recv + cfg.idle_timeout:
            self._finish(CloseReason.TIMEOUT, f"nothing received for {cfg.idle_timeout:.0f} s")
            return
        if self.state is ConnState.SYN_RECV and now >= self.created + cfg.syn_recv_timeout:
            self._finish(CloseReason.TIMEOUT, "half-open connection expired")
            return
        if (self.tx.inflight or self.tx.resend) and now >= self.rto_start + self.rtt.rto:
            self._on_timeout(now)
        elif self._window_shut() and now >= self.rto_start + self.rtt.rto:
            self.window_probe = True  # one packet may go out to learn the window (see _send_new)
            self.rto_start = now
        if self.state is ConnState.CONNECTED and now >= self.last_send + cfg.keepalive_interval:
            self.need_ack = True
        if self.ack_due is not None and now >= self.ack_due:
            self.need_ack = True

    def _window_shut(self) -> bool:
        """Data waits, nothing is in flight, and the peer has no room for the next packet."""
        buf = self.sendbuf
        return bool(buf) and self.peer_wnd < min(len(buf), self.mss) + HEADER_SIZE

    def _on_timeout(self, now: float) -> None:
        cfg = self.config
        self.timeouts += 1
        limit = cfg.syn_retransmits if self.state is ConnState.SYN_SENT else cfg.max_retransmits
        if self.timeouts > limit:
            if self.state is ConnState.SYN_SENT:
                self._finish(CloseReason.REFUSED, f"no answer to {limit + 1} SYNs")
            else:
                self.pending_reset = True
                self._finish(CloseReason.TIMEOUT, f"{limit} retransmission timeouts in a row")
            return
        self.counters["timeouts"] += 1
        self.rtt.on_timeout()
        self.cc.on_timeout()
        if self.probe_seq is not None:
            self._probe_failed()
        self.tx.mark_all_for_resend()
        self.dup_acks = 0
        self.rto_start = now

    def _probe_failed(self) -> None:
        """The padded packet was lost: stay at the small size (it is resent unpadded)."""
        self.probe_seq = None
        self.probe_size = 0

    def _finish(self, reason: CloseReason, detail: str = "") -> None:
        if self.state is ConnState.CLOSED:
            return
        self.state = ConnState.CLOSED
        self.dead = True
        self.half_open = False
        self.sendbuf.clear()
        self.tx.clear()
        self.rx.release()
        if not self.closed_reported:
            self.closed_reported = True
            self.events.append(Closed(self.handle, reason, detail))
