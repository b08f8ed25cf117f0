"""Two uTP machines on a virtual clock: handshake, delivery under loss/reorder/duplication, close, timers."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.config import UtpConfig
from p2pshare.core.utp import Closed, CloseReason, DataReceived, PacketType, decode
from p2pshare.core.utp.packet import HEADER_SIZE

from .sim import B, Pair, Path, RenoFlow

SMALL = UtpConfig(large_packet_networks=())  # internet-sized packets between A and B


def payload(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def transfer(p: Pair, ha: int, hb: int, data: bytes, back: bytes = b"", until: float = 600.0) -> None:
    p.a.send(ha, data)
    if back:
        p.b.send(hb, back)
    p.flush()
    p.run(
        p.now + until,
        stop=lambda: (
            len(p.received["b"].get(hb, b"")) >= len(data) and len(p.received["a"].get(ha, b"")) >= len(back)
        ),
    )


def test_handshake_uses_bep29_ids_and_sequence_numbers() -> None:
    """The SYN carries the initiator's recv id and seq 1; the answer acks 1; data goes with recv id + 1."""
    p = Pair(config=SMALL)
    sent: list[tuple[str, bytes]] = []
    p.drop = lambda side, d: sent.append((side, d)) is not None
    ha, hb = p.connect()
    syn = decode(sent[0][1])
    assert sent[0][0] == "a" and syn.type is PacketType.SYN and syn.seq_nr == 1
    answer = decode(sent[1][1])
    assert sent[1][0] == "b" and answer.type is PacketType.STATE
    assert answer.conn_id == syn.conn_id and answer.ack_nr == 1
    conn_a, conn_b = p.a.connection(ha), p.b.connection(hb)
    assert (conn_a.recv_id, conn_a.send_id) == (syn.conn_id, (syn.conn_id + 1) & 0xFFFF)
    assert (conn_b.recv_id, conn_b.send_id) == (conn_a.send_id, conn_a.recv_id)
    p.a.send(ha, b"hello")
    p.flush()
    data = decode(sent[-1][1])
    assert data.type is PacketType.DATA and data.conn_id == conn_a.send_id and data.seq_nr == 2
    assert data.ack_nr == (answer.seq_nr - 1) & 0xFFFF


@pytest.mark.parametrize(
    ("loss", "jitter", "dup"),
    [
        (0.0, 0.0, 0.0),
        (0.05, 0.0, 0.0),
        (0.0, 0.02, 0.0),
        (0.0, 0.0, 0.2),
        (0.1, 0.02, 0.1),
        (0.3, 0.01, 0.05),
    ],
)
def test_everything_arrives_once_in_order_under_loss_reordering_and_duplication(
    loss: float, jitter: float, dup: float
) -> None:
    """Both directions deliver every byte exactly once and in order, whatever the path does."""
    path = Path(delay=0.02, jitter=jitter, loss=loss, duplicate=dup)
    p = Pair(config=SMALL, ab=path, ba=path, seed=7)
    ha, hb = p.connect()
    data, back = payload(400_000, 1), payload(150_000, 2)
    transfer(p, ha, hb, data, back)
    assert bytes(p.received["b"][hb]) == data
    assert bytes(p.received["a"][ha]) == back
    assert p.a.budget.used == p.b.budget.used == 0  # the reorder buffers gave every byte back


@settings(max_examples=15)
@given(
    seed=st.integers(0, 10_000),
    loss=st.floats(0, 0.25),
    jitter=st.floats(0, 0.05),
    dup=st.floats(0, 0.3),
    size=st.integers(1, 60_000),
)
def test_random_paths_never_corrupt_the_stream(
    seed: int, loss: float, jitter: float, dup: float, size: int
) -> None:
    """For any mix of loss, reordering and duplication the received stream equals the sent one."""
    # Connect over a clean path (a SYN lost on every retry is a failed connect, not a corrupt
    # stream), then let the path lose, reorder and duplicate for the whole transfer.
    p = Pair(config=SMALL, seed=seed)
    ha, hb = p.connect()
    p.ab = Path(delay=0.01, jitter=jitter, loss=loss, duplicate=dup)
    p.ba = Path(delay=0.01, loss=loss / 2)
    data = payload(size, seed)
    transfer(p, ha, hb, data)
    assert bytes(p.received["b"][hb]) == data


def test_sequence_numbers_wrap_without_loss_of_order() -> None:
    """A sender whose sequence numbers pass 0xffff -> 0 still delivers in order."""

    class FixedSeq(random.Random):
        def randrange(self, *args: int) -> int:  # type: ignore[override]
            return 0xFFF0

    p = Pair(config=SMALL, ab=Path(jitter=0.005), ba=Path(jitter=0.005, loss=0.05))
    p.b.rng = FixedSeq()
    p.a.rng = FixedSeq()
    ha, hb = p.connect()
    back = payload(200_000, 3)  # ~150 packets from b, starting at 0xfff0
    transfer(p, ha, hb, b"x", back)
    assert bytes(p.received["a"][ha]) == back
    assert p.b.connection(hb).tx.seq_nr < 0x1000


