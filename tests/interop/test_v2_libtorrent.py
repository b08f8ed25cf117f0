"""v2 and hybrid manifests against libtorrent: same hashes and files both ways, every piece verifies."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from p2pshare.core import merkle
from p2pshare.core.metainfo import Metainfo, parse_torrent
from p2pshare.engine.create import create_torrent
from tests.helpers import make_tree, random_spec

lt = pytest.importorskip("libtorrent")

pytestmark = pytest.mark.interop

POLL_LIMIT = 20.0  # seconds; every polling loop below is bounded by this

TREES: dict[str, dict[str, int]] = {
    "single": {"single file.bin": 1_000_003},
    "empties_and_boundaries": {"a": 0, "b/c": 16385, "b/d": 0, "b/e/f": 1, "b/e/g": 0, "z": 32767},
    "aligned": {"p/one": 65536, "p/two": 131072, "q": 16384},
    "random1": random_spec(1, files=9, max_size=90_000),
    "random2": random_spec(2, files=14, max_size=20_000, max_depth=4, empty_ratio=0.35),
    "random3": random_spec(3, files=5, max_size=300_000),
}
FORMATS = ["v2", "hybrid"]


def build_share(kind: str, tmp_path: Path) -> Path:
    made = make_tree(tmp_path / kind, TREES[kind], seed=len(kind))
    return made["single file.bin"] if kind == "single" else tmp_path / kind


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


def lt_real_files(ti: Any) -> list[tuple[tuple[str, ...], int]]:
    """libtorrent's files, pad files left out, as (path components including the name, size)."""
    fs = ti.layout()
    return [
        (tuple(fs.file_path(i).split(os.sep)), fs.file_size(i))
        for i in range(fs.num_files())
        if not fs.file_flags(i) & lt.file_storage.flag_pad_file
    ]


def our_real_files(meta: Metainfo) -> list[tuple[tuple[str, ...], int]]:
    info = meta.info
    return [(p, f.length) for p, f in zip(info.file_paths(), info.files, strict=True) if not f.pad]


def assert_same_piece_sizes(ti: Any, meta: Metainfo) -> None:
    """Piece sizes agree, except that libtorrent pads a v2-only torrent's last file to a whole
    piece where BEP 52 (and we) end the last piece with the data."""
    info = meta.info
    theirs = [ti.piece_size(i) for i in range(ti.num_pieces())]
    ours = [info.geometry.piece_size(i) for i in range(info.num_pieces)]
    if info.format == "v2":
        last = [f for f in info.files if f.length and not f.pad][-1]
        assert ours[-1] == (last.length - 1) % info.piece_length + 1
        assert theirs[-1] == info.piece_length
        theirs, ours = theirs[:-1], ours[:-1]
    assert theirs == ours


def wait_checked(session: Any, handle: Any) -> Any:
    """Poll (bounded) until libtorrent has checked the files; return the status then."""
    deadline = time.monotonic() + POLL_LIMIT
    while time.monotonic() < deadline:
        for alert in session.pop_alerts():
            if isinstance(alert, lt.torrent_checked_alert) and alert.handle == handle:
                return handle.status()
        if handle.status().state == lt.torrent_status.seeding:
            return handle.status()
        session.wait_for_alert(50)
    raise TimeoutError(f"libtorrent still checking after {POLL_LIMIT} s: {handle.status().state}")


def check_in_libtorrent(session: Any, torrent: bytes, save_path: Path) -> Any:
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = str(save_path)
    handle = session.add_torrent(atp)
    try:
        return wait_checked(session, handle)
    finally:
        session.remove_torrent(handle)


@pytest.mark.parametrize("kind", list(TREES))
@pytest.mark.parametrize("fmt", FORMATS)
def test_our_torrent_loads_in_libtorrent(kind: str, fmt: str, tmp_path: Path) -> None:
    """libtorrent reads our v2/hybrid .torrent with the same v1 and v2 hashes, pieces and files."""
    created = create_torrent(build_share(kind, tmp_path), format=fmt, piece_length=16384 << (len(kind) % 3))
    meta = parse_torrent(created.torrent)
    info = meta.info
    ti = lt.torrent_info(created.torrent)
    hashes = ti.info_hashes()
    assert info.info_hash_v2 is not None
    assert str(hashes.v2) == info.info_hash_v2.hex
    if fmt == "hybrid":
        assert info.info_hash_v1 is not None
        assert str(hashes.v1) == info.info_hash_v1.hex
        assert [bytes(ti.hash_for_piece(i)) for i in range(ti.num_pieces())] == [
            info.piece_hash(i) for i in range(info.num_pieces)
        ]
    else:
        assert not hashes.has_v1()
    assert ti.num_pieces() == info.num_pieces
    assert_same_piece_sizes(ti, meta)
    assert ti.piece_length() == info.piece_length
    assert ti.name() == info.name
    assert lt_real_files(ti) == our_real_files(meta)


