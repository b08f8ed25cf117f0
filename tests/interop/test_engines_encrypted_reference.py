"""Each engine, set up as in its encrypted cell, downloads from libtorrent with encryption forced.

This checks the engine half of the encrypted cells today, before p2pshare has
``--encryption``: aria2's ``--bt-require-crypto``, Transmission's ``encryption: 2`` and
webtorrent's default (MSE first) all complete an RC4 exchange with a forced libtorrent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.procs import processes, start
from tests.helpers.http_tracker import HttpTracker
from tests.interop.engines import aria2, transmission, webtorrent
from tests.interop.engines.common import (
    TRANSFER_TIMEOUT,
    engine_processes,
    free_port,
    make_payload,
    same_files,
    wait_accepting,
    wait_until,
)

lt = pytest.importorskip("libtorrent", reason="engine missing: libtorrent (pip install -e '.[test]')")

from tests.interop.ltpeer import lt_port, lt_seed, lt_session  # noqa: E402

pytestmark = [pytest.mark.interop, pytest.mark.timeout(TRANSFER_TIMEOUT + 60)]

SIZE = 4 * 1024 * 1024


def _forced_seeder(host: str, torrent: Path, data_parent: Path) -> tuple[Any, int]:
    ses = lt_session(
        host,
        out_enc_policy=int(lt.enc_policy.forced),
        in_enc_policy=int(lt.enc_policy.forced),
        allowed_enc_level=int(lt.enc_level.rc4),
    )
    lt_seed(ses, torrent.read_bytes(), data_parent)
    return ses, lt_port(ses)


@pytest.mark.parametrize("engine", ["aria2", "transmission", "webtorrent"])
def test_engine_encrypted_settings_complete_mse_with_forced_libtorrent(tmp_path: Path, engine: str) -> None:
    """The engine, with its encrypted-cell settings, downloads everything from a forced-RC4 libtorrent."""
    installed = {"aria2": aria2.aria2c, "transmission": transmission.transmission_cli}
    installed["webtorrent"] = webtorrent.node
    installed[engine]()  # or skip, saying how to install it
    payload = make_payload(tmp_path / "data" / "payload", SIZE)
    torrent = tmp_path / "payload.torrent"
    out = tmp_path / "out"
    with processes() as procs, engine_processes() as made, HttpTracker("127.0.0.1") as tracker:
        create = start(procs, ["create", str(payload), "-o", str(torrent), "--json"], tmp_path / "st0")
        assert create.wait(120) == 0, create.describe()
        info_hash = next(e for e in create.events() if "info_hash" in e)["info_hash"]
        ses, port = _forced_seeder("127.0.0.30", torrent, payload.parent)
        try:
            if engine == "aria2":
                tracker.add_peer(bytes.fromhex(info_hash), "127.0.0.30", port)
                proc = aria2.download(
                    made, str(torrent), out, host="127.0.0.31", port=free_port("127.0.0.31"),
                    workdir=tmp_path / "aria2", encrypted=True, tracker=tracker.announce_url,
                )
                assert proc.wait(TRANSFER_TIMEOUT) == 0, proc.tail()
            elif engine == "webtorrent":
                proc = webtorrent.start(
                    made, "download", str(torrent), port=free_port("127.0.0.1"), workdir=tmp_path / "wt",
                    out=out, peers=[f"127.0.0.30:{port}"], secure=webtorrent.SECURE_DEFAULT,
                )
                webtorrent.wait_event(proc, lambda e: e.get("event") == "done", TRANSFER_TIMEOUT)
            else:
                tport = free_port("127.0.0.32")
                proc, marker = transmission.start(
                    made, torrent, out, host="127.0.0.32", port=tport, workdir=tmp_path / "tr", encrypted=True
                )
                wait_accepting(proc, "127.0.0.32", tport)
                for handle in ses.get_torrents():
                    handle.connect_peer(("127.0.0.32", tport))
                wait_until(marker.exists, TRANSFER_TIMEOUT, f"transmission's done-hook ({proc.tail()})", 0.5)
        finally:
            ses.pause()
        assert same_files(payload, out / "payload") == []
