"""aria2c on loopback: downloads (from a tracker's peers or the DHT) and seeds, nothing else on.

aria2 takes peers only from a tracker or the DHT (it has no option to dial a given
address), so a download cell hands it a loopback tracker
(:mod:`tests.helpers.http_tracker`) or a p2pshare DHT node as its only entry point.
LPD and peer exchange are off; the DHT is off unless asked for, and then its routing
table lives in the test's folder (never ``~/.cache/aria2/dht.dat``, which could hold
public nodes).  aria2 has no UPnP / NAT-PMP.
"""

from __future__ import annotations

from pathlib import Path

from tests.interop.engines.common import EngineProc, require_binary


def aria2c() -> str:
    """The aria2c binary, or skip the cell saying how to install it."""
    return require_binary("aria2c", "aria2")


def _base(host: str, port: int, workdir: Path, encrypted: bool) -> list[str]:
    args = [
        aria2c(),
        "--no-conf=true",
        f"--interface={host}",
        f"--listen-port={port}",
        "--disable-ipv6=true",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--enable-dht6=false",
        "--summary-interval=0",
        "--console-log-level=warn",
        "--file-allocation=none",
        "--bt-save-metadata=false",
        "--bt-max-peers=8",
        f"--log={workdir / 'aria2.log'}",
        "--log-level=info",
    ]
    if encrypted:  # MSE/PE only: refuse plaintext both ways
        args += ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]
    return args


def _dht(entry: str | None, dht_port: int | None, workdir: Path) -> list[str]:
    if entry is None:
        return ["--enable-dht=false"]
    assert dht_port is not None
    return [
        "--enable-dht=true",
        f"--dht-entry-point={entry}",
        f"--dht-listen-port={dht_port}",
        f"--dht-file-path={workdir / 'dht.dat'}",
    ]


def download(
    made: list[EngineProc],
    target: str,
    out: Path,
    *,
    host: str,
    port: int,
    workdir: Path,
    encrypted: bool = False,
    tracker: str | None = None,
    dht_entry: str | None = None,
    dht_port: int | None = None,
) -> EngineProc:
    """aria2c downloads ``target`` (a .torrent path or a magnet link) into ``out``, then exits 0."""
    args = _base(host, port, workdir, encrypted) + _dht(dht_entry, dht_port, workdir)
    args += [f"--dir={out}", "--seed-time=0", "--bt-stop-timeout=120"]
    if tracker is not None:
        args.append(f"--bt-tracker={tracker}")
    proc = EngineProc("aria2c", [*args, target], workdir / "aria2.out", workdir)
    made.append(proc)
    return proc


def seed(
    made: list[EngineProc],
    torrent: Path,
    data_parent: Path,
    *,
    host: str,
    port: int,
    workdir: Path,
    encrypted: bool = False,
) -> EngineProc:
    """aria2c checks the data under ``data_parent`` against ``torrent`` and seeds it until stopped."""
    args = _base(host, port, workdir, encrypted) + _dht(None, None, workdir)
    args += [f"--dir={data_parent}", "--check-integrity=true", "--seed-ratio=0.0"]
    proc = EngineProc("aria2c", [*args, str(torrent)], workdir / "aria2.out", workdir)
    made.append(proc)
    return proc
