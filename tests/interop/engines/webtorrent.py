"""webtorrent 3 on loopback through a small node driver (``webtorrent_peer.mjs``).

webtorrent-cli has no switch for its DHT, trackers, LSD or UPnP / NAT-PMP, so the
driver uses the webtorrent library that ``make tools`` installs with it, with all
of them off.  ``secure`` is webtorrent's protocol-encryption level: 0 plaintext,
1 its default (MSE first, then plaintext), 2 RC4 only.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.interop.engines.common import ENGINES_DIR, EngineProc, json_lines, skip_missing

DRIVER = Path(__file__).with_name("webtorrent_peer.mjs")
SECURE_OFF = 0
SECURE_DEFAULT = 1


def node() -> str:
    """The node binary, when webtorrent is installed in .engines; else skip the cell."""
    path = shutil.which("node")
    if path is None:
        skip_missing("node", "apt-get install nodejs npm")
        raise AssertionError("unreachable")
    if not (ENGINES_DIR / "node_modules" / "webtorrent" / "index.js").is_file():
        skip_missing(f"webtorrent (in {ENGINES_DIR})", "bash scripts/install-engines.sh")
    return path


def start(
    made: list[EngineProc],
    mode: str,
    input_: str,
    *,
    port: int,
    workdir: Path,
    out: Path | None = None,
    peers: Sequence[str] = (),
    secure: int = SECURE_OFF,
) -> EngineProc:
    """The driver in ``mode`` "seed" (``input_`` a path) or "download" (a .torrent path or a magnet)."""
    config = {
        "engines": str(ENGINES_DIR),
        "mode": mode,
        "input": input_,
        "out": str(out or workdir / "out"),
        "port": port,
        "peers": list(peers),
        "secure": secure,
        "torrent_out": str(workdir / "webtorrent.torrent"),
    }
    args = [node(), str(DRIVER), json.dumps(config)]
    proc = EngineProc("webtorrent", args, workdir / "webtorrent.out", workdir)
    made.append(proc)
    return proc


def wait_event(
    proc: EngineProc, predicate: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """The first line of the driver's output that satisfies ``predicate``, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        for event in json_lines(proc.log):
            if event.get("event") == "error":
                raise AssertionError(f"webtorrent failed: {event.get('message')}")
            if predicate(event):
                return event
        if not proc.running():
            raise AssertionError(f"webtorrent exited ({proc.p.returncode}) before the event: {proc.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching webtorrent event within {timeout:.0f}s: {proc.tail()}")
        time.sleep(0.2)
