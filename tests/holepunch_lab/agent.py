"""The programs the hole-punch lab runs in its namespaces: a seeder (h1), a relay (inet), a leecher (h2).

    python -m tests.holepunch_lab.agent seed|relay|ltrelay|leech --torrent T --data DIR [--out DIR]

Each prints JSON lines: ``{"ready": ...}`` once listening and connected to the relay,
and the leecher ``{"done": ...}`` with its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from p2pshare.config import DEFAULT_CONFIG
from p2pshare.core.metainfo import parse_torrent
from p2pshare.core.types import PeerAddress
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.session import Session
from tests.holepunch_lab.netlab import R1_WAN, RELAY

PORT = 6881
CONFIG = replace(DEFAULT_CONFIG, swarm=replace(DEFAULT_CONFIG.swarm, connect_timeout=2.0))


def say(**kw: object) -> None:
    print(json.dumps(kw), flush=True)


def lt_relay(args: argparse.Namespace) -> None:
    """libtorrent as the relay: uTP on, downloading at 1 byte/s (a leecher that stays connected to the seed,
    with nothing to give h2); it relays ut_holepunch itself."""
    import libtorrent as lt

    from tests.interop.ltpeer import limit_local_peers_too, lt_port, lt_session

    mask = lt.alert.category_t.error_notification | lt.alert.category_t.peer_log_notification
    ses = lt_session(RELAY, PORT, enable_incoming_utp=True, enable_outgoing_utp=True, alert_mask=mask)
    ti = lt.torrent_info(lt.bdecode(Path(args.torrent).read_bytes()))
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = args.out
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    handle = ses.add_torrent(params)
    limit_local_peers_too(ses)
    handle.set_download_limit(1)
    lt_port(ses)
    say(ready="ltrelay")
    import threading

    done = threading.Event()

    def log_alerts() -> None:  # libtorrent's own account of the holepunch messages, into our log
        while not done.is_set():
            ses.wait_for_alert(200)
            for a in ses.pop_alerts():
                text = a.message()
                if "HOLEPUNCH" in text.upper() or "EXTENDED" in text.upper():
                    print(text, file=sys.stderr, flush=True)

    threading.Thread(target=log_alerts, daemon=True).start()
    sys.stdin.read()  # until the driver ends us
    done.set()
    ses.pause()


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format=f"{args.role} %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("p2pshare").setLevel(logging.DEBUG)
    info = parse_torrent(Path(args.torrent).read_bytes()).info
    config = replace(CONFIG, transport=replace(CONFIG.transport, mode=args.transport))
    if args.role == "relay":  # uploads nothing: h2's bytes can only come from h1, through the punched hole
        config = replace(config, choker=replace(config.choker, regular_slots=0, optimistic_slots=0))
    session = Session(config, listen_host="0.0.0.0", listen_port=PORT)
    await session.start()
    try:
        if args.role == "seed":
            params = TorrentParams(
                info.info_hash, info=info, download_dir=Path(args.data), assume_complete=True
            )
        else:
            params = TorrentParams(info.info_hash, info=info, download_dir=Path(args.out))
        t = await session.add_torrent(params)
        if args.role == "relay":  # downloads nothing either: it stays a leecher, connected to the seed
            t._request_more = lambda peer, now: None  # type: ignore[method-assign]
        if args.role != "relay":
            t.add_peers([(RELAY, PORT)], "lab")
            async with asyncio.timeout(20):
                while not any(p.handshake_done for p in t.peers.values()):
                    await asyncio.sleep(0.01)
        say(ready=args.role)
        if args.role != "leech":
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the driver ends us
            return
        t0 = time.monotonic()
        h1 = PeerAddress(R1_WAN, PORT)  # h1 as the world sees it: behind r1, no mapping
        if args.pex_unreachable:  # PEX told us: h1 speaks uTP, is not reachable, the relay knows it
            t.note_pex_peer(h1, PeerAddress(RELAY, PORT), utp=True, reachable=False)
        else:  # found some other way: direct dials fail first, then the rendezvous
            t.add_peers([h1], "lab")
        first = None
        deadline = t0 + args.timeout
        while not t.completed.is_set() and time.monotonic() < deadline:
            if first is None and t.transfer_by_host().get(R1_WAN, (0, 0))[0] > 0:
                first = time.monotonic() - t0
            await asyncio.sleep(0.005)
        hp = t.holepunch.stats
        say(
            done=True,
            first_byte=first,
            elapsed=time.monotonic() - t0,
            from_hosts={h: d for h, (d, _) in t.transfer_by_host().items() if d},
            rendezvous_sent=hp.rendezvous_sent,
            punched=hp.dials,
            connects=hp.connects_received,
            ignored=hp.ignored,
            complete=t.completed.is_set(),
            errors={k.name: v for k, v in hp.errors_received.items()},
        )
    finally:
        await session.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["seed", "relay", "leech", "ltrelay"])
    parser.add_argument("--transport", default="both")
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--data", default=".")
    parser.add_argument("--out", default=".")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--pex-unreachable", action="store_true")
    parsed = parser.parse_args()
    if parsed.role == "ltrelay":
        lt_relay(parsed)
    else:
        asyncio.run(main(parsed))
