"""Round-trip time, retransmission timeout and LEDBAT congestion control (BEP 29).

RTT and timeout, as BEP 29 gives them (on packets sent once only, Karn's rule)::

    delta    = rtt - packet_rtt
    rtt_var += (|delta| - rtt_var) / 4
    rtt     += (packet_rtt - rtt) / 8
    timeout  = max(rtt + rtt_var * 4, 500 ms)

Each timeout doubles the timeout (up to ``max_rto``) until an ack arrives.

LEDBAT: the receiver echoes, in ``timestamp_difference``, how long our packet
took by its clock minus ours.  The clocks are not synchronised, so only the
difference to the smallest such value seen over the last two minutes (the *base
delay*) counts: that is the queuing delay we cause.  Per acknowledged byte::

    off_target = (target - queuing_delay) / target          (<= 1)
    cwnd      += gain * mss * off_target * bytes_acked / cwnd

so the window grows by at most ``gain`` packets per round trip while the queue
is short, and shrinks when the delay is past the target.  A loss multiplies the
window by ``loss_multiplier`` (once per window of packets); a timeout drops it
to one packet.  Before the first loss or delay signal, slow start grows the
window by the bytes acknowledged.  The window is always bounded by what the
peer advertises (``wnd_size``); on loopback the base delay is near zero and the
queue stays far below 100 ms, so the window is bounded only by the peer.
"""

from __future__ import annotations

from collections import deque

from p2pshare.config import UtpConfig
from p2pshare.core.utp.packet import seq_less

__all__ = ["BaseDelay", "Ledbat", "RttEstimator"]

U32 = 0xFFFFFFFF
HALF_U32 = 0x80000000


class RttEstimator:
    """Smoothed RTT, its variance and the retransmission timeout, in seconds."""

    __slots__ = ("backoff", "config", "rtt", "rtt_var", "samples")

    def __init__(self, config: UtpConfig) -> None:
        self.config = config
        self.rtt = 0.0
        self.rtt_var = 0.0
        self.samples = 0
        self.backoff = 1  #: doubles with every timeout, reset by an ack

    def sample(self, packet_rtt: float) -> None:
        """Fold in the round trip of a packet that was sent exactly once."""
        if self.samples == 0:
            self.rtt = packet_rtt
            self.rtt_var = packet_rtt / 2
        else:
            delta = self.rtt - packet_rtt
            self.rtt_var += (abs(delta) - self.rtt_var) / 4
            self.rtt += (packet_rtt - self.rtt) / 8
        self.samples += 1

    @property
    def rto(self) -> float:
        cfg = self.config
        base = cfg.initial_rto if self.samples == 0 else max(self.rtt + 4 * self.rtt_var, cfg.min_rto)
        return min(base * self.backoff, cfg.max_rto)

    def on_timeout(self) -> None:
        if self.rto < self.config.max_rto:
            self.backoff *= 2

    def on_ack(self) -> None:
        self.backoff = 1


class BaseDelay:
    """The smallest delay sample of the last ``history`` intervals, on the u32 clock circle."""

    __slots__ = ("_current", "_current_start", "_history", "config")

    def __init__(self, config: UtpConfig) -> None:
        self.config = config
        self._history: deque[int] = deque(maxlen=max(1, config.base_delay_history))
        self._current: int | None = None
        self._current_start = 0.0

    @staticmethod
    def _less(a: int, b: int) -> bool:
        return a != b and ((b - a) & U32) < HALF_U32

    def add(self, sample: int, now: float) -> int:
        """Record ``sample``; return the queuing delay it shows, in microseconds (>= 0)."""
        if self._current is None:
            self._current = sample
            self._current_start = now
        elif now - self._current_start >= self.config.base_delay_interval:
            self._history.append(self._current)
            self._current = sample
            self._current_start = now
        elif self._less(sample, self._current):
            self._current = sample
        base = self._current
        for value in self._history:
            if self._less(value, base):
                base = value
        delay = (sample - base) & U32
        return 0 if delay >= HALF_U32 else delay


class Ledbat:
    """The congestion window in bytes, driven by acks, delay samples, losses and timeouts."""

    __slots__ = (
        "base",
        "config",
        "cwnd",
        "last_delay",
        "loss_seq",
        "mss",
        "slow_start",
        "ssthresh",
    )

    def __init__(self, config: UtpConfig, mss: int) -> None:
        self.config = config
        self.mss = mss
        self.cwnd = float(config.initial_cwnd_packets * mss)
        self.ssthresh = float("inf")
        self.slow_start = config.slow_start
        self.base = BaseDelay(config)
        self.last_delay = 0  #: last queuing delay seen, microseconds
        self.loss_seq: int | None = None  #: no further cut until packets after this one are acked

    def set_mss(self, mss: int) -> None:
        """The packet size changed (path probe): keep the window in packets."""
        if mss != self.mss:
            self.cwnd = self.cwnd * mss / self.mss
            self.mss = mss

    def on_ack(self, bytes_acked: int, delay_sample: int | None, now: float) -> None:
        """``bytes_acked`` newly acknowledged; ``delay_sample`` is the peer's timestamp_difference."""
        if bytes_acked <= 0:
            return
        cfg = self.config
        target_us = cfg.target_delay * 1e6
        if delay_sample is not None:
            self.last_delay = self.base.add(delay_sample, now)
        off_target = (target_us - self.last_delay) / target_us
        if off_target > 1.0:
            off_target = 1.0
        if self.slow_start:
            if self.last_delay > target_us / 2 or self.cwnd >= self.ssthresh:
                self.slow_start = False
            else:
                self.cwnd += bytes_acked
                return
        self.cwnd += cfg.gain_packets * self.mss * off_target * bytes_acked / self.cwnd
        floor = cfg.min_cwnd_packets * self.mss
        if self.cwnd < floor:
            self.cwnd = float(floor)

    def on_loss(self, lost_seq: int, next_seq: int) -> bool:
        """Packet ``lost_seq`` was lost; cut the window once per window of data.  True if cut.

        Losses of packets sent before the last cut (``next_seq`` at that time) belong to
        the congestion event already answered.
        """
        if self.loss_seq is not None and seq_less(lost_seq, self.loss_seq):
            return False
        self.slow_start = False
        floor = float(self.config.min_cwnd_packets * self.mss)
        self.cwnd = max(self.cwnd * self.config.loss_multiplier, floor)
        self.ssthresh = self.cwnd
        self.loss_seq = next_seq
        return True

    def on_timeout(self) -> None:
        self.slow_start = False
        self.ssthresh = max(self.cwnd / 2, float(self.config.min_cwnd_packets * self.mss))
        self.cwnd = float(self.mss)
