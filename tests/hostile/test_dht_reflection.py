"""A ``p2pshare dht`` node hit by KRPC garbage and query floods from one address (127.0.0.9).

Issue 12 item 7 (fixed on main): every reply, errors included, takes a token of the sender's
budget (DhtConfig.incoming_burst, then incoming_rate_per_source a second), so the node can
never be used to amplify an attack on the sender's forged address.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from p2pshare.config import DhtConfig
from p2pshare.core import bencode
from tests.e2e.procs import listening, processes, start
from tests.hostile.harness import GETTER_HOST, LIAR_HOST, RssSampler, rss_mib

DHT_GROWTH_MIB = 20.0


def _udp(host: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.setblocking(False)
    return s


def _drain(s: socket.socket) -> tuple[int, int]:
    count = size = 0
    while True:
        try:
            data = s.recv(2048)
        except BlockingIOError:
            return count, size
        count += 1
        size += len(data)


def test_krpc_garbage_and_ping_floods_stay_within_the_senders_budget(tmp_path: Path) -> None:
    """3,000 malformed queries and 3,000 pings from one address get at most the budget's replies,
    while another address's ping is still answered."""
    cfg = DhtConfig()
    with processes() as procs:
        node = start(
            procs, ["dht", "--host", "127.0.0.2", "--port", "0", "--no-bootstrap", "--json"], tmp_path
        )
        target = ("127.0.0.2", listening(node)["port"])
        base = rss_mib(node.pid)
        attacker = _udp(LIAR_HOST)
        honest = _udp(GETTER_HOST)
        garbage = b"d1:q4:ping1:y1:qe!"  # 18 bytes: a query without a transaction id or arguments
        ping = bencode.encode({b"t": b"aa", b"y": b"q", b"q": b"ping", b"a": {b"id": os.urandom(20)}})
        replies = size = 0
        began = time.monotonic()
        with RssSampler(node.pid) as mem:
            for i in range(6000):
                attacker.sendto(garbage if i % 2 == 0 else ping, target)
                if i % 500 == 0:
                    time.sleep(0.01)
                    n, b = _drain(attacker)
                    replies, size = replies + n, size + b
            time.sleep(1.0)
            n, b = _drain(attacker)
            replies, size = replies + n, size + b
            elapsed = time.monotonic() - began
            honest.sendto(ping, target)
            deadline = time.monotonic() + 5
            answered = False
            while not answered and time.monotonic() < deadline:
                time.sleep(0.05)
                try:
                    reply = bencode.decode(honest.recv(2048))
                except BlockingIOError:
                    continue
                # The node may also ping a newcomer back: look for the answer to our query.
                answered = isinstance(reply, dict) and reply.get(b"y") == b"r" and reply.get(b"t") == b"aa"
        attacker.close()
        honest.close()
    budget = cfg.incoming_burst + cfg.incoming_rate_per_source * elapsed
    assert 0 < replies <= budget + 2, (replies, budget)
    assert size <= 12_000 * 18, size  # never more bytes back than a fraction of what was sent
    assert answered
    assert mem.peak - base < DHT_GROWTH_MIB, (base, mem.peak)
