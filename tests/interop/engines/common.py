"""What every engine harness shares: engine processes, bounded waits, payloads, p2pshare's CLI.

Each engine runs as a child process started here, with its output in a log file in
the test's folder; it is stopped by its own PID (SIGTERM, then SIGKILL) and never by
name.  p2pshare runs through its CLI (``share``/``get``/``dht`` with ``--json``), the
interface the README documents, by way of :mod:`tests.e2e.procs`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.procs import ROOT, Proc, listening, start

#: Where scripts/install-engines.sh puts the npm engines.
ENGINES_DIR = Path(os.environ.get("P2PSHARE_ENGINES_DIR", ROOT / ".engines"))
#: The size of the payload of each cell (issue 10 asks for at most 64 MiB); CI keeps it small.
PAYLOAD_SIZE = int(os.environ.get("P2PSHARE_INTEROP_SIZE", str(16 * 1024 * 1024)))
#: The bound on one transfer of a cell, in seconds.
TRANSFER_TIMEOUT = float(os.environ.get("P2PSHARE_INTEROP_TIMEOUT", "90"))


def skip_missing(what: str, how: str) -> None:
    """Skip this cell because an engine is not installed, saying how to install it."""
    pytest.skip(f"engine missing: {what} is not installed ({how}, or `make tools`)")


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        skip_missing(name, f"apt-get install {package}")
        raise AssertionError("unreachable")
    return path


#: Marks for an encrypted cell (``-m needs_encryption`` selects them; they never skip in CI).
ENCRYPTED_MARKS = (pytest.mark.needs_encryption,)


def crypto_params() -> list[Any]:
    """``plaintext`` and ``encrypted`` as pytest params; the encrypted one carries :data:`ENCRYPTED_MARKS`."""
    return [
        pytest.param(False, id="plaintext"),
        pytest.param(True, id="encrypted", marks=ENCRYPTED_MARKS),
    ]


def free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    """A port that is free on ``host`` now (TCP by default)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_accepting(proc: EngineProc, host: str, port: int, timeout: float = 30) -> None:
    """Wait until ``proc`` accepts TCP connections on ``host:port`` (each probe connects and closes)."""

    def up() -> bool:
        assert proc.running(), f"{proc.name} exited: {proc.tail()}"
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False

    wait_until(up, timeout, f"{proc.name} to listen on {host}:{port}", interval=0.2)


def make_payload(folder: Path, size: int = PAYLOAD_SIZE) -> Path:
    """A folder of two files (``size`` bytes, not a multiple of any piece size, and a small one)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(size)
    big = size - 12_345
    with open(folder / "big.bin", "wb") as f:
        left = big
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n
    (folder / "notes.txt").write_bytes(rng.randbytes(12_345))
    return folder


def same_files(a: Path, b: Path) -> list[str]:
    """Relative paths of files that differ between two trees (missing, extra or other bytes)."""
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and not p.name.endswith(".aria2")}
    diff = sorted(str(p) for p in files_a ^ files_b)
    for rel in sorted(files_a & files_b):
        if not _same_bytes(a / rel, b / rel):
            diff.append(str(rel))
    return diff


def _same_bytes(x: Path, y: Path) -> bool:
    if x.stat().st_size != y.stat().st_size:
        return False
    with open(x, "rb") as fx, open(y, "rb") as fy:
        while True:
            bx, by = fx.read(1 << 20), fy.read(1 << 20)
            if bx != by:
                return False
            if not bx:
                return True


class EngineProc:
    """One engine process; its stdout and stderr go to ``log``; stopped by its own PID."""

    def __init__(
        self, name: str, args: Sequence[str], log: Path, cwd: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.p = subprocess.Popen(
            self.args,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )

    @property
    def pid(self) -> int:
        return self.p.pid

    def running(self) -> bool:
        return self.p.poll() is None

    def wait(self, timeout: float) -> int:
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} still running after {timeout:.0f}s: {self.tail()}") from None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.p.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.p.wait(timeout=5)
        self._log_file.close()


@contextlib.contextmanager
def engine_processes() -> Iterator[list[EngineProc]]:
    """A list to start engine processes into; each one is stopped by its PID on the way out."""
    made: list[EngineProc] = []
    try:
        yield made
    finally:
        for proc in made:
            proc.stop()


def json_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                out.append(event)
    return out


# ---------------------------------------------------------------------------
# p2pshare through its CLI


def _crypto_args(encrypted: bool) -> list[str]:
    return ["--encryption", "require"] if encrypted else []


def p2pshare_share(
    procs: list[Proc],
    path: Path,
    host: str,
    state: Path,
    *,
    peers: Sequence[str] = (),
    encrypted: bool = False,
    bootstrap: str | None = None,
) -> tuple[Proc, dict[str, Any]]:
    """``p2pshare share PATH`` on ``host``; returns the process and its ``listening`` event."""
    dht = ["--bootstrap", bootstrap] if bootstrap else ["--no-dht"]
    args = ["-v", "share", str(path), "--host", host, "--json", *dht, *_crypto_args(encrypted)]
    for peer in peers:
        args += ["--peer", peer]
    proc = start(procs, args, state)
    return proc, listening(proc, 120)


def p2pshare_get(
    procs: list[Proc],
    target: str,
    out: Path,
    host: str,
    state: Path,
    *,
    peers: Sequence[str] = (),
    encrypted: bool = False,
    timeout: float = TRANSFER_TIMEOUT,
) -> Proc:
    """``p2pshare get TARGET`` with only the given peers (no DHT), bounded by ``--timeout``."""
    args = ["-v", "get", target, "-o", str(out), "--host", host, "--no-dht", "--json"]
    args += ["--timeout", str(timeout), *_crypto_args(encrypted)]
    for peer in peers:
        args += ["--peer", peer]
    return start(procs, args, state)


def p2pshare_done(proc: Proc, timeout: float = TRANSFER_TIMEOUT + 30) -> dict[str, Any]:
    """Wait for ``get`` to exit 0 with a verified ``done`` event; return that event."""
    rc = proc.wait(timeout)
    events = proc.events()
    done = [e for e in events if e.get("event") == "done"]
    assert rc == 0 and done and done[-1]["verified"], f"p2pshare get failed (exit {rc}): {proc.describe()}"
    return done[-1]


def uploaded_by(proc: Proc) -> int:
    """The largest ``uploaded`` figure a p2pshare process reported so far."""
    return max((int(e.get("uploaded", 0)) for e in proc.events()), default=0)
