"""The live view of a real `get` in a pseudo-terminal at 80 and 160 columns: no wrapped line, a live rate."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.e2e.procs import ROOT, listening, processes, start

pytestmark = pytest.mark.slow

CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
FRAME = re.compile(r"(\d+\.\d) MiB/(\d+\.\d) MiB  (\d+\.\d+) MiB/s")


def run_in_pty(args: list[str], cols: int, rows: int, state: Path, timeout: float) -> tuple[int, str]:
    """Run ``p2pshare ARGS`` on a pty of ``cols`` x ``rows``; its exit code and everything it drew."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env.update(TERM="xterm-256color", P2PSHARE_STATE_DIR=str(state), PYTHONUNBUFFERED="1")
    p = subprocess.Popen(
        [sys.executable, "-m", "p2pshare", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        code = p.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        os.close(master)
    return code, out.decode("utf-8", "replace")


def visible_lines(raw: str) -> list[str]:
    return [line for line in re.split(r"\r\n|\n|\r", CSI.sub("", raw)) if line.strip()]


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-file share big enough for a few redraws mid-transfer."""
    root = tmp_path_factory.mktemp("payload") / ("a-long-folder-name-" * 4 + "end")
    root.mkdir()
    (root / "first-file-with-a-rather-long-name.bin").write_bytes(os.urandom(192 * 1024 * 1024))
    (root / "second.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    return root


@pytest.mark.parametrize(("cols", "rows", "host"), [(80, 24, "127.0.0.41"), (160, 48, "127.0.0.43")])
def test_live_view_fits_and_shows_a_rate_mid_transfer(
    cols: int, rows: int, host: str, payload: Path, tmp_path: Path
) -> None:
    """No drawn line is wider than the terminal, and every mid-transfer frame has a non-zero rate."""
    with processes() as procs:
        sharer = start(procs, ["share", str(payload), "--host", host, "--no-dht", "--json"], tmp_path / "s1")
        ready = listening(sharer, 120)
        args = ["get", ready["info_hash"], "-o", str(tmp_path / "out"), "--no-dht", "--peers"]
        args += ["--peer", f"{host}:{ready['port']}", "--timeout", "60"]
        code, raw = run_in_pty(args, cols, rows, tmp_path / "s2", 120)
    lines = visible_lines(raw)
    assert code == 0, raw[-3000:]
    copyable = ("  saved in ",)  # printed whole on purpose: a path to copy
    too_wide = [line for line in lines if len(line) > cols and not line.startswith(copyable)]
    assert not too_wide, too_wide
    frames = [tuple(map(float, m.groups())) for line in lines if (m := FRAME.search(line))]
    middle = [f for f in frames if 0 < f[0] < f[1]]
    assert middle, lines[-20:]
    assert all(rate > 0 for _, _, rate in middle), middle
    assert any(line.startswith("done: ") for line in lines)
