"""p2pshare and webtorrent exchange a payload on loopback, both ways, plaintext and encrypted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.procs import processes
from tests.interop.engines import webtorrent
from tests.interop.engines.common import (
    PAYLOAD_SIZE,
    TRANSFER_TIMEOUT,
    crypto_params,
    engine_processes,
    free_port,
    make_payload,
    p2pshare_done,
    p2pshare_get,
    p2pshare_share,
    same_files,
    uploaded_by,
    wait_until,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(TRANSFER_TIMEOUT * 2 + 60)]


def _secure(encrypted: bool) -> int:
    # Encrypted: webtorrent's default settings, which open every connection with MSE.
    return webtorrent.SECURE_DEFAULT if encrypted else webtorrent.SECURE_OFF


@pytest.mark.parametrize("encrypted", crypto_params())
def test_webtorrent_downloads_from_p2pshare(tmp_path: Path, encrypted: bool) -> None:
    """webtorrent, given a p2pshare seeder's address, dials it and downloads the whole payload."""
    webtorrent.node()
    payload = make_payload(tmp_path / "payload")
    out = tmp_path / "wt_out"
    with processes() as procs, engine_processes() as made:
        seeder, ev = p2pshare_share(procs, payload, "127.0.0.12", tmp_path / "st", encrypted=encrypted)
        leech = webtorrent.start(
            made, "download", ev["torrent"], port=free_port("127.0.0.1"), workdir=tmp_path / "wt", out=out,
            peers=[f"127.0.0.12:{ev['port']}"], secure=_secure(encrypted),
        )
        done = webtorrent.wait_event(leech, lambda e: e.get("event") == "done", TRANSFER_TIMEOUT)
        assert done["downloaded"] >= PAYLOAD_SIZE
        assert same_files(payload, out / "payload") == []
        wait_until(lambda: uploaded_by(seeder) >= PAYLOAD_SIZE, 10, "p2pshare to report the upload")


@pytest.mark.parametrize("magnet", [False, True], ids=["torrent", "magnet"])
@pytest.mark.parametrize("encrypted", crypto_params())
def test_p2pshare_downloads_from_webtorrent(tmp_path: Path, encrypted: bool, magnet: bool) -> None:
    """p2pshare downloads what webtorrent seeds, from webtorrent's own .torrent or the info hash alone."""
    webtorrent.node()
    payload = make_payload(tmp_path / "data" / "payload")
    with processes() as procs, engine_processes() as made:
        port = free_port("127.0.0.1")
        seeder = webtorrent.start(
            made, "seed", str(payload), port=port, workdir=tmp_path / "wt", secure=_secure(encrypted)
        )
        seeding = webtorrent.wait_event(seeder, lambda e: e.get("event") == "seeding", 120)
        webtorrent.wait_event(seeder, lambda e: e.get("event") == "listening", 30)
        target = seeding["info_hash"] if magnet else seeding["torrent"]
        out = tmp_path / "out"
        leech = p2pshare_get(
            procs, target, out, "127.0.0.13", tmp_path / "st", peers=[f"127.0.0.1:{port}"],
            encrypted=encrypted,
        )
        done = p2pshare_done(leech)
        assert done["total_size"] == PAYLOAD_SIZE
        assert same_files(payload, out / "payload") == []
