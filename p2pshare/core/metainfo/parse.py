"""Parse and validate an info dict (v1, v2 or hybrid) and the .torrent around it.

Parsing validates everything a hostile manifest could use against us: lengths and
piece counts that disagree, path components that would climb out of the download
folder, sizes over the configured caps.  Every failure is a
:class:`~p2pshare.errors.MetainfoError` that says what is wrong.

The info hashes are always taken over the info dict's bytes *as received*
(:func:`p2pshare.core.bencode.find_info_span`), never over a re-encoding.

``meta version`` is checked first (BEP 52): a newer version is reported as such
before any other rule.  A hybrid must describe the same files, in the same order
and on the same piece boundaries, in both halves.
"""

from __future__ import annotations

from p2pshare.config import BencodeLimits, MetainfoLimits, V2Config
from p2pshare.core import bencode, merkle
from p2pshare.core.metainfo.fields import DEFAULT_LIMITS, get_field, validate_component
from p2pshare.core.metainfo.model import FileEntry, Info, Metainfo
from p2pshare.core.metainfo.v1 import V1Layout, parse_v1
from p2pshare.core.metainfo.v2 import V2File, aligned_layout, check_piece_layers, parse_file_tree
from p2pshare.errors import BencodeError, MetainfoError

__all__ = ["parse_info", "parse_torrent"]

_DEFAULT_V2 = V2Config()


def _meta_version(d: dict[bytes, object]) -> int:
    version = d.get(b"meta version")
    if version is None:
        if b"file tree" in d:
            raise MetainfoError("info has a file tree but no 'meta version' 2")
        return 1
    if not isinstance(version, int) or isinstance(version, bool):
        raise MetainfoError("info.meta version must be an integer")
    if version != 2:
        raise MetainfoError(
            f"meta version {version} is not supported (p2pshare reads BitTorrent v1 and v2): "
            "this manifest needs a newer client"
        )
    if b"file tree" not in d:
        raise MetainfoError("meta version 2 but no file tree")
    return 2


