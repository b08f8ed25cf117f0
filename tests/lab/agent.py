"""Programs the lab runs inside its namespaces, each printing JSON lines on stdout.

* ``portmap``: listen on a TCP and a UDP port (answering ``<name>:<what came>``), map them with
  :class:`p2pshare.io.portmap.PortMapper`, print the settled status, then on ``close`` from
  stdin close the mapper and print the final status.
* ``probe``: connect to a TCP address and send a UDP datagram; print what came back.
* ``lsd``: run the BEP 14 service for a while, announcing some info hashes; print the peers heard.
* ``ltget``: libtorrent downloads a magnet from one given peer (every discovery off).

Each waits a bounded time; the lab guard (tests/lab/guard) limits where they may connect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import socket
import sys
from typing import Any

from p2pshare.config import LsdConfig, NatPmpConfig, PortMapConfig

NAME = b"h1"  #: how the echo servers of ``portmap`` sign their answers (--name)


def emit(**fields: Any) -> None:
    print(json.dumps(fields, default=str), flush=True)


def status_dict(status: Any) -> dict[str, Any]:
    data = dataclasses.asdict(status)
    data["mapped"] = status.mapped
    return data


async def _tcp_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, TimeoutError):
        data = await asyncio.wait_for(reader.read(100), 5.0)
        writer.write(NAME + b":" + data)
        await writer.drain()
    writer.close()


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(NAME + b":" + data[:100], addr)  # type: ignore[attr-defined]


async def portmap(args: argparse.Namespace) -> None:
    from p2pshare.io.portmap import PortMapper

    loop = asyncio.get_running_loop()
    server = udp = None
    if not args.no_echo:
        server = await asyncio.start_server(_tcp_echo, "0.0.0.0", args.tcp)
        udp, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=("0.0.0.0", args.udp))
    events: list[str] = []
    protocols = tuple(args.protocols.split(","))
    config = PortMapConfig(protocols=protocols, upnp_search_timeout=2.0, upnp_lease=args.lease)
    natpmp = NatPmpConfig(max_tries=args.natpmp_tries, lifetime=args.lease or 3600, try_pcp=not args.no_pcp)
    mapper = PortMapper(
        config, natpmp, tcp_port=args.tcp, udp_port=args.udp, on_event=lambda e: events.append(repr(e))
    )
    started = loop.time()
    await mapper.start()
    status = await mapper.wait_settled(args.settle)
    emit(event="settled", status=status_dict(status), events=events, seconds=loop.time() - started)
    line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), args.hold)
    if line.strip() == "renewed":
        await asyncio.sleep(args.lease * 0.75)
        emit(event="renewed", status=status_dict(mapper.status()), events=events)
        line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), args.hold)
    try:
        await asyncio.wait_for(asyncio.shield(mapper.close()), 15.0)
        hung = False
    except TimeoutError:  # a bug: show where every task waits, and say so
        hung = True
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)
    emit(event="closed", status=status_dict(mapper.status()), events=events, close_hung=hung)
    if server is not None and udp is not None:
        server.close()
        udp.close()


def probe(args: argparse.Namespace) -> None:
    result: dict[str, Any] = {"event": "probe"}
    try:
        with socket.create_connection((args.host, args.tcp), timeout=5.0) as sock:
            sock.sendall(b"hello-tcp")
            sock.settimeout(5.0)
            result["tcp"] = sock.recv(100).decode(errors="replace")
    except OSError as exc:
        result["tcp_error"] = repr(exc)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        for _ in range(3):
            try:
                sock.sendto(b"hello-udp", (args.host, args.udp))
                data, source = sock.recvfrom(200)
            except OSError as exc:
                result["udp_error"] = repr(exc)
                continue
            result["udp"] = data.decode(errors="replace")
            result["udp_from"] = list(source)
            result.pop("udp_error", None)
            break
    emit(**result)


async def lsd(args: argparse.Namespace) -> None:
    from p2pshare.io.lsd import LsdService

    found: list[dict[str, Any]] = []
    config = LsdConfig(min_announce_gap=args.gap)
    service = LsdService(
        config,
        listen_port=args.port,
        on_peer=lambda ev: found.append({"info_hash": ev.info_hash.hex(), "host": ev.host, "port": ev.port}),
    )
    await service.start()
    emit(event="lsd-started", stats=service.stats())
    for ih in args.infohash:
        service.add_torrent(bytes.fromhex(ih))
    await asyncio.sleep(args.duration)
    stats = service.stats()
    await service.close()
    emit(event="lsd", found=found, stats=stats, cookie=service.cookie)


def ltget(args: argparse.Namespace) -> None:
    """libtorrent (DHT, LSD, UPnP, NAT-PMP off) fetches a magnet from one given peer."""
    import time

    from tests.interop.ltpeer import add_magnet, lt_session

    started = time.monotonic()
    ses = lt_session(host=args.host)
    handle = add_magnet(ses, args.info_hash, args.out)
    host, port = args.peer.rsplit(":", 1)
    marks: dict[str, float] = {}
    deadline = started + args.timeout
    while time.monotonic() < deadline:
        handle.connect_peer((host, int(port)))
        status = handle.status()
        if status.num_peers and "first_peer" not in marks:
            marks["first_peer"] = time.monotonic() - started
        if status.total_download and "first_byte" not in marks:
            marks["first_byte"] = time.monotonic() - started
        if status.is_seeding:
            marks["end"] = time.monotonic() - started
            break
        time.sleep(0.1)
    status = handle.status()
    seeding, total_done = bool(status.is_seeding), int(status.total_done)
    ses.remove_torrent(handle)
    del handle, status, ses  # the session's destructor waits for its disk thread: the file is complete
    emit(event="ltget", seeding=seeding, total_done=total_done, marks=marks)


def knock(args: argparse.Namespace) -> None:
    """Someone on the Internet: a DHT ping and a BitTorrent handshake to host's ports, again and again."""
    import os
    import time

    from p2pshare.core.wire.messages import encode_handshake

    ping = b"d1:ad2:id20:" + os.urandom(20) + b"e1:q4:ping1:t2:kn1:y1:qe"
    handshake = encode_handshake(os.urandom(20), b"-KN0001-" + os.urandom(12))
    sent = {"udp": 0, "tcp": 0}
    deadline = time.monotonic() + args.duration
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((args.source, 0))
        while time.monotonic() < deadline:
            udp.sendto(ping, (args.host, args.udp))
            sent["udp"] += 1
            try:
                with socket.create_connection(
                    (args.host, args.tcp), timeout=0.5, source_address=(args.source, 0)
                ) as c:
                    c.sendall(handshake)
                    sent["tcp"] += 1
            except OSError:
                pass
            time.sleep(0.5)
    emit(event="knock", **sent)


