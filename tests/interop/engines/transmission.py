"""transmission-cli 3.00 on loopback, with its DHT, LPD, uTP, PEX and port mapping off.

Facts that shape this harness (issue 10): those switches exist only in
``settings.json`` inside its ``-g`` folder; it ignores 127.x peers that a tracker
hands it and keeps one connection per IP, so p2pshare dials it (``--peer``) from
another loopback address; it never exits after completing, so completion is seen
through its ``script-torrent-done`` hook, which writes a marker file.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.interop.engines.common import EngineProc, require_binary

#: Transmission's ``encryption`` setting: 0 prefers plaintext, 1 prefers MSE, 2 requires it.
ENCRYPTION_TOLERATED = 0
ENCRYPTION_REQUIRED = 2


def transmission_cli() -> str:
    """The transmission-cli binary, or skip the cell saying how to install it."""
    return require_binary("transmission-cli", "transmission-cli")


def write_settings(config: Path, *, host: str, port: int, download_dir: Path, encrypted: bool) -> Path:
    """The ``settings.json`` of a sealed transmission: only the peers we dial or that dial it."""
    config.mkdir(parents=True, exist_ok=True)
    marker = config / "done.txt"
    hook = config / "on-done.sh"
    hook.write_text(f'#!/bin/sh\necho "$TR_TORRENT_NAME" >> "{marker}"\n')
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    settings = {
        "dht-enabled": False,
        "lpd-enabled": False,
        "utp-enabled": False,
        "pex-enabled": False,
        "port-forwarding-enabled": False,
        "blocklist-enabled": False,
        "rpc-enabled": False,
        "peer-port": port,
        "peer-port-random-on-start": False,
        "bind-address-ipv4": host,
        "bind-address-ipv6": "::1",
        "encryption": ENCRYPTION_REQUIRED if encrypted else ENCRYPTION_TOLERATED,
        "download-dir": str(download_dir),
        "incomplete-dir-enabled": False,
        "speed-limit-down-enabled": False,
        "speed-limit-up-enabled": False,
        "alt-speed-enabled": False,
        "ratio-limit-enabled": False,
        "idle-seeding-limit-enabled": False,
        "start-added-torrents": True,
        "script-torrent-done-enabled": True,
        "script-torrent-done-filename": str(hook),
        "message-level": 2,
    }
    (config / "settings.json").write_text(json.dumps(settings, indent=2))
    return marker


def start(
    made: list[EngineProc],
    torrent: Path,
    download_dir: Path,
    *,
    host: str,
    port: int,
    workdir: Path,
    encrypted: bool = False,
) -> tuple[EngineProc, Path]:
    """transmission-cli on ``torrent``: seeds what ``download_dir`` holds, downloads the rest.

    Returns the process and the marker file its done-hook writes when the download completes.
    """
    config = workdir / "transmission"
    marker = write_settings(config, host=host, port=port, download_dir=download_dir, encrypted=encrypted)
    args = [transmission_cli(), "-g", str(config), "-w", str(download_dir), "-p", str(port), str(torrent)]
    proc = EngineProc("transmission-cli", args, workdir / "transmission.out", workdir)
    made.append(proc)
    return proc, marker