def _hybrid_files(v1: V1Layout, v2_files: list[V2File], piece_length: int) -> tuple[FileEntry, ...]:
    """Check that both halves of a hybrid describe the same data; return the v1 layout with roots."""
    real = [f for f in v1.files if not f.pad]
    if len(real) != len(v2_files):
        raise MetainfoError(f"hybrid: the v1 part lists {len(real)} files but the file tree {len(v2_files)}")
    roots = iter(v2_files)
    out: list[FileEntry] = []
    for entry in v1.files:
        if entry.pad:
            out.append(entry)
            continue
        f = next(roots)
        if entry.path != f.path or entry.length != f.length:
            raise MetainfoError(
                f"hybrid: v1 file {entry.display_path!r} ({entry.length} bytes) does not match "
                f"file tree entry {'/'.join(f.path)!r} ({f.length} bytes)"
            )
        if entry.length and entry.offset % piece_length:
            raise MetainfoError(
                f"hybrid: {entry.display_path!r} does not start on a piece boundary in the v1 part "
                "(pad files missing or wrong)"
            )
        out.append(FileEntry(entry.path, entry.length, entry.offset, pieces_root=f.pieces_root))
    v2_pieces = sum((f.length + piece_length - 1) // piece_length for f in v2_files)
    if len(v1.pieces) // 20 != v2_pieces:
        raise MetainfoError(
            f"hybrid: the v1 part has {len(v1.pieces) // 20} pieces but the file tree {v2_pieces}"
        )
    return tuple(out)


def parse_info(
    raw: bytes, limits: MetainfoLimits = DEFAULT_LIMITS, v2_config: V2Config = _DEFAULT_V2
) -> Info:
    """Validate a bencoded info dict (as received) and return :class:`Info`."""
    if len(raw) > limits.max_metadata_size:
        raise MetainfoError(
            f"info dict of {len(raw)} bytes exceeds the {limits.max_metadata_size}-byte metadata cap"
        )
    try:
        d = bencode.decode(raw, BencodeLimits(max_input=limits.max_metadata_size))
    except BencodeError as exc:
        raise MetainfoError(f"info dict is not valid bencode: {exc}") from None
    if not isinstance(d, dict):
        raise MetainfoError("info must be a dictionary")
    version = _meta_version(d)
    name_raw = get_field(d, b"name.utf-8", bytes, "info.name.utf-8", required=False) or get_field(
        d, b"name", bytes, "info.name"
    )
    assert isinstance(name_raw, bytes)
    name = validate_component(name_raw, limits)
    piece_length = get_field(d, b"piece length", int, "info.piece length")
    assert isinstance(piece_length, int)
    if piece_length <= 0:
        raise MetainfoError(f"piece length must be positive, got {piece_length}")
    if piece_length > limits.max_parse_piece_length:
        raise MetainfoError(f"piece length {piece_length} exceeds {limits.max_parse_piece_length}")
    private = d.get(b"private") == 1

    if version == 1:
        v1 = parse_v1(d, name, piece_length, limits)
        if v1.total_length == 0:
            raise MetainfoError("the torrent holds no data (total length 0)")
        return Info(name, piece_length, v1.pieces, v1.files, v1.single_file, private, bytes(raw))

    if piece_length < merkle.LEAF_SIZE or piece_length & (piece_length - 1):
        raise MetainfoError(f"v2 piece length must be a power of two of at least 16 KiB, got {piece_length}")
    v2_files = parse_file_tree(d[b"file tree"], limits, v2_config)
    if sum(f.length for f in v2_files) == 0:
        raise MetainfoError("the torrent holds no data (total length 0)")
    num_pieces = sum((f.length + piece_length - 1) // piece_length for f in v2_files)
    if num_pieces > v2_config.max_pieces:
        raise MetainfoError(f"{num_pieces} pieces exceed the limit of {v2_config.max_pieces}")
    single = len(v2_files) == 1 and v2_files[0].path == (name,)
    if b"pieces" in d:
        v1 = parse_v1(d, name, piece_length, limits)
        files = _hybrid_files(v1, v2_files, piece_length)
        return Info(name, piece_length, v1.pieces, files, v1.single_file, private, bytes(raw), 2, True)
    files = aligned_layout(v2_files, piece_length, single_name=name if single else None)
    return Info(name, piece_length, b"", files, single, private, bytes(raw), 2, False)


def parse_torrent(
    data: bytes, limits: MetainfoLimits = DEFAULT_LIMITS, v2_config: V2Config = _DEFAULT_V2
) -> Metainfo:
    """Parse a whole .torrent file, or a bare bencoded info dict.

    For v2 and hybrid, the ``piece layers`` are checked against every file's root.
    """
    if len(data) > limits.max_torrent_file:
        raise MetainfoError(f"torrent of {len(data)} bytes exceeds the {limits.max_torrent_file}-byte cap")
    blimits = BencodeLimits(max_input=limits.max_torrent_file)
    try:
        top = bencode.decode(data, blimits)
    except BencodeError as exc:
        raise MetainfoError(f"not a valid torrent (bad bencode: {exc})") from None
    if not isinstance(top, dict):
        raise MetainfoError("not a valid torrent: the top level must be a dictionary")
    if b"info" not in top:
        if b"piece length" in top and (b"pieces" in top or b"file tree" in top):
            # A bare info dict (as BEP 9 delivers it): v2 piece layers come from peers.
            return Metainfo(parse_info(bytes(data), limits, v2_config))
        raise MetainfoError("not a valid torrent: no 'info' dictionary")
    start, end = bencode.find_info_span(data, blimits)
    info = parse_info(bytes(data[start:end]), limits, v2_config)
    layers: dict[bytes, bytes] = {}
    if info.meta_version == 2:
        layers = check_piece_layers(top.get(b"piece layers"), info.files, info.piece_length, v2_config)

    def text(key: bytes) -> str | None:
        value = top.get(key)
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else None

    date = top.get(b"creation date")
    return Metainfo(
        info=info,
        announce=text(b"announce"),
        announce_list=_announce_list(top.get(b"announce-list")),
        comment=text(b"comment"),
        created_by=text(b"created by"),
        creation_date=date if isinstance(date, int) and not isinstance(date, bool) else None,
        piece_layers=layers,
    )


def _announce_list(value: object) -> tuple[tuple[str, ...], ...]:
    """BEP 12 ``announce-list``: a list of tiers, each a list of URLs; anything else is skipped."""
    if not isinstance(value, list):
        return ()
    tiers = []
    for tier in value:
        if isinstance(tier, list):
            urls = tuple(u.decode("utf-8", "replace") for u in tier if isinstance(u, bytes) and u)
            if urls:
                tiers.append(urls)
    return tuple(tiers)
