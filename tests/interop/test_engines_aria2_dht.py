"""aria2c, given only a magnet link and a p2pshare DHT node, finds a p2pshare seeder and downloads.

Found here: aria2 1.36 takes a loopback ``--dht-entry-point`` as it is (it pings it,
then about 6 s after start runs get_peers through it), answers p2pshare's KRPC and
announces itself back; the seeder's address comes from the node's get_peers reply.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.procs import processes, start
from tests.interop.engines import aria2
from tests.interop.engines.common import (
    PAYLOAD_SIZE,
    TRANSFER_TIMEOUT,
    engine_processes,
    free_port,
    make_payload,
    p2pshare_share,
    same_files,
    uploaded_by,
    wait_until,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(TRANSFER_TIMEOUT * 2 + 60)]


def test_aria2_finds_a_p2pshare_seeder_through_a_p2pshare_dht_node(tmp_path: Path) -> None:
    """With no tracker and no address, aria2c finds the seeder through `p2pshare dht` and downloads it all."""
    aria2.aria2c()
    payload = make_payload(tmp_path / "payload")
    out = tmp_path / "aria2_out"
    with processes() as procs, engine_processes() as made:
        node = start(procs, ["dht", "--host", "127.0.0.1", "--port", "0", "--no-bootstrap", "--json"],
                     tmp_path / "st_dht")
        dht = node.wait_for_event(lambda e: e.get("event") == "listening", 60)
        entry = f"127.0.0.1:{dht['port']}"
        seeder, ev = p2pshare_share(procs, payload, "127.0.0.14", tmp_path / "st", bootstrap=entry)
        assert ev["dht_port"], "the seeder runs no DHT node"
        magnet = f"magnet:?xt=urn:btih:{ev['info_hash']}"
        leech = aria2.download(
            made, magnet, out, host="127.0.0.15", port=free_port("127.0.0.15"), workdir=tmp_path / "aria2",
            dht_entry=entry, dht_port=free_port("127.0.0.15", kind=socket.SOCK_DGRAM),
        )
        rc = leech.wait(TRANSFER_TIMEOUT)
        assert rc == 0, f"aria2c exited {rc}: {leech.tail()}"
        assert same_files(payload, out / "payload") == []
        wait_until(lambda: uploaded_by(seeder) >= PAYLOAD_SIZE, 10, "p2pshare to report the upload")