def main() -> None:
    parser = argparse.ArgumentParser(prog="tests.lab.agent")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("portmap")
    p.add_argument("--tcp", type=int, required=True)
    p.add_argument("--udp", type=int, required=True)
    p.add_argument("--protocols", default="natpmp,upnp")
    p.add_argument("--settle", type=float, default=20.0)
    p.add_argument("--hold", type=float, default=60.0)
    p.add_argument("--lease", type=int, default=3600)
    p.add_argument("--natpmp-tries", type=int, default=9)
    p.add_argument("--no-pcp", action="store_true", help="speak NAT-PMP (version 0) from the start")
    p.add_argument("--name", default="h1", help="signs the echo answers")
    p.add_argument("--no-echo", action="store_true", help="map ports another program listens on")
    q = sub.add_parser("probe")
    q.add_argument("--host", required=True)
    q.add_argument("--tcp", type=int, required=True)
    q.add_argument("--udp", type=int, required=True)
    r = sub.add_parser("lsd")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--infohash", action="append", default=[])
    r.add_argument("--duration", type=float, default=3.0)
    r.add_argument("--gap", type=float, default=60.0)
    t = sub.add_parser("ltget")
    t.add_argument("--host", required=True, help="our own address (libtorrent binds it)")
    t.add_argument("--info-hash", required=True)
    t.add_argument("--peer", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--timeout", type=float, default=60.0)
    k = sub.add_parser("knock")
    k.add_argument("--source", required=True)
    k.add_argument("--host", required=True)
    k.add_argument("--tcp", type=int, required=True)
    k.add_argument("--udp", type=int, required=True)
    k.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    global NAME
    NAME = getattr(args, "name", "h1").encode()
    if args.cmd == "portmap":
        asyncio.run(portmap(args))
    elif args.cmd == "probe":
        probe(args)
    elif args.cmd == "ltget":
        ltget(args)
    elif args.cmd == "knock":
        knock(args)
    else:
        asyncio.run(lsd(args))


if __name__ == "__main__":
    main()
