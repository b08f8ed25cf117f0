"""uTP throughput on loopback: 256 MiB between two p2pshare uTP sockets, plus CPU per GiB.

The receiver runs in a child process (its own core), the sender in this one; both
use :class:`p2pshare.io.utp_socket.UtpSocket` exactly as the engine will (the receiver
on a socket shared with a live DHT endpoint, as in a session).  Goal (issue 14):
>= 150 MB/s.  Figures go to ``benchmarks/results/utp.txt``; the exit code is 1 when
the goal is missed.

    python benchmarks/utp_bench.py [--mib 256] [--runs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from p2pshare.config import DhtConfig, UtpConfig  # noqa: E402
from p2pshare.core.dht.node import DhtNode  # noqa: E402
from p2pshare.io.dht_endpoint import DhtEndpoint  # noqa: E402
from p2pshare.io.utp_socket import UtpLink, UtpSocket  # noqa: E402

GOAL_MBPS = 150.0
SENDER = "127.0.0.2"
RECEIVER = "127.0.0.3"


async def receive(total: int) -> None:
    """Child: accept one link on a DHT-shared socket, count ``total`` bytes, print figures as JSON."""
    dcfg = DhtConfig(bootstrap=())
    dht = await DhtEndpoint.open(
        lambda now: DhtNode(dcfg, now=now, rng=random.Random(1)), host=RECEIVER, port=0, config=dcfg
    )
    done = asyncio.get_running_loop().create_future()
    state = {"n": 0, "first": 0.0}

    def on_accept(link: UtpLink) -> None:
        def on_data(view: memoryview) -> None:
            if not state["n"]:
                state["first"] = time.perf_counter()
            state["n"] += len(view)
            if state["n"] >= total and not done.done():
                done.set_result(time.perf_counter())

        link.set_handlers(on_data, lambda exc: None)

    sock = UtpSocket.over_dht(dht, UtpConfig(), on_accept=on_accept)
    print(json.dumps({"port": dht.local_address[1]}), flush=True)
    cpu0 = time.process_time()
    end = await asyncio.wait_for(done, 600)
    cpu = time.process_time() - cpu0
    stats = sock.manager.stats
    print(json.dumps({"seconds": end - state["first"], "cpu": cpu, "stats": stats}), flush=True)
    await asyncio.sleep(0.2)
    sock.close()
    dht.close()


async def send(port: int, total: int) -> dict[str, float]:
    sock = await UtpSocket.open(SENDER, 0, UtpConfig())
    link = await sock.connect((RECEIVER, port), timeout=10)
    link.set_handlers(lambda v: None, lambda exc: None)
    chunk = os.urandom(1024 * 1024)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        link.write(chunk)
        sent += len(chunk)
        if not link.writable:
            await link.wait_writable()
    while link.write_buffer_size:
        await link.wait_writable()
        await asyncio.sleep(0.001)
    conn = sock.manager.connection(link._handle)
    figures = {
        "cpu": time.process_time() - cpu0,
        "seconds": time.perf_counter() - t0,
        "mss": conn.mss,
        "cwnd": conn.cc.cwnd,
        "rtt_ms": conn.rtt.rtt * 1000,
        "resent": sock.manager.stats["datagrams_out"],
    }
    await asyncio.sleep(1.0)  # the tail still in flight
    link.close()
    await asyncio.sleep(0.1)
    sock.close()
    return figures


def run_once(mib: int) -> dict[str, float]:
    total = mib * 1024 * 1024
    child = subprocess.Popen(
        [sys.executable, __file__, "--recv", str(total)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        port = json.loads(child.stdout.readline())["port"]
        sender = asyncio.run(send(port, total))
        result = json.loads(child.stdout.readline())
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    gib = total / 2**30
    return {
        "mbps": total / result["seconds"] / 1e6,
        "seconds": result["seconds"],
        "cpu_recv_per_gib": result["cpu"] / gib,
        "cpu_send_per_gib": sender["cpu"] / gib,
        "datagrams_in": result["stats"]["datagrams_in"],
        "mss": sender["mss"],
        "rtt_ms": sender["rtt_ms"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--recv", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.recv:
        asyncio.run(receive(args.recv))
        return 0
    runs = [run_once(args.mib) for _ in range(args.runs)]
    best = max(runs, key=lambda r: r["mbps"])
    lines = [
        f"# uTP benchmark, {time.strftime('%Y-%m-%d %H:%M')}, python {platform.python_version()}",
        *(
            f"[{args.mib}M, p2pshare -> p2pshare uTP] {r['mbps']:7.1f} MB/s ({r['seconds']:.2f} s), "
            f"CPU per GiB: sender {r['cpu_send_per_gib']:.2f} s, receiver {r['cpu_recv_per_gib']:.2f} s; "
            f"{r['datagrams_in']} datagrams in, packet payload {r['mss']} B, srtt {r['rtt_ms']:.1f} ms"
            for r in runs
        ),
        f"[{args.mib}M] best {best['mbps']:.1f} MB/s (goal >= {GOAL_MBPS:.0f} MB/s)",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "utp.txt").write_text(text)
    return 0 if best["mbps"] >= GOAL_MBPS else 1


if __name__ == "__main__":
    sys.exit(main())
