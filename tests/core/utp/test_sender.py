"""The book of sent packets: cumulative and selective acks, loss by SACK, resend order across the wrap."""

from __future__ import annotations

from p2pshare.config import UtpConfig
from p2pshare.core.utp.congestion import RttEstimator
from p2pshare.core.utp.packet import HEADER_SIZE, PacketType
from p2pshare.core.utp.sender import SentPackets


def book(first: int, n: int) -> tuple[SentPackets, RttEstimator]:
    tx = SentPackets(first)
    for _ in range(n):
        tx.transmitted(tx.add(PacketType.DATA, bytes(100)), 0.0)
    return tx, RttEstimator(UtpConfig())


def test_cumulative_ack_frees_through_ack_nr_across_the_wrap() -> None:
    """ack_nr 0x0001 acknowledges 0xfffe, 0xffff, 0 and 1 and nothing after."""
    tx, rtt = book(0xFFFE, 6)
    assert tx.ack_through(0x0001, 0.1, rtt) == 4 * (100 + HEADER_SIZE)
    assert tx.snd_una == 2 and sorted(tx.out) == [2, 3]
    assert tx.inflight == 2 * (100 + HEADER_SIZE)
    assert rtt.samples == 4


def test_acks_outside_the_window_are_ignored() -> None:
    """An ack for a packet never sent, or far behind, changes nothing; a repeat is a duplicate (0)."""
    tx, rtt = book(10, 5)
    assert tx.ack_through(15, 0.1, rtt) is None
    assert tx.ack_through(3, 0.1, rtt) is None
    assert tx.ack_through(9, 0.1, rtt) == 0
    assert len(tx) == 5


def test_sack_acknowledges_and_shows_packets_lost_behind_three_later_ones() -> None:
    """With 11 missing and 12, 14, 15, 16 SACKed, 11 and 13 are lost (three later packets arrived)."""
    tx, rtt = book(10, 8)  # 10..17
    tx.ack_through(10, 0.1, rtt)
    bits = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4)  # bit i = ack_nr + 2 + i: 12, 14, 15, 16
    acked, lost = tx.ack_selective(10, bits.to_bytes(4, "little"), 0.1, rtt, dup_ack_limit=3)
    assert acked == 4 * (100 + HEADER_SIZE)
    assert sorted(tx.out) == [11, 13, 17]
    assert lost == [11, 13]


def test_a_packet_is_fast_resent_only_once() -> None:
    """mark_lost queues a packet once; the timer path re-arms it for another resend."""
    tx, _ = book(0, 3)
    assert tx.mark_lost(1) and not tx.mark_lost(1)
    assert tx.resend == [1] and tx.inflight == 2 * (100 + HEADER_SIZE)
    tx.transmitted(tx.out[1], 0.5)
    assert not tx.mark_lost(1)
    tx.mark_all_for_resend()
    assert tx.resend == [0, 1, 2] and tx.inflight == 0


def test_timeout_resends_in_sequence_order_across_the_wrap() -> None:
    """After a timeout the resend queue runs from the oldest packet, through 0xffff -> 0."""
    tx, _ = book(0xFFFD, 5)
    tx.mark_all_for_resend()
    assert tx.resend == [0xFFFD, 0xFFFE, 0xFFFF, 0, 1]
