"""Run one download in its own process, for kill-and-resume tests (not a test module).

Usage: python -m tests.engine.resume_driver TORRENT OUT_DIR RESUME_FILE HOST PEER_HOST:PEER_PORT

Prints one JSON line when the torrent is started (pieces found by the resume check),
then one when it is complete, and exits 0.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from p2pshare.core.metainfo import parse_torrent
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.session import Session


async def main(torrent: Path, out: Path, resume: Path, host: str, peer: str) -> int:
    meta = parse_torrent(torrent.read_bytes())
    session = Session(listen_host=host)
    await session.start()
    t = await session.add_torrent(
        TorrentParams(meta.info.info_hash, info=meta.info, download_dir=out, resume_path=resume)
    )
    print(json.dumps({"started": t.status().have_pieces, "of": meta.info.num_pieces}), flush=True)
    peer_host, peer_port = peer.rsplit(":", 1)
    t.add_peers([(peer_host, int(peer_port))], "test")
    async with asyncio.timeout(60):
        await t.completed.wait()
    print(json.dumps({"done": True, "downloaded": t.downloaded}), flush=True)
    await session.close()
    return 0


if __name__ == "__main__":
    a = sys.argv[1:]
    sys.exit(asyncio.run(main(Path(a[0]), Path(a[1]), Path(a[2]), a[3], a[4])))
