"""Hostile peers on loopback: raw sockets that speak BEP 3/6/9/10 from p2pshare's own encoders.

The p2pshare side always runs as CLI processes (``share``/``get``/``dht`` with ``--json``);
these peers are threads of the test process.  Every peer binds its own loopback address
(127.0.0.x), so a ban in a process's NDJSON events names exactly one party.  Every loop
here is bounded by a deadline or a stop event; every socket is closed on the way out.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pshare.config import WireLimits
from p2pshare.core.metainfo import Info, parse_torrent
from p2pshare.core.wire.extension import UT_METADATA, UT_METADATA_ID, ExtensionHandshake
from p2pshare.core.wire.messages import (
    Extended,
    Handshake,
    Message,
    encode,
    encode_handshake,
)
from p2pshare.core.wire.metadata import (
    MetadataMessage,
    decode_metadata_message,
    encode_metadata_message,
)
from p2pshare.core.wire.parser import MessageParser
from p2pshare.errors import RemoteProtocolError
from tests.e2e.procs import Proc, listening, start

MiB = 1024 * 1024
BLOCK = 16 * 1024

#: Addresses of the parties, one each, so every ban is attributable.
SEEDER_HOST = "127.0.0.2"
GETTER_HOST = "127.0.0.3"
LIAR_HOST = "127.0.0.9"
PROXY_HOST = "127.0.0.4"


# ---------------------------------------------------------------------- memory


def proc_status_kib(pid: int, field_name: str) -> int:
    """A ``/proc/PID/status`` field in KiB (VmRSS, VmHWM), 0 once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def rss_mib(pid: int) -> float:
    return proc_status_kib(pid, "VmRSS") / 1024


def hwm_mib(pid: int) -> float:
    return proc_status_kib(pid, "VmHWM") / 1024


class RssSampler:
    """Samples a process's VmRSS every ``interval`` seconds in a thread; ``peak`` is the highest."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            value = rss_mib(self.pid)
            if value:
                self.samples.append(value)

    def __enter__(self) -> RssSampler:
        self.samples.append(rss_mib(self.pid))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def peak(self) -> float:
        return max(self.samples) if self.samples else 0.0


# ---------------------------------------------------------------------- payloads and processes


@dataclass
class Shared:
    """A seeder process sharing one generated file, and what a raw peer needs to serve it."""

    proc: Proc
    info: Info
    data: bytes
    port: int
    host: str
    torrent: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def piece(self, index: int) -> bytes:
        pl = self.info.piece_length
        return self.data[index * pl : (index + 1) * pl]


def make_payload(folder: Path, size: int, seed: int = 12) -> Path:
    """A folder holding one file of ``size`` random (seeded) bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "blob.bin").write_bytes(random.Random(seed).randbytes(size))
    return folder


def start_seeder(
    procs: list[Proc], tmp: Path, *, size: int = 2 * MiB, piece_size: str = "64KiB", host: str = SEEDER_HOST
) -> Shared:
    folder = make_payload(tmp / "payload", size)
    proc = start(
        procs,
        ["share", str(folder), "--host", host, "--no-dht", "--piece-size", piece_size, "--json"],
        tmp / "s-seed",
    )
    manifest = proc.wait_for_event(lambda e: e.get("event") == "manifest", 60)
    ready = listening(proc)
    torrent = Path(manifest["torrent"])
    info = parse_torrent(torrent.read_bytes()).info
    return Shared(proc, info, (folder / "blob.bin").read_bytes(), ready["port"], host, torrent)


def start_getter(
    procs: list[Proc],
    tmp: Path,
    target: str,
    peers: list[str],
    *,
    host: str = GETTER_HOST,
    timeout: float = 60,
    name: str = "s-get",
) -> Proc:
    args = ["get", target, "-o", str(tmp / f"out-{name}"), "--no-dht", "--host", host, "--json"]
    for p in peers:
        args += ["--peer", p]
    args += ["--timeout", str(timeout)]
    return start(procs, args, tmp / name)


def events_named(proc: Proc, name: str) -> list[dict[str, Any]]:
    return [e for e in proc.events() if e.get("event") == name]


def hosts_banned(proc: Proc) -> set[str]:
    """The IPs a process banned (addresses are HOST:PORT)."""
    return {e["address"].rsplit(":", 1)[0] for e in events_named(proc, "peer_banned")}


def hosts_dropped(proc: Proc) -> set[str]:
    return {e["address"].rsplit(":", 1)[0] for e in events_named(proc, "peer_disconnected")}


def reasons_for(proc: Proc, host: str) -> list[str]:
    return [
        e["reason"]
        for e in proc.events()
        if e.get("event") in ("peer_banned", "peer_disconnected") and e["address"].startswith(host + ":")
    ]


def downloaded_file(tmp: Path, shared: Shared, name: str = "s-get") -> bytes:
    return (tmp / f"out-{name}" / shared.info.name / "blob.bin").read_bytes()


# ---------------------------------------------------------------------- a raw wire peer


