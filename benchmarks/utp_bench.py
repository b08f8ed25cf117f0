"""uTP throughput on loopback: 256 MiB between two p2pshare uTP sockets, plus CPU per GiB.

1. p2pshare -> p2pshare: the receiver runs in a child process (its own core), the
   sender in this one; both use :class:`p2pshare.io.utp_socket.UtpSocket` exactly as
   the engine will (the receiver on one socket shared with a live DHT endpoint,
   ``UtpSocket.open_with_dht``, as in a session).  Goal (issue 14): >= 150 MB/s; the
   exit code is 1 when it is missed.
2. From a libtorrent uTP-only seeder (TCP switched off), side by side in the same run:
   libtorrent's own uTP leecher, and a p2pshare uTP leecher (a PeerConnection driven
   over a UtpLink, pipelined requests, every piece SHA-1 checked, nothing written).
   Each leecher runs in a child process so its CPU time is its own.

Figures go to ``benchmarks/results/utp.txt``.

    python benchmarks/utp_bench.py [--mib 256] [--runs 2] [--no-libtorrent]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from p2pshare.config import DhtConfig, UtpConfig  # noqa: E402
from p2pshare.core.dht.node import DhtNode  # noqa: E402
from p2pshare.io.utp_socket import UtpLink, UtpSocket  # noqa: E402

WORK = HERE / ".work"
GOAL_MBPS = 150.0
UTP_ONLY = {
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
    "out_enc_policy": 2,  # plaintext: the p2pshare leecher does not speak MSE
    "in_enc_policy": 1,
}
PEER_ID = b"-PS0001-utpbenchxxxx"
SENDER = "127.0.0.2"
RECEIVER = "127.0.0.3"


def bench_config(packet_size: int) -> UtpConfig:
    """Default settings; with ``packet_size`` > 0, that datagram size and no large-packet probe."""
    if packet_size <= 0:
        return UtpConfig()
    return UtpConfig(packet_size=packet_size, large_packet_networks=())


async def receive(total: int, packet_size: int = 0) -> None:
    """Child: accept one link on a DHT-shared socket, count ``total`` bytes, print figures as JSON."""
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

    dcfg = DhtConfig(bootstrap=())
    sock, dht = await UtpSocket.open_with_dht(
        lambda now: DhtNode(dcfg, now=now, rng=random.Random(1)),
        host=RECEIVER,
        port=0,
        dht_config=dcfg,
        config=bench_config(packet_size),
        on_accept=on_accept,
    )
    print(json.dumps({"port": dht.local_address[1]}), flush=True)
    cpu0 = time.process_time()
    end = await asyncio.wait_for(done, 600)
    cpu = time.process_time() - cpu0
    stats = sock.manager.stats
    print(json.dumps({"seconds": end - state["first"], "cpu": cpu, "stats": stats}), flush=True)
    await asyncio.sleep(0.2)
    dht.close()
    sock.close()


async def send(port: int, total: int, packet_size: int = 0) -> dict[str, float]:
    sock = await UtpSocket.open(SENDER, 0, bench_config(packet_size))
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
        "timeouts": conn.counters["timeouts"],
        "fast_resends": conn.counters["fast_resends"],
    }
    await asyncio.sleep(1.0)  # the tail still in flight
    link.close()
    await asyncio.sleep(0.1)
    sock.close()
    return figures


def run_once(mib: int, packet_size: int = 0) -> dict[str, float]:
    total = mib * 1024 * 1024
    child = subprocess.Popen(
        [sys.executable, __file__, "--recv", str(total), "--packet-size", str(packet_size)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        port = json.loads(child.stdout.readline())["port"]
        sender = asyncio.run(send(port, total, packet_size))
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
        "timeouts": sender["timeouts"],
        "fast_resends": sender["fast_resends"],
    }


# ------------------------------------------------------------------ from a libtorrent uTP seeder


def _payload(mib: int) -> tuple[Path, Path]:
    """The payload (shared with swarm_bench's cache) and its .torrent."""
    sys.path.insert(0, str(HERE))
    from gen_payload import ensure_payload

    from p2pshare.engine.create import create_torrent

    path = ensure_payload(mib * 1024 * 1024, seed=1, out=WORK / "seed" / f"payload-{mib}M.bin")
    torrent = WORK / f"utp-{mib}M.torrent"
    stamp = WORK / f"utp-{mib}M.torrent.stamp"
    want = f"{path.stat().st_size} {path.stat().st_mtime_ns}\n"
    if not (torrent.exists() and stamp.exists() and stamp.read_text() == want):
        torrent.write_bytes(create_torrent(path, piece_length=256 * 1024).torrent)
        stamp.write_text(want)
    return path, torrent


async def leech_p2pshare(torrent: Path, host: str, port: int) -> dict[str, Any]:
    """Child: download every piece from ``host:port`` over uTP; check each piece's SHA-1."""
    from p2pshare.core.metainfo import parse_torrent
    from p2pshare.core.wire.connection import HandshakeReceived, PeerConnection
    from p2pshare.core.wire.messages import Interested, Piece, Unchoke

    info = parse_torrent(torrent.read_bytes()).info
    total, plen, n = info.total_length, info.piece_length, info.num_pieces
    block = 16384
    blocks = [
        (i, b, min(block, min(plen, total - i * plen) - b))
        for i in range(n)
        for b in range(0, min(plen, total - i * plen), block)
    ]
    sock = await UtpSocket.open("127.0.0.4", 0, UtpConfig())
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    link = await sock.connect((host, port), timeout=10)
    conn = PeerConnection(info.info_hash.value, PEER_ID, initiator=True, num_pieces=n)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    pieces: dict[int, bytearray] = {}
    got = [0] * n
    state = {"next": 0, "out": 0, "bad": 0, "complete": 0}
    depth = 512

    def request_more() -> None:
        start = state["next"]
        stop = min(len(blocks), start + depth - state["out"])
        if stop > start:
            link.write(conn.send_requests(blocks[start:stop]))
            state["out"] += stop - start
            state["next"] = stop

    def on_data(view: memoryview) -> None:
        conn.receive_data(view)
        while (ev := conn.next_event()) is not None:
            if isinstance(ev, Piece):
                buf = pieces.setdefault(ev.index, bytearray(min(plen, total - ev.index * plen)))
                buf[ev.begin : ev.begin + len(ev.data)] = ev.data
                got[ev.index] += len(ev.data)
                state["out"] -= 1
                if got[ev.index] == len(buf):
                    if hashlib.sha1(pieces.pop(ev.index)).digest() != info.piece_hash(ev.index):
                        state["bad"] += 1
                    state["complete"] += 1
                    if state["complete"] == n and not done.done():
                        done.set_result(None)
            elif isinstance(ev, HandshakeReceived):
                link.write(conn.send(Interested()))
            elif isinstance(ev, Unchoke):
                request_more()
        if conn.handshake_complete and not conn.peer_choking and state["out"] < depth // 2:
            request_more()

    link.set_handlers(on_data, lambda exc: done.done() or done.set_exception(exc or EOFError()))
    link.write(conn.handshake_bytes())
    await asyncio.wait_for(done, 900)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    link.close()
    sock.close()
    return {"seconds": elapsed, "cpu": cpu, "bytes": total, "bad": state["bad"]}


def leech_libtorrent(torrent: Path, host: str, port: int) -> dict[str, Any]:
    """Child: libtorrent's own uTP-only leecher; its CPU time from getrusage."""
    import resource
    import shutil

    from tests.interop.ltpeer import add_torrent, lt_session

    out = WORK / "out-utp-libtorrent"
    shutil.rmtree(out, ignore_errors=True)
    ses = lt_session("127.0.0.5", **UTP_ONLY)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    h = add_torrent(ses, torrent.read_bytes(), out)
    h.connect_peer((host, port))
    deadline = t0 + 900
    while not h.status().is_seeding:
        if time.perf_counter() > deadline:
            raise TimeoutError("libtorrent leecher did not finish")
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    total = h.status().total_wanted
    ses.remove_torrent(h)
    del ses
    shutil.rmtree(out, ignore_errors=True)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"seconds": elapsed, "cpu": cpu, "bytes": total, "bad": 0}


