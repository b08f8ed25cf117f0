"""p2pshare and transmission-cli exchange a payload on loopback, both ways, plaintext and encrypted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.procs import processes, start
from tests.interop.engines import transmission
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
    wait_accepting,
    wait_until,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(TRANSFER_TIMEOUT * 2 + 60)]


def _create(procs: list, payload: Path, torrent: Path, state: Path) -> str:
    create = start(procs, ["create", str(payload), "-o", str(torrent), "--json"], state)
    assert create.wait(120) == 0, create.describe()
    return str(next(e for e in create.events() if "info_hash" in e)["info_hash"])


@pytest.mark.parametrize("encrypted", crypto_params())
def test_transmission_downloads_from_p2pshare(tmp_path: Path, encrypted: bool) -> None:
    """transmission-cli, dialed by a p2pshare seeder, downloads the whole payload and runs its done-hook."""
    transmission.transmission_cli()
    payload = make_payload(tmp_path / "payload")
    torrent = tmp_path / "payload.torrent"
    out = tmp_path / "tr_out"
    with processes() as procs, engine_processes() as made:
        _create(procs, payload, torrent, tmp_path / "st0")
        port = free_port("127.0.0.8")
        tr, marker = transmission.start(
            made, torrent, out, host="127.0.0.8", port=port, workdir=tmp_path / "tr", encrypted=encrypted
        )
        wait_accepting(tr, "127.0.0.8", port)
        seeder, _ = p2pshare_share(
            procs, payload, "127.0.0.9", tmp_path / "st", peers=[f"127.0.0.8:{port}"], encrypted=encrypted
        )
        wait_until(marker.exists, TRANSFER_TIMEOUT, f"transmission's done-hook ({tr.tail()})", interval=0.5)
        assert marker.read_text().strip() == "payload"
        assert same_files(payload, out / "payload") == []
        wait_until(lambda: uploaded_by(seeder) >= PAYLOAD_SIZE, 10, "p2pshare to report the upload")


@pytest.mark.parametrize("magnet", [False, True], ids=["torrent", "magnet"])
@pytest.mark.parametrize("encrypted", crypto_params())
def test_p2pshare_downloads_from_transmission(tmp_path: Path, encrypted: bool, magnet: bool) -> None:
    """p2pshare downloads from a transmission-cli seeder, from the .torrent or from the info hash alone."""
    transmission.transmission_cli()
    payload = make_payload(tmp_path / "data" / "payload")
    torrent = tmp_path / "payload.torrent"
    with processes() as procs, engine_processes() as made:
        info_hash = _create(procs, payload, torrent, tmp_path / "st0")
        port = free_port("127.0.0.10")
        tr, _ = transmission.start(
            made, torrent, payload.parent, host="127.0.0.10", port=port, workdir=tmp_path / "tr",
            encrypted=encrypted,
        )
        wait_accepting(tr, "127.0.0.10", port)
        out = tmp_path / "out"
        leech = p2pshare_get(
            procs, info_hash if magnet else str(torrent), out, "127.0.0.11", tmp_path / "st",
            peers=[f"127.0.0.10:{port}"], encrypted=encrypted,
        )
        done = p2pshare_done(leech)
        assert done["total_size"] == PAYLOAD_SIZE
        assert same_files(payload, out / "payload") == []