class WireSocket:
    """A blocking socket that speaks the peer wire protocol through p2pshare's encoders."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = MessageParser(WireLimits(max_message_length=4 * MiB, max_extended_message=MiB))
        self.remote_hs: Handshake | None = None
        self.remote_ext: ExtensionHandshake | None = None

    @classmethod
    def dial(cls, host: str, port: int, local_host: str, timeout: float = 5.0) -> WireSocket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((local_host, 0))
        sock.settimeout(timeout)
        sock.connect((host, port))
        return cls(sock)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    # -- sending
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *msgs: Message) -> None:
        self.sock.sendall(b"".join(encode(m) for m in msgs))

    def send_handshake(self, info_hash: bytes, peer_id: bytes | None = None) -> None:
        pid = peer_id or (b"-XX0001-" + os.urandom(12))
        self.sock.sendall(encode_handshake(info_hash, pid, fast=True, extensions=True))

    def send_ext_handshake(self, metadata_size: int | None = None, *, ut_metadata: bool = True) -> None:
        hs = ExtensionHandshake(
            m={UT_METADATA: UT_METADATA_ID} if ut_metadata else {}, v="hostile 1", metadata_size=metadata_size
        )
        self.send(Extended(0, hs.encode()))

    def send_metadata(self, msg: MetadataMessage) -> None:
        """A ut_metadata message, under the id the remote side gave in its extension handshake."""
        remote_id = self.remote_ext.ext_id(UT_METADATA) if self.remote_ext else None
        self.send(Extended(remote_id or UT_METADATA_ID, encode_metadata_message(msg)))

    # -- receiving
    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(min(remaining, 1.0))
        try:
            data = self.sock.recv(256 * 1024)
        except TimeoutError:
            return True
        if not data:
            raise ConnectionResetError("closed by the remote side")
        self.parser.feed(data)
        return True

    def recv_handshake(self, timeout: float = 10.0) -> Handshake:
        deadline = time.monotonic() + timeout
        while True:
            hs = self.parser.next_handshake()
            if hs is not None:
                self.remote_hs = hs
                return hs
            if not self._fill(deadline):
                raise TimeoutError("no handshake")

    def recv(self, timeout: float = 10.0) -> Message | MetadataMessage | None:
        """The next message (extension handshakes and ut_metadata decoded), or None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.parser.next_message()
            if msg is not None:
                if isinstance(msg, Extended):
                    if msg.ext_id == 0:
                        self.remote_ext = ExtensionHandshake.decode(msg.payload)
                        continue
                    with contextlib.suppress(RemoteProtocolError):
                        decoded = decode_metadata_message(msg.payload)
                        if decoded is not None:
                            return decoded
                    continue
                return msg
            if not self._fill(deadline):
                return None


# ---------------------------------------------------------------------- servers


Handler = Callable[[WireSocket, threading.Event], None]


@dataclass
class RawServer:
    """Listens on ``host`` and runs ``handler`` in a thread per accepted connection."""

    host: str
    handler: Handler
    port: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    connections: int = 0
    _sock: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> RawServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(64)
        sock.settimeout(0.2)
        self._sock = sock
        self.port = sock.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self.stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        ws = WireSocket(conn)
        try:
            self.handler(ws, self.stop)
        except (OSError, ConnectionError, TimeoutError, RemoteProtocolError):
            pass
        finally:
            ws.close()

    def close(self) -> None:
        self.stop.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        for t in self._threads:
            t.join(timeout=5)


@contextlib.contextmanager
def serving(host: str, handler: Handler) -> Iterator[RawServer]:
    server = RawServer(host, handler).start()
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def delayed_proxy(listen_host: str, target: tuple[str, int], delay: float) -> Iterator[str]:
    """A TCP proxy that waits ``delay`` seconds before connecting each client to ``target``.

    It puts an honest peer second in line, so a liar's claims are always heard first.
    """
    stop = threading.Event()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((listen_host, 0))
    sock.listen(16)
    sock.settimeout(0.2)
    threads: list[threading.Thread] = []

    def pump(src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.5)
        while not stop.is_set():
            try:
                data = src.recv(256 * 1024)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def handle(client: socket.socket) -> None:
        if stop.wait(delay):
            client.close()
            return
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.bind((listen_host, 0))
        try:
            upstream.connect(target)
        except OSError:
            client.close()
            upstream.close()
            return
        a = threading.Thread(target=pump, args=(client, upstream), daemon=True)
        b = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        a.start()
        b.start()
        a.join()
        b.join()
        client.close()
        upstream.close()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                client, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=handle, args=(client,), daemon=True)
            t.start()
            threads.append(t)

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield f"{listen_host}:{sock.getsockname()[1]}"
    finally:
        stop.set()
        sock.close()
        acceptor.join(timeout=5)
        for t in threads:
            t.join(timeout=5)


# ---------------------------------------------------------------------- manifests


def unsafe_info(name: bytes = b"evil") -> bytes:
    """The raw bytes of an info dict whose one file escapes the download folder."""
    from p2pshare.core import bencode

    content = b"owned"
    info = {
        b"name": name,
        b"piece length": BLOCK,
        b"pieces": hashlib.sha1(content).digest(),
        b"files": [{b"length": len(content), b"path": [b"..", b"..", b"escaped.txt"]}],
    }
    return bencode.encode(info)
