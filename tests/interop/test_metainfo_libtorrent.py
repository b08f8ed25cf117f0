"""Manifests against libtorrent (the reference): same info hash both ways, and every piece verifies."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pshare.core.metainfo import parse_torrent
from p2pshare.engine.create import create_torrent
from p2pshare.io.hasher import verify_files
from tests.helpers import make_tree, random_spec

lt = pytest.importorskip("libtorrent")

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_files"
POLL_LIMIT = 20.0  # seconds; every polling loop below is bounded by this

TREES: dict[str, dict[str, int]] = {
    "empties_and_boundaries": {"a": 0, "b/c": 16385, "b/d": 0, "b/e/f": 1, "b/e/g": 0, "z": 32767},
    "random1": random_spec(1, files=9, max_size=90_000),
    "random2": random_spec(2, files=14, max_size=20_000, max_depth=4, empty_ratio=0.35),
    "random3": random_spec(3, files=5, max_size=300_000),
}


def build_share(kind: str, tmp_path: Path) -> Path:
    """A share to test: a single file, the repository's sample_files, or a generated tree."""
    if kind == "single":
        return make_tree(tmp_path, {"single file.bin": 1_000_003}, seed=11)["single file.bin"]
    if kind == "sample_files":
        return SAMPLE
    make_tree(tmp_path / kind, TREES[kind], seed=len(kind))
    return tmp_path / kind


KINDS = ["single", "sample_files", *TREES]


@pytest.fixture(scope="module")
def session() -> Iterator[Any]:
    """A libtorrent session on loopback only: DHT, LSD, UPnP and NAT-PMP off, no trackers anywhere."""
    ses = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "alert_mask": lt.alert.category_t.status_notification | lt.alert.category_t.error_notification,
        }
    )
    yield ses
    del ses


def lt_files(ti: Any) -> list[tuple[tuple[str, ...], int]]:
    """libtorrent's file list as (path components including the name, size)."""
    fs = ti.layout()
    return [(tuple(fs.file_path(i).split(os.sep)), fs.file_size(i)) for i in range(fs.num_files())]


def wait_checked(session: Any, handle: Any) -> Any:
    """Poll (bounded) until libtorrent says it has checked the files; return the status then."""
    deadline = time.monotonic() + POLL_LIMIT
    while time.monotonic() < deadline:
        for alert in session.pop_alerts():
            if isinstance(alert, lt.torrent_checked_alert) and alert.handle == handle:
                return handle.status()
        if handle.status().state == lt.torrent_status.seeding:
            return handle.status()
        session.wait_for_alert(50)
    raise TimeoutError(f"libtorrent still checking after {POLL_LIMIT} s: {handle.status().state}")


def add(session: Any, torrent: bytes, save_path: Path) -> Any:
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = str(save_path)
    return session.add_torrent(atp)


@pytest.mark.parametrize("kind", KINDS)
def test_our_torrent_loads_in_libtorrent(kind: str, tmp_path: Path) -> None:
    """libtorrent reads our .torrent (as bytes or bdecoded) with the same hash, pieces and files."""
    created = create_torrent(build_share(kind, tmp_path), comment="interop")
    info = created.info
    for ti in (lt.torrent_info(created.torrent), lt.torrent_info(lt.bdecode(created.torrent))):
        assert str(ti.info_hashes().v1) == info.info_hash.hex
        assert ti.num_pieces() == info.num_pieces
        assert ti.piece_length() == info.piece_length
        assert ti.total_size() == info.total_length
        assert ti.name() == info.name
        assert ti.comment() == "interop"
        expected = [(p, f.length) for p, f in zip(info.file_paths(), info.files, strict=True)]
        assert lt_files(ti) == expected
        assert [bytes(ti.hash_for_piece(i)) for i in range(ti.num_pieces())] == [
            info.piece_hash(i) for i in range(info.num_pieces)
        ]


@pytest.mark.parametrize("kind", KINDS)
def test_libtorrent_verifies_every_piece(kind: str, tmp_path: Path, session: Any) -> None:
    """Given our torrent and the shared folder, libtorrent checks every piece good and seeds."""
    share = build_share(kind, tmp_path)
    created = create_torrent(share)
    handle = add(session, created.torrent, share.parent)
    try:
        status = wait_checked(session, handle)
        assert status.errc.value() == 0, status.errc.message()
        assert status.num_pieces == created.info.num_pieces
        assert status.state == lt.torrent_status.seeding
    finally:
        session.remove_torrent(handle)


def test_libtorrent_rejects_a_corrupted_piece(tmp_path: Path, session: Any) -> None:
    """Control: with one byte changed on disk, libtorrent finds exactly one piece missing."""
    share = build_share("random1", tmp_path)
    created = create_torrent(share, piece_length=16384)
    victim = max(created.selection.files, key=lambda f: f.length)
    data = bytearray(victim.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.path.write_bytes(bytes(data))
    handle = add(session, created.torrent, share.parent)
    try:
        status = wait_checked(session, handle)
        assert status.state != lt.torrent_status.seeding
        assert status.num_pieces == created.info.num_pieces - 1
    finally:
        session.remove_torrent(handle)


def make_lt_torrent(share: Path, piece_length: int) -> bytes:
    """A v1-only torrent made by libtorrent's own creator (no pad files, no v2 fields)."""
    ct = lt.create_torrent(lt.list_files(str(share)), piece_length, lt.create_torrent.v1_only)
    ct.set_comment("made by libtorrent")
    lt.set_piece_hashes(ct, str(share.parent))
    return bytes(lt.bencode(ct.generate()))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("piece_length", [16384, 65536])
def test_libtorrent_torrent_parses_in_ours(kind: str, piece_length: int, tmp_path: Path) -> None:
    """A torrent libtorrent creates parses in ours with the same info hash, file list and pieces."""
    share = build_share(kind, tmp_path)
    data = make_lt_torrent(share, piece_length)
    ti = lt.torrent_info(data)
    meta = parse_torrent(data)
    assert meta.info_hash.hex == str(ti.info_hashes().v1)
    assert hashlib.sha1(meta.info.raw).hexdigest() == str(ti.info_hashes().v1)
    assert meta.comment == "made by libtorrent"
    info = meta.info
    assert info.single_file == (kind == "single")
    assert [(p, f.length) for p, f in zip(info.file_paths(), info.files, strict=True)] == lt_files(ti)
    assert info.piece_length == ti.piece_length() == piece_length
    assert info.num_pieces == ti.num_pieces()
    assert info.total_length == ti.total_size()
    # Our hasher, reading the files in libtorrent's order, agrees with every one of its piece hashes.
    paths = [share.parent.joinpath(*p) for p in info.file_paths()]
    assert verify_files(paths, info.geometry, info.pieces, workers=2) == list(range(info.num_pieces))


def test_libtorrent_sees_identical_bytes_for_a_moved_share(tmp_path: Path, session: Any) -> None:
    """Our torrent of a folder verifies in libtorrent from another location holding a copy of the folder."""
    share = build_share("random2", tmp_path)
    created = create_torrent(share)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(share, elsewhere / share.name)
    handle = add(session, created.torrent, elsewhere)
    try:
        status = wait_checked(session, handle)
        assert status.state == lt.torrent_status.seeding
        assert status.num_pieces == created.info.num_pieces
    finally:
        session.remove_torrent(handle)
