"""Tracker benchmark: codec speed, and announce round trips to opentracker on loopback.

Run: ``.venv/bin/python benchmarks/tracker_bench.py`` (the loopback part needs Debian's
opentracker, from ``scripts/install-tracker.sh``; without it that part is skipped).
Targets: parsing a 200-peer HTTP answer (plus 50 IPv6 peers) in under 2 ms (on a shared,
loaded 2-core machine: about 1 us a peer goes to building its PeerAddress); a UDP
announce round trip (connection id cached) in under 5 ms median, an HTTP one in under
10 ms median.  Figures go to ``benchmarks/results/trackers.txt``; exit 1 on a missed target.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from p2pshare.config import TrackerConfig
from p2pshare.core import bencode
from p2pshare.core.tracker import AnnounceEvent, AnnounceRequest, HttpResponseReader, parse_announce_response
from p2pshare.core.tracker.peers import encode_compact
from p2pshare.core.types import InfoHash, PeerAddress
from p2pshare.io.tracker_client import TrackerClient

RESULTS = Path(__file__).resolve().parent / "results" / "trackers.txt"
CFG = TrackerConfig()
PARSE_TARGET_US = 2000.0
UDP_TARGET_MS = 5.0
HTTP_TARGET_MS = 10.0


def codec_figures() -> tuple[float, float]:
    """Microseconds per parse of a 250-peer answer, and per HTTP read of it."""
    v4 = [PeerAddress(f"10.{i // 250}.{i % 250}.1", 1000 + i) for i in range(200)]
    v6 = [PeerAddress(f"2001:db8::{i + 1:x}", 2000 + i) for i in range(50)]
    body = bencode.encode(
        {b"interval": 1800, b"complete": 5, b"incomplete": 9, b"peers": encode_compact(v4),
         b"peers6": encode_compact(v6)}
    )  # fmt: skip
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    n = 3000
    t0 = time.perf_counter()
    for _ in range(n):
        parse_announce_response(body, CFG)
    parse_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        reader = HttpResponseReader(max_header_bytes=16384, max_headers=64, max_body=CFG.max_response_bytes)
        reader.receive_data(raw)
        assert reader.next_event() is not None
    read_us = (time.perf_counter() - t0) / n * 1e6
    return parse_us, read_us


async def round_trips(url: str, ih: InfoHash, n: int) -> list[float]:
    client = TrackerClient(CFG, local_host="127.0.0.1")
    times = []
    for i in range(n):
        req = AnnounceRequest(info_hash=ih, peer_id=b"-PS0100-" + i.to_bytes(12, "big"), port=1000 + i,
                              event=AnnounceEvent.STARTED, numwant=50)  # fmt: skip
        t0 = time.perf_counter()
        await client.announce(url, req)
        times.append((time.perf_counter() - t0) * 1e3)
    await client.aclose()
    return times


def loopback_figures() -> dict[str, list[float]] | None:
    exe = shutil.which("opentracker")
    if exe is None:
        return None
    home = Path(tempfile.mkdtemp(prefix="p2pshare-bench-opentracker-"))
    home.chmod(0o755)  # opentracker reads its whitelist after dropping root
    ih = InfoHash(bytes(range(20)))
    whitelist = home / "whitelist.txt"
    whitelist.write_text(ih.hex + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "-i", "127.0.0.1", "-p", str(port), "-P", str(port), "-w", str(whitelist)],
                            cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.1)
        return {
            kind: asyncio.run(round_trips(f"{kind}://127.0.0.1:{port}/announce", ih, 300))[20:]
            for kind in ("udp", "http")
        }
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    lines = [f"p2pshare trackers benchmark ({time.strftime('%Y-%m-%d %H:%M')})"]
    parse_us, read_us = codec_figures()
    ok = parse_us < PARSE_TARGET_US
    lines.append(f"parse 200+50-peer answer: {parse_us:.1f} us (target < {PARSE_TARGET_US:.0f} us); "
                 f"HTTP read of it: {read_us:.1f} us")  # fmt: skip
    loop = loopback_figures()
    if loop is None:
        lines.append("opentracker not installed: loopback round trips skipped")
    else:
        for kind, target in (("udp", UDP_TARGET_MS), ("http", HTTP_TARGET_MS)):
            times = sorted(loop[kind])
            median = statistics.median(times)
            ok = ok and median < target
            p95 = times[int(len(times) * 0.95)]
            lines.append(
                f"opentracker {kind:4s} announce: median {median:.2f} ms, p95 {p95:.2f} ms "
                f"over {len(times)} (target median < {target:g} ms)"
            )
    text = "\n".join(lines)
    print(text)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
