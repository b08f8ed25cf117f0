"""LEDBAT against TCP through a 20 Mbit/s router (run by test_ledbat_shaped.py inside ``unshare -m -n``).

The lab: three network namespaces joined only by veth pairs made here, in a
namespace with no other interface (nothing can leave the machine)::

    a (senders) 198.18.1.2 -- r (router: tbf 20 Mbit/s, tail drop) -- b (receivers) 198.18.2.2

The bottleneck is on a forwarding hop, as on a real path: a queue in the sender's
own qdisc would hold TCP back by TSQ (its small-queue limit) and prove nothing.
A uTP bulk transfer runs alone, then beside a TCP bulk transfer, then alone again.
The receivers print cumulative byte counts; the senders print phase marks (both on
the system-wide monotonic clock); the driver prints one JSON line of per-phase rates.

    unshare -m -n python -m tests.io.ledbat_shaped [--alone 4] [--both 10] [--after 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

from p2pshare.config import UtpConfig
from p2pshare.io.utp_socket import UtpLink, UtpSocket

RATE = "20mbit"
SENDER, RECEIVER = "198.18.1.2", "198.18.2.2"  #: RFC 2544 benchmarking addresses, lab veths only
CHUNK = 64 * 1024
UTP_PORT, TCP_PORT = 6881, 6882


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, timeout=10)


def build(latency_ms: int) -> None:
    """The three namespaces, the two links, the shaped router (needs a private mount+net namespace)."""
    subprocess.run(["mount", "--make-rprivate", "/"], check=True, timeout=10)
    os.makedirs("/run/netns", exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/netns"], check=True, timeout=10)
    for ns in ("a", "r", "b"):
        _ip("netns", "add", ns)
    _ip("link", "add", "va", "type", "veth", "peer", "name", "ra")
    _ip("link", "add", "vb", "type", "veth", "peer", "name", "rb")
    for dev, ns in (("va", "a"), ("ra", "r"), ("vb", "b"), ("rb", "r")):
        _ip("link", "set", dev, "netns", ns)
    for ns, dev, addr in (
        ("a", "va", "198.18.1.2/24"),
        ("r", "ra", "198.18.1.1/24"),
        ("r", "rb", "198.18.2.1/24"),
        ("b", "vb", "198.18.2.2/24"),
    ):
        _ip("-n", ns, "addr", "add", addr, "dev", dev)
        _ip("-n", ns, "link", "set", dev, "up")
    for ns in ("a", "r", "b"):
        _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", "a", "route", "add", "default", "via", "198.18.1.1")
    _ip("-n", "b", "route", "add", "default", "via", "198.18.2.1")
    subprocess.run(
        ["ip", "netns", "exec", "r", "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True, timeout=10
    )
    tbf = ["tbf", "rate", RATE, "burst", "32kb", "latency", f"{latency_ms}ms"]
    subprocess.run(
        ["ip", "netns", "exec", "r", "tc", "qdisc", "add", "dev", "rb", "root", *tbf], check=True, timeout=10
    )


# ---------------------------------------------------------------------------- receivers (in b)


async def receivers(seconds: float) -> None:
    totals = {"utp": 0, "tcp": 0}
    cfg = UtpConfig()

    def on_accept(link: UtpLink) -> None:
        link.set_handlers(lambda v: totals.__setitem__("utp", totals["utp"] + len(v)), lambda exc: None)

    sock = await UtpSocket.open(RECEIVER, UTP_PORT, cfg, on_accept=on_accept)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            totals["tcp"] += len(data)
        writer.close()

    server = await asyncio.start_server(serve, RECEIVER, TCP_PORT)
    print(json.dumps({"ready": True}), flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        print(json.dumps({"t": time.monotonic(), **totals}), flush=True)
        await asyncio.sleep(0.1)
    server.close()
    sock.close()


# ---------------------------------------------------------------------------- senders (in a)


async def senders(alone: float, both: float, after: float) -> None:
    stop_utp, stop_tcp = asyncio.Event(), asyncio.Event()
    chunk = os.urandom(CHUNK)

    async def utp() -> None:
        sock = await UtpSocket.open(SENDER, 0, UtpConfig())
        try:
            link = await sock.connect((RECEIVER, UTP_PORT), timeout=10)
            link.set_handlers(lambda v: None, lambda exc: None)
            while not stop_utp.is_set() and not link.closed:
                link.write(chunk)
                if not link.writable:
                    await link.wait_writable()
        finally:
            sock.close()

    async def tcp() -> None:
        _, writer = await asyncio.open_connection(RECEIVER, TCP_PORT)
        while not stop_tcp.is_set():
            writer.write(chunk)
            await writer.drain()
        writer.transport.abort()

    def mark(name: str) -> None:
        print(json.dumps({"mark": name, "t": time.monotonic()}), flush=True)

    utp_task = asyncio.create_task(utp())
    mark("alone")
    await asyncio.sleep(alone)
    tcp_task = asyncio.create_task(tcp())
    mark("both")
    await asyncio.sleep(both)
    stop_tcp.set()
    await asyncio.wait_for(tcp_task, 10)
    mark("after")
    await asyncio.sleep(after)
    mark("end")
    stop_utp.set()
    await asyncio.wait_for(utp_task, 10)


# ---------------------------------------------------------------------------- driver


def _rate(samples: list[dict[str, float]], kind: str, t0: float, t1: float) -> float:
    inside = [s for s in samples if t0 <= s["t"] <= t1]
    if len(inside) < 2:
        return 0.0
    return (inside[-1][kind] - inside[0][kind]) / (inside[-1]["t"] - inside[0]["t"])


def drive(args: argparse.Namespace) -> dict[str, float]:
    build(args.latency)
    total = args.alone + args.both + args.after + 5
    me = [sys.executable, "-m", "tests.io.ledbat_shaped"]
    env = dict(os.environ)
    recv = subprocess.Popen(
        ["ip", "netns", "exec", "b", *me, "--role", "recv", "--seconds", str(total + 5)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert recv.stdout is not None
        json.loads(recv.stdout.readline())  # ready
        send = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                "a",
                *me,
                "--role",
                "send",
                "--alone",
                str(args.alone),
                "--both",
                str(args.both),
                "--after",
                str(args.after),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=total + 30,
            check=True,
        )
        recv.wait(total + 30)
        samples = [json.loads(line) for line in recv.stdout.read().splitlines() if '"t"' in line]
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait(10)
    marks = {m["mark"]: m["t"] for m in (json.loads(x) for x in send.stdout.splitlines()) if "mark" in m}
    s = args.settle
    out = {"link": 20e6 / 8}
    for name, start, end in (
        ("alone", "alone", "both"),
        ("both", "both", "after"),
        ("after", "after", "end"),
    ):
        t0, t1 = marks[start] + min(s, (marks[end] - marks[start]) / 2), marks[end]
        out[f"utp_{name}"] = _rate(samples, "utp", t0, t1)
        out[f"tcp_{name}"] = _rate(samples, "tcp", t0, t1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["drive", "recv", "send"], default="drive")
    parser.add_argument("--alone", type=float, default=4.0)
    parser.add_argument("--both", type=float, default=10.0)
    parser.add_argument("--after", type=float, default=6.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of each phase not counted")
    parser.add_argument("--latency", type=int, default=300, help="the router's queue limit, ms")
    args = parser.parse_args()
    if args.role == "recv":
        asyncio.run(receivers(args.seconds))
    elif args.role == "send":
        asyncio.run(senders(args.alone, args.both, args.after))
    else:
        print(json.dumps(drive(args)), flush=True)


if __name__ == "__main__":
    main()
