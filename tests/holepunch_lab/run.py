"""Build the hole-punch lab and run one scenario (inside ``unshare -m -n``); one JSON line out.

unshare -m -n python -m tests.holepunch_lab.run --workdir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

from p2pshare.engine.create import create_torrent
from tests.holepunch_lab.netlab import build


def _log(path: Path, logs: list[IO[str]]) -> IO[str]:
    f = path.open("w")  # closed by main's finally
    logs.append(f)
    return f


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--size", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--pex-unreachable", action="store_true", help="h2 asks for a rendezvous at once")
    parser.add_argument("--relay", choices=["p2pshare", "libtorrent"], default="p2pshare")
    parser.add_argument("--utp-only", action="store_true", help="h1 and h2 run --transport utp")
    parser.add_argument("--timeout", type=float, default=60.0, help="bound on h2's download")
    args = parser.parse_args()
    work = Path(args.workdir)
    (work / "seed").mkdir(parents=True, exist_ok=True)
    src = work / "seed" / "payload.bin"
    src.write_bytes(os.urandom(args.size))
    torrent = work / "payload.torrent"
    torrent.write_bytes(create_torrent(src).torrent)
    build()
    me = [sys.executable, "-m", "tests.holepunch_lab.agent"]
    common = ["--torrent", str(torrent)]
    procs: list[subprocess.Popen[str]] = []
    logs: list[IO[str]] = []

    def spawn(ns: str, *extra: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            ["ip", "netns", "exec", ns, *me, *extra, *common],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=_log(work / f"{extra[0]}.log", logs),
            text=True,
        )
        procs.append(p)
        return p

    def ready(p: subprocess.Popen[str]) -> None:
        assert p.stdout is not None
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"an agent died (logs in {work})")

    try:
        (work / "relay").mkdir(exist_ok=True)
        relay = spawn(
            "inet", "relay" if args.relay == "p2pshare" else "ltrelay", "--out", str(work / "relay")
        )
        ready(relay)
        # libtorrent finds a rendezvous target by the address of its connection to it: uTP, so
        # that address is the host's NAT mapping of its listening port, not a TCP ephemeral one
        mode = ["--transport", "utp"] if args.relay == "libtorrent" or args.utp_only else []
        seed = spawn("h1", "seed", "--data", str(work / "seed"), *mode)
        ready(seed)
        flags = ["--pex-unreachable"] if args.pex_unreachable else []
        leech = spawn(
            "h2", "leech", "--out", str(work / "leech"), "--timeout", str(args.timeout), *flags, *mode
        )
        ready(leech)
        assert leech.stdout is not None
        out, _ = leech.communicate(timeout=args.timeout + 30)
        lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        result = lines[-1] if lines else {"error": f"no result (logs in {work})"}
        result["same"] = (work / "leech" / "payload.bin").is_file() and (
            (work / "leech" / "payload.bin").read_bytes() == src.read_bytes()
        )
        print(json.dumps(result), flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                if p.stdin is not None:
                    p.stdin.close()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        for f in logs:
            f.close()


if __name__ == "__main__":
    main()