def test_one_lost_packet_is_resent_by_sack_before_any_timeout() -> None:
    """A single lost DATA packet is repaired from the selective ACK, long before the 500 ms timeout."""
    p = Pair(config=SMALL, ab=Path(delay=0.005), ba=Path(delay=0.005))
    ha, hb = p.connect()
    dropped: list[int] = []

    def drop(side: str, d: bytes) -> bool:
        pkt = decode(d)
        if side == "a" and pkt.type is PacketType.DATA and pkt.seq_nr == 10 and not dropped:
            dropped.append(pkt.seq_nr)
            return True
        return False

    sacks: list[bytes] = []
    p.drop = lambda side, d: drop(side, d) or (side == "b" and bool(sacks.append(decode(d).sack or b"")))
    start = p.now
    data = payload(100 * 1300, 4)
    transfer(p, ha, hb, data)
    assert bytes(p.received["b"][hb]) == data
    assert dropped == [10]
    assert any(sacks)
    assert p.now - start < SMALL.min_rto
    assert p.a.connection(ha).rtt.backoff == 1


def test_ledbat_backs_off_when_the_queue_delay_passes_the_target() -> None:
    """Through a 1 MB/s bottleneck the window settles where the queue holds about 100 ms, not more."""
    p = Pair(config=SMALL, ab=Path(delay=0.02, rate=1_000_000), ba=Path(delay=0.02))
    ha, hb = p.connect()
    data = payload(8_000_000, 5)
    transfer(p, ha, hb, data)
    assert bytes(p.received["b"][hb]) == data
    late = [d for t, d in p.queue_delays if t > p.now / 2]
    assert max(d for _, d in p.queue_delays) > SMALL.target_delay  # it did push past the target ...
    assert sum(late) / len(late) < 1.5 * SMALL.target_delay  # ... and came back to it
    assert sum(late) / len(late) > 0.3 * SMALL.target_delay  # while keeping the link busy
    assert len(data) / (p.now) > 0.8 * 1_000_000


def test_large_packets_on_loopback_and_fallback_when_the_path_drops_them() -> None:
    """Between loopback addresses packets grow to large_packet_size, unless the path drops big datagrams."""
    big = Pair()
    ha, hb = big.connect()
    transfer(big, ha, hb, payload(2_000_000, 6))
    assert big.a.connection(ha).mss > 60_000
    small = Pair(ab=Path(mtu=1500), ba=Path(mtu=1500))
    ha, hb = small.connect()
    data = payload(2_000_000, 7)
    transfer(small, ha, hb, data)
    assert bytes(small.received["b"][hb]) == data
    assert small.a.connection(ha).mss + HEADER_SIZE < 1500


def test_close_ends_both_sides_with_fin() -> None:
    """Closing flushes the queued bytes, the peer sees EOF, and both machines forget the connection."""
    p = Pair(config=SMALL, ab=Path(loss=0.1), ba=Path(loss=0.1))
    ha, hb = p.connect()
    data = payload(50_000, 8)
    p.a.send(ha, data)
    p.a.close(ha, p.now)
    p.flush()
    p.run(p.now + 60, stop=lambda: len(p.a) == 0 and len(p.b) == 0)
    assert bytes(p.received["b"][hb]) == data
    closed_b, closed_a = p.closed("b", hb), p.closed("a", ha)
    assert closed_b is not None and closed_b.reason is CloseReason.EOF
    assert closed_a is not None and closed_a.reason is CloseReason.LOCAL
    assert len(p.a) == 0 and len(p.b) == 0


def test_abort_resets_the_peer() -> None:
    """abort() sends ST_RESET; the peer reports Closed(RESET) at once."""
    p = Pair(config=SMALL)
    ha, hb = p.connect()
    p.b.abort(hb)
    p.flush()
    p.run(p.now + 1, stop=lambda: p.closed("a", ha) is not None)
    closed = p.closed("a", ha)
    assert closed is not None and closed.reason is CloseReason.RESET


def test_a_peer_that_vanishes_times_out() -> None:
    """When every packet is lost after the handshake, the sender gives up after max_retransmits timeouts."""
    cfg = replace(SMALL, max_retransmits=3)
    p = Pair(config=cfg)
    ha, _hb = p.connect()
    p.drop = lambda side, d: True
    p.a.send(ha, payload(10_000))
    p.flush()
    p.run(p.now + 600, stop=lambda: p.closed("a", ha) is not None)
    closed = p.closed("a", ha)
    assert closed is not None and closed.reason is CloseReason.TIMEOUT
    assert p.now < 60


def test_unanswered_syn_is_refused_after_the_retries() -> None:
    """A SYN nobody answers is resent syn_retransmits times, then the connect fails as refused."""
    p = Pair(config=SMALL)
    p.b.accept_incoming = False
    ha = p.a.connect(B, 0.0)
    p.flush()
    p.run(120, stop=lambda: p.closed("a", ha) is not None)
    closed = p.closed("a", ha)
    assert closed is not None and closed.reason is CloseReason.REFUSED
    syns = p.datagrams["a"]
    assert syns == SMALL.syn_retransmits + 1


