"""Run ``p2pshare`` in subprocesses on loopback: bounded waits, JSON events, kill by PID."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_files"


class Proc:
    """One ``python -m p2pshare ...`` process, its output collected by two reader threads."""

    def __init__(self, args: list[str], state_dir: Path, cwd: Path | None = None) -> None:
        env = dict(os.environ)
        env["P2PSHARE_STATE_DIR"] = str(state_dir)
        env["PYTHONUNBUFFERED"] = "1"
        for name in ("P2PSHARE_BOOTSTRAP", "P2PSHARE_PORT", "P2PSHARE_HOST"):
            env.pop(name, None)
        self.args = args
        self.p = subprocess.Popen(
            [sys.executable, "-m", "p2pshare", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd or ROOT,
            text=True,
            encoding="utf-8",
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._read, args=(self.p.stdout, self.out, True), daemon=True),
            threading.Thread(target=self._read, args=(self.p.stderr, self.err, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream: Any, sink: list[str], feed: bool) -> None:
        for line in stream:
            sink.append(line)
            if feed:
                self._lines.put(line)
        if feed:
            self._lines.put(None)

    @property
    def pid(self) -> int:
        return self.p.pid

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out if line.strip()]

    def wait_for_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """The next JSON event that satisfies ``predicate`` (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no matching event within {timeout}s from {self.args}: {self.describe()}"
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"process ended before the event: {self.describe()}")
            if line.strip():
                event = json.loads(line)
                if predicate(event):
                    return event

    def wait(self, timeout: float) -> int:
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.args} still running after {timeout}s: {self.describe()}") from None
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def signal(self, sig: int = signal.SIGINT) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.p.pid, sig)

    def kill(self) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.p.wait(timeout=10)
        for stream in (self.p.stdout, self.p.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def describe(self) -> str:
        return f"stdout={''.join(self.out)[-2000:]!r} stderr={''.join(self.err)[-2000:]!r}"


@contextlib.contextmanager
def processes() -> Iterator[list[Proc]]:
    """A list to start processes into; every one is killed by its PID on the way out."""
    procs: list[Proc] = []
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()


def start(procs: list[Proc], args: list[str], state_dir: Path, cwd: Path | None = None) -> Proc:
    state_dir.mkdir(parents=True, exist_ok=True)
    proc = Proc(args, state_dir, cwd)
    procs.append(proc)
    return proc


def listening(proc: Proc, timeout: float = 30.0) -> dict[str, Any]:
    return proc.wait_for_event(lambda e: e.get("event") == "listening", timeout)


def same_tree(a: Path, b: Path) -> bool:
    """Every regular file under ``a`` exists under ``b`` with the same bytes, and nothing more."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and not p.name.startswith("."))
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if files_a != files_b:
        return False
    return all((a / rel).read_bytes() == (b / rel).read_bytes() for rel in files_a)