@pytest.mark.parametrize("kind", list(TREES))
@pytest.mark.parametrize("fmt", FORMATS)
def test_libtorrent_verifies_every_piece(kind: str, fmt: str, tmp_path: Path, session: Any) -> None:
    """Given our v2/hybrid torrent and the shared folder, libtorrent checks every piece good and seeds."""
    share = build_share(kind, tmp_path)
    created = create_torrent(share, format=fmt)
    status = check_in_libtorrent(session, created.torrent, share.parent)
    assert status.errc.value() == 0, status.errc.message()
    assert status.num_pieces == created.info.num_pieces
    assert status.state == lt.torrent_status.seeding


@pytest.mark.parametrize("fmt", FORMATS)
def test_libtorrent_rejects_a_corrupted_piece(fmt: str, tmp_path: Path, session: Any) -> None:
    """Control: with one byte changed on disk, libtorrent finds exactly one piece missing."""
    share = build_share("random3", tmp_path)
    created = create_torrent(share, format=fmt, piece_length=16384)
    victim = max(created.selection.files, key=lambda f: f.length)
    data = bytearray(victim.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.path.write_bytes(bytes(data))
    status = check_in_libtorrent(session, created.torrent, share.parent)
    assert status.state != lt.torrent_status.seeding
    assert status.num_pieces == created.info.num_pieces - 1


def make_lt_torrent(share: Path, piece_length: int, fmt: str) -> bytes:
    """A v2-only or hybrid torrent made by libtorrent's own creator."""
    flags = lt.create_torrent.v2_only if fmt == "v2" else 0
    ct = lt.create_torrent(lt.list_files(str(share)), piece_length, flags)
    ct.set_comment("made by libtorrent")
    lt.set_piece_hashes(ct, str(share.parent))
    return bytes(lt.bencode(ct.generate()))


@pytest.mark.parametrize("kind", list(TREES))
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("piece_length", [16384, 65536])
def test_libtorrent_torrent_parses_in_ours(kind: str, fmt: str, piece_length: int, tmp_path: Path) -> None:
    """libtorrent's v2/hybrid torrents parse here with the same hashes, files, roots and layers."""
    share = build_share(kind, tmp_path)
    data = make_lt_torrent(share, piece_length, fmt)
    ti = lt.torrent_info(data)
    meta = parse_torrent(data)
    info = meta.info
    assert info.format == fmt
    assert info.info_hash_v2 is not None and info.info_hash_v2.hex == str(ti.info_hashes().v2)
    if fmt == "hybrid":
        assert info.info_hash_v1 is not None and info.info_hash_v1.hex == str(ti.info_hashes().v1)
    assert meta.comment == "made by libtorrent"
    assert info.single_file == (kind == "single")
    assert our_real_files(meta) == lt_real_files(ti)
    assert info.num_pieces == ti.num_pieces()
    assert_same_piece_sizes(ti, meta)
    # Our merkle code, over the files on disk, agrees with every root and every piece hash.
    for path, entry in zip(info.file_paths(), info.files, strict=True):
        if entry.pad or not entry.length:
            continue
        content = share.parent.joinpath(*path).read_bytes()
        assert merkle.MerkleTree.from_data(content).root == entry.pieces_root
    for i in range(info.num_pieces):
        file_index, k = info.v2_piece(i)
        entry = info.files[file_index]
        content = share.parent.joinpath(*info.file_paths()[file_index]).read_bytes()
        piece = content[k * piece_length : (k + 1) * piece_length]
        assert meta.v2_piece_hash(i) == merkle.piece_hash(piece, piece_length, entry.length)


@pytest.mark.parametrize("kind", ["empties_and_boundaries", "random1", "single"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_same_folder_same_hashes_as_libtorrent(kind: str, fmt: str, tmp_path: Path) -> None:
    """Made from the same folder, our info dict and libtorrent's are byte for byte the same."""
    share = build_share(kind, tmp_path)
    theirs = parse_torrent(make_lt_torrent(share, 16384, fmt))
    ours = parse_torrent(create_torrent(share, format=fmt, piece_length=16384).torrent)
    assert ours.info.info_hash_v2 == theirs.info.info_hash_v2
    assert ours.info.info_hash_v1 == theirs.info.info_hash_v1
    assert dict(ours.piece_layers) == dict(theirs.piece_layers)


class RawPeer:
    """A bare BEP 3 peer on a blocking loopback socket: handshake, send frames, read messages."""

    def __init__(self, host: str, port: int, info_hash: bytes, reserved: bytes) -> None:
        import socket

        self.sock = socket.create_connection((host, port), timeout=POLL_LIMIT)
        self.sock.sendall(b"\x13BitTorrent protocol" + reserved + info_hash + b"-XX0000-" + bytes(12))
        reply = self._read(68)
        assert reply[28:48] == info_hash, "libtorrent answered with another info hash"
        self.reserved = reply[20:28]

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("libtorrent closed the connection")
            buf += chunk
        return buf

    def next_message(self) -> bytes:
        """One framed message (length prefix included); keep-alives are skipped."""
        while True:
            head = self._read(4)
            length = int.from_bytes(head, "big")
            if length:
                return head + self._read(length)

    def ask(self, frame: bytes) -> Any:
        """Send a hash request and return libtorrent's hashes or hash reject, skipping other messages."""
        from p2pshare.core.wire.hashes import parse_frame

        self.sock.sendall(frame)
        deadline = time.monotonic() + POLL_LIMIT
        while time.monotonic() < deadline:
            msg = self.next_message()
            if msg[4] in (22, 23):
                parsed = parse_frame(msg)
                assert parsed is not None and parsed[1] == len(msg)
                return parsed[0]
        raise TimeoutError("no answer to the hash request")

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("fmt", FORMATS)
def test_libtorrent_answers_our_hash_requests(fmt: str, tmp_path: Path) -> None:
    """libtorrent, seeding our torrent, answers our BEP 52 hash requests with hashes that our codec
    parses and our merkle code verifies: the piece layers of a magnet download, and block leaves."""
    from p2pshare.core.metainfo import parse_info
    from p2pshare.core.metainfo.layers import PieceLayerFetch, check_piece_leaves, piece_leaf_request
    from p2pshare.core.wire.hashes import Hashes, encode, set_v2_bit
    from p2pshare.core.wire.messages import make_reserved
    from tests.interop.ltpeer import add_torrent, is_seeding, lt_port, lt_session, wait_for

    share = build_share("random3", tmp_path)
    created = create_torrent(share, format=fmt, piece_length=65536)
    meta = parse_torrent(created.torrent)
    assert meta.info.info_hash_v2 is not None
    ses = lt_session("127.0.0.3")
    try:
        # A full check (not seed mode), so libtorrent knows every block hash, not only the piece layers.
        handle = add_torrent(ses, created.torrent, share.parent)
        wait_for(lambda: is_seeding(handle), POLL_LIMIT, "libtorrent to check and seed")
        peer = RawPeer(
            "127.0.0.3",
            lt_port(ses),
            meta.info.info_hash_v2.truncated.value,
            set_v2_bit(make_reserved(fast=True, extensions=True)),
        )
        try:
            fetch = PieceLayerFetch(parse_info(meta.info.raw), max_count=4)
            requests = fetch.requests()
            assert requests
            for req in requests:
                answer = peer.ask(encode(req))
                assert isinstance(answer, Hashes), answer
                assert fetch.receive(answer)
            assert fetch.layers() == dict(meta.piece_layers)
            checked = 0
            for index in range(0, meta.info.num_pieces, 3):
                req = piece_leaf_request(meta, index)
                if req is None:
                    continue
                answer = peer.ask(encode(req))
                assert isinstance(answer, Hashes), answer
                assert len(check_piece_leaves(meta, index, answer)) >= 1
                checked += 1
            assert checked
        finally:
            peer.close()
    finally:
        ses.pause()
        del ses
