"""p2pshare's CLI and libtorrent exchange a payload on loopback, both ways, plaintext and encryption forced.

The engine-level libtorrent cells are in test_swarm_libtorrent.py; these drive p2pshare
through its CLI like the other engines' cells, so the encrypted cell runs the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.procs import processes, start
from tests.interop.engines.common import (
    PAYLOAD_SIZE,
    TRANSFER_TIMEOUT,
    crypto_params,
    make_payload,
    p2pshare_done,
    p2pshare_get,
    p2pshare_share,
    same_files,
    uploaded_by,
    wait_until,
)

lt = pytest.importorskip("libtorrent", reason="engine missing: libtorrent (pip install -e '.[test]')")

from tests.interop.ltpeer import add_torrent, is_seeding, lt_port, lt_seed, lt_session  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.timeout(TRANSFER_TIMEOUT * 2 + 60)]


def _session(host: str, encrypted: bool) -> Any:
    extra: dict[str, Any] = {}
    if encrypted:  # MSE/PE with RC4, both ways, plaintext refused
        extra = {
            "out_enc_policy": int(lt.enc_policy.forced),
            "in_enc_policy": int(lt.enc_policy.forced),
            "allowed_enc_level": int(lt.enc_level.rc4),
        }
    return lt_session(host, **extra)


def _create(procs: list[Any], payload: Path, torrent: Path, state: Path) -> str:
    create = start(procs, ["create", str(payload), "-o", str(torrent), "--json"], state)
    assert create.wait(120) == 0, create.describe()
    return str(next(e for e in create.events() if "info_hash" in e)["info_hash"])


@pytest.mark.parametrize("encrypted", crypto_params())
def test_libtorrent_downloads_from_p2pshare_cli(tmp_path: Path, encrypted: bool) -> None:
    """libtorrent, dialing a `p2pshare share` seeder, downloads the whole payload."""
    payload = make_payload(tmp_path / "payload")
    out = tmp_path / "lt_out"
    with processes() as procs:
        seeder, ev = p2pshare_share(procs, payload, "127.0.0.16", tmp_path / "st", encrypted=encrypted)
        ses = _session("127.0.0.17", encrypted)
        try:
            handle = add_torrent(ses, Path(ev["torrent"]).read_bytes(), out)
            handle.connect_peer(("127.0.0.16", ev["port"]))
            wait_until(lambda: is_seeding(handle), TRANSFER_TIMEOUT, "libtorrent to finish")
        finally:
            ses.pause()
        assert same_files(payload, out / "payload") == []
        wait_until(lambda: uploaded_by(seeder) >= PAYLOAD_SIZE, 10, "p2pshare to report the upload")


@pytest.mark.parametrize("encrypted", crypto_params())
def test_p2pshare_cli_downloads_from_libtorrent(tmp_path: Path, encrypted: bool) -> None:
    """`p2pshare get` downloads from a libtorrent seeder given by --peer."""
    payload = make_payload(tmp_path / "data" / "payload")
    torrent = tmp_path / "payload.torrent"
    with processes() as procs:
        _create(procs, payload, torrent, tmp_path / "st0")
        ses = _session("127.0.0.18", encrypted)
        try:
            lt_seed(ses, torrent.read_bytes(), payload.parent)
            port = lt_port(ses)
            out = tmp_path / "out"
            leech = p2pshare_get(
                procs, str(torrent), out, "127.0.0.19", tmp_path / "st", peers=[f"127.0.0.18:{port}"],
                encrypted=encrypted,
            )
            done = p2pshare_done(leech)
        finally:
            ses.pause()
        assert done["total_size"] == PAYLOAD_SIZE
        assert same_files(payload, out / "payload") == []
