"""The socket manager: demultiplexing, SYN-flood limits, resets, and fuzzed datagrams."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pshare.config import UtpConfig
from p2pshare.core.utp import (
    Closed,
    CloseReason,
    IncomingConnection,
    Packet,
    PacketType,
    UtpManager,
    decode,
    encode,
)

from .sim import A, Pair

CFG = UtpConfig(large_packet_networks=())


def syn(conn_id: int, seq: int = 1) -> bytes:
    return encode(Packet(PacketType.SYN, conn_id, 0, 0, 65536, seq, 0))


def events(mgr: UtpManager) -> list[object]:
    out = []
    while (ev := mgr.next_event()) is not None:
        out.append(ev)
    return out


def test_half_open_connections_are_limited_and_expire() -> None:
    """A flood of SYNs opens at most max_half_open connections, which expire after syn_recv_timeout."""
    cfg = replace(CFG, max_half_open=5)
    mgr = UtpManager(cfg, rng=random.Random(1))
    for i in range(50):
        mgr.receive_datagram(syn(1000 + 2 * i), ("127.0.0.9", 4000 + i), 0.0)
    answers = mgr.datagrams_to_send(0.0)
    assert len(mgr) == 5 and mgr.half_open == 5
    assert mgr.stats["syn_refused"] == 45
    assert len(answers) == 5 and all(len(d) == 20 for d, _ in answers)  # no amplification
    assert sum(isinstance(e, IncomingConnection) for e in events(mgr)) == 5
    timer = mgr.get_timer()
    assert timer is not None and timer <= cfg.syn_recv_timeout
    mgr.handle_timer(cfg.syn_recv_timeout)
    mgr.datagrams_to_send(cfg.syn_recv_timeout)
    assert len(mgr) == 0
    assert all(e.reason is CloseReason.TIMEOUT for e in events(mgr) if isinstance(e, Closed))


def test_duplicate_syn_opens_one_connection_and_repeats_the_answer() -> None:
    """The same SYN twice (our answer was lost) yields one connection and two identical STATE answers."""
    mgr = UtpManager(CFG, rng=random.Random(1))
    mgr.receive_datagram(syn(77), A, 0.0)
    first = mgr.datagrams_to_send(0.0)
    mgr.receive_datagram(syn(77), A, 0.5)
    second = mgr.datagrams_to_send(0.5)
    assert len(mgr) == 1
    a, b = decode(first[0][0]), decode(second[0][0])
    assert a.type is b.type is PacketType.STATE
    assert (a.conn_id, a.seq_nr, a.ack_nr) == (b.conn_id, b.seq_nr, b.ack_nr) == (77, a.seq_nr, 1)


def test_packets_for_unknown_connections_get_rate_limited_resets() -> None:
    """DATA for a connection we do not know is answered with ST_RESET, at most max_resets_per_second."""
    cfg = replace(CFG, max_resets_per_second=10.0)
    mgr = UtpManager(cfg)
    junk = encode(Packet(PacketType.DATA, 4242, 0, 0, 0, 5, 6, None, b"x"))
    for _ in range(100):
        mgr.receive_datagram(junk, A, 1.0)
    out = mgr.datagrams_to_send(1.0)
    assert len(out) == 10
    reset = decode(out[0][0])
    assert reset.type is PacketType.RESET and reset.conn_id == 4242
    mgr.receive_datagram(encode(Packet(PacketType.RESET, 4242, 0, 0, 0, 1, 1)), A, 1.0)
    assert mgr.datagrams_to_send(1.0) == []  # a RESET is never answered


def test_not_accepting_drops_syns() -> None:
    """With accept_incoming off, a SYN opens nothing and gets no answer."""
    mgr = UtpManager(CFG, accept_incoming=False)
    mgr.receive_datagram(syn(5), A, 0.0)
    assert len(mgr) == 0 and mgr.datagrams_to_send(0.0) == []


def test_a_peer_that_ignores_a_shut_window_is_cut_off() -> None:
    """In-order data pushed into a paused connection's full buffer ends in PROTOCOL_ERROR and a RESET."""
    cfg = replace(CFG, recv_buffer=4000, max_window_violations=3)
    p = Pair(config=cfg)
    ha, hb = p.connect()
    p.b.pause_reading(hb)
    conn_a = p.a.connection(ha)
    seq = conn_a.tx.seq_nr
    for i in range(10):
        raw = encode(Packet(PacketType.DATA, conn_a.send_id, 0, 0, 1 << 20, seq + i, 0, None, bytes(1000)))
        p.b.receive_datagram(raw, A, p.now)
    out = p.b.datagrams_to_send(p.now)
    closed = [e for e in events(p.b) if isinstance(e, Closed)]
    assert closed and closed[0].reason is CloseReason.PROTOCOL_ERROR
    assert decode(out[-1][0]).type is PacketType.RESET
    assert len(p.b) == 0


