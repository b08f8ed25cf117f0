"""PeerBook: whom to dial within the caps, one back-off, what a closed connection leaves behind."""

from __future__ import annotations

from p2pshare.config import SwarmConfig
from p2pshare.core.types import PeerAddress
from p2pshare.engine.peer_book import PeerBook


def _addrs(n: int, host: str = "127.0.30") -> list[PeerAddress]:
    return [PeerAddress(f"{host}.{i + 1}", 6881) for i in range(n)]


def test_add_skips_known_and_banned_addresses_and_stops_at_the_cap() -> None:
    """Addresses already known or on a banned host are not new; the book holds at most max_known_peers."""
    book = PeerBook(SwarmConfig(max_known_peers=4))
    book.ban("127.0.30.2")
    assert book.add(_addrs(3), "dht") == 2
    assert book.add(_addrs(3), "dht") == 0
    assert book.add(_addrs(10, "127.0.31"), "pex") == 2
    assert len(book.known) == 4


def test_to_dial_respects_the_connection_and_half_open_caps() -> None:
    """Dials never exceed max_half_open, nor max_peers with the connected peers counted."""
    book = PeerBook(SwarmConfig(max_peers=5, max_half_open=3))
    book.add(_addrs(10), "dht")
    first = book.to_dial(0.0, connected=0)
    assert len(first) == 3 and book.half_open == 3
    assert book.to_dial(0.0, connected=0) == []  # the half-open cap is full
    book.dial_done()
    book.dial_done()
    assert len(book.to_dial(0.0, connected=3)) == 1  # 3 connected + 1 half-open + 1 = max_peers


def test_a_failed_dial_waits_out_its_back_off_then_is_tried_again() -> None:
    """After a failed dial the address is not dialled before now + retry_delay(attempts)."""
    book = PeerBook(SwarmConfig(retry_base=2.0, retry_max=60.0))
    book.add(_addrs(1), "cli")
    [(addr, known)] = book.to_dial(100.0, connected=0)
    assert book.dial_failed(known, 100.0) == 2.0
    assert book.to_dial(101.9, connected=0) == []
    [(again, known)] = book.to_dial(102.0, connected=0)
    assert again == addr and known.attempts == 2
    assert book.dial_failed(known, 102.0) == 4.0


def test_a_closed_connection_folds_its_totals_and_forgets_incoming_ports() -> None:
    """Incoming (ephemeral) addresses are forgotten; an outgoing one that worked restarts its back-off."""
    book = PeerBook(SwarmConfig(retry_base=2.0))
    out, inc = PeerAddress("127.0.32.1", 6881), PeerAddress("127.0.32.2", 50123)
    book.add([out], "cli")
    [(_, known)] = book.to_dial(0.0, connected=0)
    known.attempts = 5
    book.dial_done()
    book.attached(out)
    book.attached(inc)
    book.detached(out, outgoing=True, worked=True, down=10, up=1, now=50.0)
    book.detached(inc, outgoing=False, worked=True, down=5, up=2, now=50.0)
    assert inc not in book.known
    assert book.known[out].attempts == 0 and book.known[out].next_try == 52.0
    assert book.transfer_by_host([("127.0.32.1", 1, 1)]) == {"127.0.32.1": (11, 2), "127.0.32.2": (5, 2)}
