"""RTT/timeout as BEP 29 gives them, and LEDBAT's window against delay, loss and timeouts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from p2pshare.config import UtpConfig
from p2pshare.core.utp.congestion import BaseDelay, Ledbat, RttEstimator

CFG = UtpConfig()
MSS = 1000


def test_rtt_follows_the_bep29_filter() -> None:
    """After a first sample, rtt moves by 1/8 of the error and rtt_var by 1/4, as BEP 29 says."""
    est = RttEstimator(CFG)
    est.sample(0.100)
    assert est.rtt == pytest.approx(0.100) and est.rtt_var == pytest.approx(0.050)
    est.sample(0.200)
    assert est.rtt_var == pytest.approx(0.050 + (0.100 - 0.050) / 4)
    assert est.rtt == pytest.approx(0.100 + 0.100 / 8)
    assert est.rto == pytest.approx(max(est.rtt + 4 * est.rtt_var, 0.5))


def test_timeout_is_never_below_half_a_second_and_doubles_on_expiry() -> None:
    """A 1 ms path still waits 500 ms; each expiry doubles it until an ack, capped at max_rto."""
    est = RttEstimator(CFG)
    assert est.rto == CFG.initial_rto
    for _ in range(5):
        est.sample(0.001)
    assert est.rto == CFG.min_rto
    est.on_timeout()
    est.on_timeout()
    assert est.rto == 4 * CFG.min_rto
    for _ in range(20):
        est.on_timeout()
    assert est.rto == CFG.max_rto
    est.on_ack()
    assert est.rto == CFG.min_rto


def test_base_delay_is_the_minimum_and_survives_clock_wrap() -> None:
    """Queuing delay is measured from the smallest sample, across the 2**32 wrap of the clock."""
    base = BaseDelay(CFG)
    assert base.add(0xFFFFFF00, 0.0) == 0
    assert base.add(0x00000100, 1.0) == 0x200  # wrapped: 512 us later than the base
    assert base.add(0xFFFFFE00, 2.0) == 0  # a new, smaller base
    assert base.add(0xFFFFFF00, 3.0) == 0x100


def test_base_delay_forgets_minimums_older_than_its_history() -> None:
    """After the history window passes, an old (lower) base no longer counts."""
    cfg = replace(CFG, base_delay_interval=10.0, base_delay_history=2)
    base = BaseDelay(cfg)
    base.add(1000, 0.0)
    for t in range(1, 40):
        last = base.add(5000, float(t))
    assert last == 0


def ack_rounds(cc: Ledbat, delay_us: int, rounds: int) -> None:
    """Acknowledge one window's worth of bytes per round at the given queuing delay."""
    cc.on_ack(1, 10_000, 0.0)  # sets the base delay
    for r in range(rounds):
        cc.on_ack(int(cc.cwnd), 10_000 + delay_us, 1.0 + r * 0.01)


def test_window_grows_while_the_delay_is_below_target() -> None:
    """With no queuing delay the window grows, by about gain packets per round trip after slow start."""
    cc = Ledbat(replace(CFG, slow_start=False), MSS)
    start = cc.cwnd
    ack_rounds(cc, 0, 10)
    assert cc.cwnd == pytest.approx(start + 10 * CFG.gain_packets * MSS, rel=0.05)


def test_window_shrinks_when_the_delay_passes_the_target() -> None:
    """Queuing delay of twice the target shrinks the window round after round, down to the floor."""
    cc = Ledbat(replace(CFG, slow_start=False), MSS)
    cc.cwnd = 50.0 * MSS
    ack_rounds(cc, 200_000, 5)
    assert cc.cwnd < 50 * MSS - 4 * MSS
    ack_rounds(cc, 200_000, 200)
    assert cc.cwnd == CFG.min_cwnd_packets * MSS


def test_slow_start_ends_when_delay_builds_up() -> None:
    """Slow start doubles per round while the queue is short and stops once delay reaches half the target."""
    cc = Ledbat(CFG, MSS)
    start = cc.cwnd
    ack_rounds(cc, 0, 3)
    assert cc.cwnd == 8 * (start + 1) and cc.slow_start  # +1: the byte that set the base
    ack_rounds(cc, 60_000, 1)
    assert not cc.slow_start


def test_loss_cuts_the_window_once_per_window() -> None:
    """Losses of packets sent before the last cut do not cut again; a later one does."""
    cc = Ledbat(CFG, MSS)
    cc.cwnd = 64.0 * MSS
    assert cc.on_loss(lost_seq=10, next_seq=40)
    assert cc.cwnd == 32 * MSS
    assert not cc.on_loss(lost_seq=20, next_seq=45)
    assert cc.cwnd == 32 * MSS
    assert cc.on_loss(lost_seq=41, next_seq=60)
    assert cc.cwnd == 16 * MSS


def test_timeout_drops_the_window_to_one_packet() -> None:
    """A retransmission timeout leaves one packet of window and slow start back to half the old one."""
    cc = Ledbat(CFG, MSS)
    cc.cwnd = 40.0 * MSS
    cc.on_timeout()
    assert cc.cwnd == MSS and cc.ssthresh == 20 * MSS
