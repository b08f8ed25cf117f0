"""Whole sessions over uTP on loopback: the engine, files and all, plus CPU per GiB.

1. p2pshare -> p2pshare, 256 MiB: a seeding session and a downloading session, each
   in its own process, ``--transport utp``; then the same over ``--transport tcp``
   (the figures behind the connection policy's default order).  Goal (issue 14):
   uTP >= 150 MB/s; the exit code is 1 when it is missed.
2. From a libtorrent uTP-only seeder (TCP off), side by side in the same run: a
   p2pshare session (``--transport utp``) and libtorrent's own uTP leecher.
3. BEP 55 in the NAT lab (tests/holepunch_lab: h1 and h2 behind NATs without port
   mapping, a relay on the "internet"): time from asking to h1's first payload byte at h2;
   and on loopback (the direct dial refused by this program): to the target's handshake.

Figures go to ``benchmarks/results/utp_session.txt``.  Downloads go to ``/dev/shm``
when it exists (the transport is measured, not the disk), else ``benchmarks/.work``;
``$BENCH_OUT`` overrides; they are deleted after each run.

    python benchmarks/utp_session_bench.py [--mib 256] [--no-libtorrent]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from p2pshare.config import DEFAULT_CONFIG, Config  # noqa: E402

WORK = HERE / ".work"
RESULTS = HERE / "results" / "utp_session.txt"
GOAL_MBPS = 150.0
SEEDER, LEECHER = "127.0.0.2", "127.0.0.3"


def _config(mode: str) -> Config:
    return replace(DEFAULT_CONFIG, transport=replace(DEFAULT_CONFIG.transport, mode=mode))


def _out(tag: str) -> Path:
    shm = Path("/dev/shm")
    base = Path(os.environ["BENCH_OUT"]) if os.environ.get("BENCH_OUT") else (shm if shm.is_dir() else WORK)
    out = base / f"out-session-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------- children


async def seed_child(torrent: Path, data: Path, mode: str) -> None:
    """Seed ``data`` until stdin closes; print the port first."""
    from p2pshare.core.metainfo import parse_torrent
    from p2pshare.engine.params import TorrentParams
    from p2pshare.engine.session import Session

    info = parse_torrent(torrent.read_bytes()).info
    session = Session(_config(mode), listen_host=SEEDER)
    await session.start()
    params = TorrentParams(info.info_hash, info=info, download_dir=data.parent, assume_complete=True)
    await session.add_torrent(params)
    print(json.dumps({"port": session.port}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    await session.close()


async def leech_child(torrent: Path, host: str, port: int, mode: str) -> dict[str, Any]:
    """Download everything from ``host:port``; elapsed and CPU seconds of this process."""
    from p2pshare.core.metainfo import parse_torrent
    from p2pshare.engine.params import TorrentParams
    from p2pshare.engine.session import Session

    info = parse_torrent(torrent.read_bytes()).info
    out = _out(mode)
    session = Session(_config(mode), listen_host=LEECHER)
    await session.start()
    t = await session.add_torrent(TorrentParams(info.info_hash, info=info, download_dir=out))
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    t.add_peers([(host, port)], "bench")
    async with asyncio.timeout(900):
        await t.completed.wait()
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    st = t.status()
    await session.close()
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": elapsed, "cpu": cpu, "bytes": info.total_length, "failed": st.pieces_failed}


def _child(args: list[str], timeout: float = 1200) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _line(label: str, r: dict[str, Any]) -> tuple[str, float]:
    rate = r["bytes"] / r["seconds"] / 1e6
    gib = r["bytes"] / 2**30
    text = f"{label} {rate:7.1f} MB/s ({r['seconds']:.2f} s), CPU per GiB {r['cpu'] / gib:.2f} s"
    if r.get("failed"):
        text += f", {r['failed']} pieces failed"
    return text, rate


# ---------------------------------------------------------------------------- sections


def p2pshare_section(mib: int, torrent: Path, data: Path) -> tuple[list[str], float]:
    lines: list[str] = []
    best_utp = 0.0
    for mode in ("utp", "tcp", "utp"):
        seeder = subprocess.Popen(
            [sys.executable, __file__, "--seed", str(torrent), str(data), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert seeder.stdout is not None and seeder.stdin is not None
            port = json.loads(seeder.stdout.readline())["port"]
            r = _child(["--leech", str(torrent), SEEDER, str(port), mode])
        finally:
            if seeder.stdin is not None:
                seeder.stdin.close()
            try:
                seeder.wait(30)
            except subprocess.TimeoutExpired:
                seeder.kill()
                seeder.wait(10)
        text, rate = _line(f"[{mib}M, p2pshare session -> p2pshare session] {mode:>3}", r)
        if mode == "utp":
            best_utp = max(best_utp, rate)
        lines.append(text)
        print(text, flush=True)
    lines.append(f"[{mib}M] best uTP session {best_utp:.1f} MB/s (goal >= {GOAL_MBPS:.0f} MB/s)")
    print(lines[-1], flush=True)
    return lines, best_utp


def libtorrent_section(mib: int, torrent: Path, data: Path) -> list[str]:
    from utp_bench import UTP_ONLY

    from tests.interop.ltpeer import add_torrent, is_seeding, lt_port, lt_session, wait_for

    ses = lt_session(SEEDER, **UTP_ONLY)
    handle = add_torrent(ses, torrent.read_bytes(), data.parent)
    wait_for(lambda: is_seeding(handle), 300, "libtorrent seeder to finish checking")
    port = lt_port(ses)
    lines = []
    try:
        for kind, label in (("--lt-leech", "libtorrent uTP leecher"), ("--leech", "p2pshare session (utp)")):
            extra = ["utp"] if kind == "--leech" else []
            r = _child([kind, str(torrent), SEEDER, str(port), *extra])
            text, _ = _line(f"[{mib}M, libtorrent uTP-only seeder] {label}", r)
            lines.append(text)
            print(text, flush=True)
    finally:
        ses.pause()
        del ses
    return lines


async def holepunch_first_byte() -> float:
    """Seconds from a refused direct dial to the target's first bytes (its handshake) via a relay.

    Loopback, no NAT: the asker's dials to the target are refused by this program, so the
    only way in is BEP 55 (rendezvous at the relay, connect to both, uTP both ways).
    """
    import tempfile

    from p2pshare.engine import events as ev
    from p2pshare.engine.create import create_torrent
    from p2pshare.engine.params import TorrentParams
    from p2pshare.engine.session import Session

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "hp.bin"
        src.write_bytes(os.urandom(4 * 1024 * 1024))
        info = create_torrent(src).info
        relay = Session(listen_host="127.0.0.11")
        target = Session(listen_host="127.0.0.12")
        asker = Session(listen_host="127.0.0.13")
        for s in (relay, target, asker):
            await s.start()
        met = asyncio.get_running_loop().create_future()

        def on_event(event: ev.EngineEvent) -> None:
            is_target = isinstance(event, ev.PeerConnected) and event.address.startswith("127.0.0.12:")
            if is_target and not met.done():
                met.set_result(time.perf_counter())

        try:
            # three leechers (no seed: seeds drop each other, and the relay must stay connected)
            await relay.add_torrent(TorrentParams(info.info_hash, info=info, download_dir=Path(tmp) / "r"))
            await target.add_torrent(TorrentParams(info.info_hash, info=info, download_dir=Path(tmp) / "t"))
            leech = TorrentParams(info.info_hash, info=info, download_dir=Path(tmp) / "a")
            a = await asker.add_torrent(leech, on_event=on_event)
            relay_addr = ("127.0.0.11", relay.port)
            t_addr = ("127.0.0.12", target.port)
            real = asker.connect

            async def nat(address: Any) -> Any:  # the direct dial to the target fails
                if tuple(address) == t_addr:
                    raise ConnectionRefusedError("behind a NAT")
                return await real(address)

            asker.connect = nat  # type: ignore[method-assign]
            target.torrents[info.info_hash.value].add_peers([relay_addr], "bench")
            a.add_peers([relay_addr], "bench")
            async with asyncio.timeout(20):
                while len(relay.torrents[info.info_hash.value].holepunch.supporting()) < 2:
                    await asyncio.sleep(0.005)
            t0 = time.perf_counter()
            a.add_peers([t_addr], "bench")
            async with asyncio.timeout(30):
                t1 = await met
            return float(t1 - t0)
        finally:
            for s in (asker, target, relay):
                await s.close()


def holepunch_lab() -> list[str]:
    """Time to first byte through the NAT lab (tests/holepunch_lab), when namespaces can be made."""
    import tempfile

    lines = []
    for flags, label in (
        ([], "after failed direct dials"),
        (["--pex-unreachable"], "at once (PEX: unreachable)"),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            argv = ["unshare", "-m", "-n", sys.executable, "-m", "tests.holepunch_lab.run", "--workdir", tmp]
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            try:
                proc = subprocess.run(
                    [*argv, *flags], capture_output=True, text=True, timeout=200, cwd=ROOT, env=env
                )
                r = json.loads(proc.stdout.strip().splitlines()[-1])
            except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
                lines.append(f"# NAT lab not run ({type(exc).__name__}): needs root for unshare -m -n")
                break
            first = r.get("first_byte")
            text = "no byte" if first is None else f"{first * 1e3:.0f} ms"
            lines.append(
                f"[4M, NAT lab, h2 <- h1 via a p2pshare relay, {label}] first byte {text},"
                f" whole file {r.get('elapsed', 0):.2f} s, complete {bool(r.get('complete'))}"
            )
        print(lines[-1], flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--no-libtorrent", action="store_true")
    parser.add_argument("--seed", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--leech", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--lt-leech", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        t, d, mode = args.seed
        asyncio.run(seed_child(Path(t), Path(d), mode))
        return 0
    if args.leech:
        t, h, p, mode = args.leech
        print(json.dumps(asyncio.run(leech_child(Path(t), h, int(p), mode))))
        return 0
    if args.lt_leech:
        from utp_bench import leech_libtorrent

        t, h, p = args.lt_leech
        print(json.dumps(leech_libtorrent(Path(t), h, int(p))))
        return 0

    from utp_bench import _payload

    data, torrent = _payload(args.mib)
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    lines = [f"# uTP session benchmark, {stamp} UTC, python {platform.python_version()}"]
    section, best = p2pshare_section(args.mib, torrent, data)
    lines += section
    if not args.no_libtorrent:
        try:
            import libtorrent  # noqa: F401
        except ImportError:
            lines.append("# libtorrent not installed: comparison skipped")
        else:
            lines += libtorrent_section(args.mib, torrent, data)
    lines += holepunch_lab()
    hp = asyncio.run(holepunch_first_byte())
    lines.append(f"[BEP 55, loopback, no NAT] refused dial -> rendezvous -> uTP handshake {hp * 1e3:.1f} ms")
    print(lines[-1], flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    return 0 if best >= GOAL_MBPS else 1


if __name__ == "__main__":
    sys.exit(main())