def lt_child(kind: str, torrent: Path, host: str, port: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, f"--{kind}", str(torrent), host, str(port)],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} leecher failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def libtorrent_section(mib: int) -> list[str]:
    from tests.interop.ltpeer import add_torrent, is_seeding, lt_port, lt_session, wait_for

    path, torrent = _payload(mib)
    ses = lt_session("127.0.0.2", **UTP_ONLY)
    handle = add_torrent(ses, torrent.read_bytes(), path.parent)
    wait_for(lambda: is_seeding(handle), 300, "libtorrent seeder to finish checking")
    port = lt_port(ses)
    lines = []
    try:
        for kind, label in (("lt-leech-libtorrent", "libtorrent"), ("lt-leech-p2pshare", "p2pshare  ")):
            r = lt_child(kind, torrent, "127.0.0.2", port)
            gib = r["bytes"] / 2**30
            rate = r["bytes"] / r["seconds"] / 1e6
            lines.append(
                f"[{mib}M, libtorrent uTP-only seeder] {label} uTP leecher {rate:7.1f} MB/s"
                f" ({r['seconds']:.2f} s), CPU per GiB {r['cpu'] / gib:.2f} s"
                + (f", {r['bad']} pieces failed" if r["bad"] else "")
            )
            print(lines[-1], flush=True)
    finally:
        ses.pause()
        del ses
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--no-libtorrent", action="store_true", help="skip the libtorrent comparison")
    parser.add_argument(
        "--packet-size", type=int, default=0, help="also run with this datagram size (no large packets)"
    )
    parser.add_argument("--recv", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lt-leech-p2pshare", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--lt-leech-libtorrent", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.recv:
        asyncio.run(receive(args.recv, args.packet_size))
        return 0
    if args.lt_leech_p2pshare:
        t, h, p = args.lt_leech_p2pshare
        print(json.dumps(asyncio.run(leech_p2pshare(Path(t), h, int(p)))))
        return 0
    if args.lt_leech_libtorrent:
        t, h, p = args.lt_leech_libtorrent
        print(json.dumps(leech_libtorrent(Path(t), h, int(p))))
        return 0
    runs = [run_once(args.mib) for _ in range(args.runs)]
    best = max(runs, key=lambda r: r["mbps"])
    lines = [
        f"# uTP benchmark, {time.strftime('%Y-%m-%d %H:%M')}, python {platform.python_version()}",
        *(
            f"[{args.mib}M, p2pshare -> p2pshare uTP] {r['mbps']:7.1f} MB/s ({r['seconds']:.2f} s), "
            f"CPU per GiB: sender {r['cpu_send_per_gib']:.2f} s, receiver {r['cpu_recv_per_gib']:.2f} s; "
            f"{r['datagrams_in']} datagrams in, packet payload {r['mss']} B, srtt {r['rtt_ms']:.1f} ms, "
            f"{r['fast_resends']} fast resends, {r['timeouts']} timeouts"
            for r in runs
        ),
        f"[{args.mib}M] best {best['mbps']:.1f} MB/s (goal >= {GOAL_MBPS:.0f} MB/s)",
    ]
    if args.packet_size:
        r = run_once(args.mib, args.packet_size)
        lines.append(
            f"[{args.mib}M, p2pshare -> p2pshare uTP, {args.packet_size}-byte datagrams] "
            f"{r['mbps']:7.1f} MB/s"
            f" ({r['seconds']:.2f} s), CPU per GiB: sender {r['cpu_send_per_gib']:.2f} s, "
            f"receiver {r['cpu_recv_per_gib']:.2f} s"
        )
    if not args.no_libtorrent:
        try:
            lines += libtorrent_section(args.mib)
        except ImportError:
            lines.append("(libtorrent not installed: no comparison)")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "utp.txt").write_text(text)
    return 0 if best["mbps"] >= GOAL_MBPS else 1


if __name__ == "__main__":
    sys.exit(main())