@settings(max_examples=300)
@given(st.lists(st.binary(min_size=0, max_size=80), max_size=20), st.data())
def test_random_datagrams_never_crash_the_manager(datagrams: list[bytes], data: st.DataObject) -> None:
    """Fuzzed datagrams, some aimed at a live connection's ids, never raise and never wedge the manager."""
    p = Pair(config=CFG)
    _ha, hb = p.connect()
    conn_b = p.b.connection(hb)
    for raw in datagrams:
        if len(raw) >= 20 and data.draw(st.booleans()):
            raw = bytearray(raw)
            raw[0] = (raw[0] & 0xF0) | 1 if raw[0] >> 4 <= 4 else 0x01
            raw[2:4] = conn_b.recv_id.to_bytes(2, "big")
            raw = bytes(raw)
        p.b.receive_datagram(raw, A, p.now)
        p.now += 0.01
        p.b.datagrams_to_send(p.now)
        p.b.handle_timer(p.now)
        events(p.b)
    p.b.datagrams_to_send(p.now)
    p.queue.clear()
    h2, g2 = p.connect()  # the manager still works afterwards
    p.a.send(h2, b"still alive")
    p.flush()
    p.run(p.now + 10, stop=lambda: bytes(p.received["b"].get(g2, b"")) == b"still alive")
    assert bytes(p.received["b"][g2]) == b"still alive"


def test_connections_are_demultiplexed_by_address_and_id() -> None:
    """Two connections from the same peer address carry separate streams."""
    p = Pair(config=CFG)
    h1, g1 = p.connect()
    p.events["a"].clear()
    h2, g2 = p.connect()
    assert h1 != h2 and g1 != g2
    p.a.send(h1, b"one")
    p.a.send(h2, b"two")
    p.flush()
    p.run(p.now + 5, stop=lambda: len(p.received["b"]) == 2)
    assert bytes(p.received["b"][g1]) == b"one" and bytes(p.received["b"][g2]) == b"two"


def test_timer_heap_stays_bounded_on_a_busy_connection() -> None:
    """Thousands of deadline changes on one connection leave only a handful of heap entries."""
    p = Pair(config=CFG)
    ha, hb = p.connect()
    p.a.send(ha, bytes(3_000_000))
    p.flush()
    p.run(p.now + 60, stop=lambda: len(p.received["b"].get(hb, b"")) >= 3_000_000)
    assert p.datagrams["b"] > 1000
    assert len(p.b._timers) <= 4 * len(p.b) + 64
    assert p.b.get_timer() == p.b.connection(hb).get_timer()


def test_all_receive_buffers_together_stay_within_the_budget() -> None:
    """Paused readers on two connections hold at most max_total_recv_buffer bytes, and give them back."""
    cfg = replace(CFG, recv_buffer=64 * 1024, max_total_recv_buffer=80 * 1024)
    p = Pair(config=cfg)
    h1, g1 = p.connect()
    h2, g2 = p.connect()
    for h, g in ((h1, g1), (h2, g2)):
        p.b.pause_reading(g)
        p.a.send(h, bytes(300_000))
    p.flush()
    p.run(p.now + 20)
    held = sum(p.b.connection(g).rx.held_bytes + p.b.connection(g).rx.ooo_bytes for g in (g1, g2))
    assert 64 * 1024 < held <= cfg.max_total_recv_buffer
    assert p.b.budget.used == held
    p.b.resume_reading(g1)
    p.b.resume_reading(g2)
    p.flush()
    p.run(p.now + 60, stop=lambda: all(len(p.received["b"].get(g, b"")) == 300_000 for g in (g1, g2)))
    assert all(len(p.received["b"][g]) == 300_000 for g in (g1, g2))
    p.b.abort(g1)
    p.b.abort(g2)
    p.flush()
    assert p.b.budget.used == 0