def test_idle_connection_is_kept_alive_and_a_silent_one_expires() -> None:
    """Keep-alives hold an idle connection open past idle_timeout; without them it times out."""
    cfg = replace(SMALL, keepalive_interval=5.0, idle_timeout=12.0)
    p = Pair(config=cfg)
    ha, hb = p.connect()
    p.run(60)
    assert p.closed("a", ha) is None and p.closed("b", hb) is None
    p.drop = lambda side, d: True
    p.run(120)
    for side, h in (("a", ha), ("b", hb)):
        closed = p.closed(side, h)
        assert closed is not None and closed.reason is CloseReason.TIMEOUT


def test_paused_reader_closes_the_window_and_resume_reopens_it() -> None:
    """A paused reader advertises a shrinking window; the sender waits; resume delivers everything."""
    cfg = replace(SMALL, recv_buffer=64 * 1024)
    p = Pair(config=cfg)
    ha, hb = p.connect()
    p.b.pause_reading(hb)
    data = payload(500_000, 9)
    p.a.send(ha, data)
    p.flush()
    p.run(p.now + 20)
    assert hb not in p.received["b"]
    assert p.b.connection(hb).rx.window < cfg.packet_size
    assert p.a.buffered(ha) >= len(data) - cfg.recv_buffer - 2 * cfg.packet_size
    assert p.b.connection(hb).rx.held_bytes <= cfg.recv_buffer
    p.b.resume_reading(hb)
    p.flush()
    p.run(p.now + 60, stop=lambda: len(p.received["b"].get(hb, b"")) >= len(data))
    assert bytes(p.received["b"][hb]) == data


def test_events_are_data_then_close() -> None:
    """A connection reports its data before its Closed event, and nothing after it."""
    p = Pair(config=SMALL)
    ha, hb = p.connect()
    p.a.send(ha, b"abc")
    p.a.close(ha, p.now)
    p.flush()
    p.run(p.now + 30)
    kinds = [type(e) for e in p.events["b"] if getattr(e, "conn", None) == hb]
    assert kinds[-1] is Closed
    assert DataReceived in kinds and kinds.index(DataReceived) < kinds.index(Closed)
    assert kinds.count(Closed) == 1


def test_the_acceptor_may_send_first() -> None:
    """An accepted connection can send before the initiator has sent any data."""
    p = Pair(config=SMALL)
    ha, hb = p.connect()
    p.b.send(hb, b"welcome")
    p.flush()
    p.run(p.now + 5, stop=lambda: bytes(p.received["a"].get(ha, b"")) == b"welcome")
    assert bytes(p.received["a"][ha]) == b"welcome"
    assert p.closed("b", hb) is None


def test_in_order_data_is_acked_every_second_packet_or_after_the_delay() -> None:
    """A bulk transfer draws about one ack per two packets; a lone packet is acked after delayed_ack."""
    p = Pair(config=SMALL, ab=Path(delay=0.01), ba=Path(delay=0.01))
    ha, hb = p.connect()
    kinds: list[tuple[str, PacketType, float]] = []
    p.drop = lambda side, d: kinds.append((side, decode(d).type, p.now)) is not None
    transfer(p, ha, hb, payload(200 * 1300, 10))
    data_packets = sum(1 for s, k, _ in kinds if s == "a" and k is PacketType.DATA)
    acks = sum(1 for s, k, _ in kinds if s == "b" and k is PacketType.STATE)
    assert data_packets >= 190  # 260 kB in 1,346-byte payloads
    assert data_packets / 2 - 5 <= acks <= data_packets / 2 + 10
    p.run(p.now + 1)  # the last delayed ack of the transfer goes out
    kinds.clear()
    p.a.send(ha, b"lone")
    p.flush()
    sent_at = p.now
    p.run(p.now + 1, stop=lambda: any(s == "b" for s, _, _ in kinds))
    (_, kind, at), *_ = (k for k in kinds if k[0] == "b")
    assert kind is PacketType.STATE
    assert at == pytest.approx(sent_at + 0.01 + SMALL.delayed_ack)


def test_ledbat_yields_to_a_loss_based_flow_and_takes_the_link_back() -> None:
    """On a 2 Mbit/s link uTP fills it alone, keeps under 30% beside a TCP-like flow, then recovers."""
    rate = 250_000
    p = Pair(config=SMALL, ab=Path(delay=0.02, rate=rate, queue_limit=0.3), ba=Path(delay=0.02))
    ha, _ = p.connect()
    tcp = RenoFlow(start=20.0, stop=50.0)
    p.add_tcp(tcp)
    p.a.send(ha, bytes(25_000_000))
    p.flush()
    p.run(75.0)
    assert p.share(p.delivered, 5, 20, rate) > 0.85  # alone: the whole link
    assert p.share(p.delivered, 30, 50, rate) < 0.30  # beside TCP: it yields ...
    assert p.share(tcp.delivered, 30, 50, rate) > 0.65  # ... and TCP gets the link
    assert p.share(p.delivered, 60, 75, rate) > 0.75  # TCP gone: uTP takes it back
