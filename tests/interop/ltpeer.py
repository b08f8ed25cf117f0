"""libtorrent (the reference engine, from PyPI) as a peer on loopback, for interop tests.

Every session binds one loopback address, with DHT, LSD, UPnP and NAT-PMP off,
so nothing ever leaves the machine.  Without libtorrent installed, importing this
module skips the importing test module (``pytest.importorskip``) instead of failing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

lt = pytest.importorskip("libtorrent")


def lt_session(host: str = "127.0.0.1", port: int = 0, **extra: Any) -> Any:
    """A libtorrent session on one loopback address, with every discovery mechanism off."""
    settings = {
        "listen_interfaces": f"{host}:{port}",
        "outgoing_interfaces": host,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.status_notification,
        "user_agent": "libtorrent-test",
        "announce_to_all_tiers": False,
    }
    settings.update(extra)
    return lt.session(settings)


def lt_port(ses: Any, timeout: float = 10.0) -> int:
    """The TCP port a session listens on (waits until it has one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        port = ses.listen_port()
        if port:
            return int(port)
        time.sleep(0.05)
    raise TimeoutError("libtorrent did not start listening")


def add_torrent(ses: Any, torrent: bytes | Any, save_path: Path, *, seed_mode: bool = False) -> Any:
    """Add a torrent (bytes of a .torrent, or a torrent_info) and return its handle."""
    ti = torrent if isinstance(torrent, lt.torrent_info) else lt.torrent_info(lt.bdecode(torrent))
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = str(save_path)
    if seed_mode:
        params.flags |= lt.torrent_flags.seed_mode
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    return ses.add_torrent(params)


def add_magnet(ses: Any, info_hash_hex: str, save_path: Path) -> Any:
    params = lt.parse_magnet_uri(f"magnet:?xt=urn:btih:{info_hash_hex}")
    params.save_path = str(save_path)
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    return ses.add_torrent(params)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def is_seeding(handle: Any) -> bool:
    st = handle.status()
    return bool(st.is_seeding)


def save_path_of(paths: list[Path], info_file_paths: list[tuple[str, ...]]) -> Path:
    """The folder a share's files live under, as libtorrent's ``save_path`` wants it."""
    p = paths[0]
    for _ in info_file_paths[0]:
        p = p.parent
    return p


def lt_seed(ses: Any, torrent: bytes, save_path: Path) -> Any:
    """Seed ``torrent`` from ``save_path`` without rechecking (the files are known to be right)."""
    handle = add_torrent(ses, torrent, save_path, seed_mode=True)
    wait_for(lambda: is_seeding(handle), 20, "libtorrent to seed")
    return handle


def limit_local_peers_too(ses: Any) -> None:
    """Make libtorrent's rate limits apply to loopback peers too (by default local peers are exempt)."""
    f = lt.ip_filter()
    f.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    ses.set_peer_class_filter(f)
