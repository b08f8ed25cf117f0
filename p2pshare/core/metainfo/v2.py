"""The v2 (BEP 52) half of an info dict: the ``file tree``, and the ``piece layers`` beside it.

Rules checked (each failure a :class:`~p2pshare.errors.MetainfoError` naming the path):

* the tree is a non-empty dictionary whose root is not itself a file;
* a file is ``{name: {"": {"length": n, "pieces root": h}}}`` with no sibling
  beside ``""``; a folder is a non-empty dictionary; nothing else is allowed;
* every name passes the same path-safety rules as v1; depth and file count are capped;
* a non-empty file has a 32-byte ``pieces root``; an empty file has none;
* ``piece layers`` (outside the info dict) hold, for every file longer than one
  piece, exactly one hash per piece that together hash up to the file's root.

Files are laid out in tree order (keys sorted bytewise), each non-empty file
starting on a piece boundary: after every file but the last whose length is not a
multiple of the piece length comes a pad entry, as libtorrent lays out hybrids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from p2pshare.config import MetainfoLimits, V2Config
from p2pshare.core import merkle
from p2pshare.core.metainfo.fields import get_field, validate_component
from p2pshare.core.metainfo.model import FileEntry
from p2pshare.errors import MetainfoError

__all__ = ["V2File", "aligned_layout", "check_piece_layers", "pad_after", "parse_file_tree"]

_DEFAULT_V2 = V2Config()


@dataclass(frozen=True, slots=True)
class V2File:
    """One file of a file tree, in tree order."""

    path: tuple[str, ...]
    length: int
    pieces_root: bytes | None


def _parse_file_node(node: dict[bytes, object], where: str) -> tuple[int, bytes | None]:
    if len(node) != 1:
        raise MetainfoError(f"file tree: file {where!r} has entries beside its '' entry")
    props = node[b""]
    if not isinstance(props, dict):
        raise MetainfoError(f"file tree: the '' entry of {where!r} must be a dictionary")
    length = get_field(props, b"length", int, f"file tree: length of {where!r}")
    assert isinstance(length, int)
    if length < 0:
        raise MetainfoError(f"file tree: length of {where!r} must not be negative, got {length}")
    root = get_field(props, b"pieces root", bytes, f"file tree: pieces root of {where!r}", required=False)
    if length == 0:
        if root is not None:
            raise MetainfoError(f"file tree: empty file {where!r} must not have a pieces root")
        return 0, None
    if root is None:
        raise MetainfoError(f"file tree: non-empty file {where!r} has no pieces root")
    assert isinstance(root, bytes)
    if len(root) != merkle.HASH_SIZE:
        raise MetainfoError(f"file tree: pieces root of {where!r} is {len(root)} bytes, not 32")
    return length, root


def parse_file_tree(tree: object, limits: MetainfoLimits, config: V2Config = _DEFAULT_V2) -> list[V2File]:
    """Walk a ``file tree`` (without recursion) and return its files in tree order."""
    if not isinstance(tree, dict):
        raise MetainfoError("info.file tree must be a dictionary")
    if not tree:
        raise MetainfoError("info.file tree is empty")
    if b"" in tree:
        raise MetainfoError("the root of the file tree must not be a file (it has a '' entry)")
    files: list[V2File] = []
    # A stack of (folder path, remaining keys in reverse order, folder dict).
    stack: list[tuple[tuple[str, ...], list[bytes], dict[bytes, object]]] = [
        ((), sorted(tree, reverse=True), tree)
    ]
    while stack:
        path, keys, folder = stack[-1]
        if not keys:
            stack.pop()
            continue
        key = keys.pop()
        child_path = (*path, validate_component(key, limits))
        where = "/".join(child_path)
        if len(child_path) > min(limits.max_path_components, config.max_tree_depth):
            raise MetainfoError(f"file tree: {where[:200]!r} is nested too deeply")
        child = folder[key]
        if not isinstance(child, dict):
            raise MetainfoError(f"file tree: {where!r} must be a dictionary")
        if b"" in child:
            length, root = _parse_file_node(child, where)
            files.append(V2File(child_path, length, root))
            if len(files) > limits.max_files:
                raise MetainfoError(f"file tree holds more than {limits.max_files} files")
        elif not child:
            raise MetainfoError(f"file tree: folder {where!r} is empty")
        else:
            stack.append((child_path, sorted(child, reverse=True), child))
    return files


def pad_after(lengths: Sequence[int], index: int, piece_length: int) -> int:
    """Bytes of padding after file ``index`` so the next file starts on a piece (0 after the last)."""
    if index == len(lengths) - 1:
        return 0
    return -lengths[index] % piece_length


def aligned_layout(
    files: Sequence[V2File], piece_length: int, *, single_name: str | None = None
) -> tuple[FileEntry, ...]:
    """The piece-space layout of v2 files: the files in order, pad entries between them.

    ``single_name`` set: a single-file manifest, whose one file's path is the name.
    """
    entries: list[FileEntry] = []
    offset = 0
    lengths = [f.length for f in files]
    for i, f in enumerate(files):
        path = (single_name,) if single_name is not None else f.path
        entries.append(FileEntry(path, f.length, offset, pieces_root=f.pieces_root))
        offset += f.length
        pad = pad_after(lengths, i, piece_length)
        if pad:
            entries.append(FileEntry((".pad", str(pad)), pad, offset, pad=True))
            offset += pad
    return tuple(entries)


def check_piece_layers(
    layers: object, files: Sequence[FileEntry], piece_length: int, config: V2Config = _DEFAULT_V2
) -> dict[bytes, bytes]:
    """Validate the top-level ``piece layers`` against the files' roots; return the layers used.

    ``layers`` may be None (absent) only when no file is longer than one piece.
    """
    needed = [f for f in files if f.pieces_root is not None and f.length > piece_length]
    if layers is None:
        if needed:
            raise MetainfoError(
                f"piece layers are missing (needed for {needed[0].display_path!r}, longer than one piece)"
            )
        return {}
    if not isinstance(layers, dict):
        raise MetainfoError("piece layers must be a dictionary")
    if len(layers) > config.max_piece_layers:
        raise MetainfoError(f"piece layers hold more than {config.max_piece_layers} entries")
    out: dict[bytes, bytes] = {}
    for f in needed:
        root = f.pieces_root
        assert root is not None
        if root in out:
            continue  # identical files share one root and one layer
        layer = layers.get(root)
        if layer is None:
            raise MetainfoError(f"piece layers have no entry for {f.display_path!r}")
        if not isinstance(layer, bytes):
            raise MetainfoError(f"piece layer of {f.display_path!r} must be a byte string")
        count = (f.length + piece_length - 1) // piece_length
        if len(layer) != count * merkle.HASH_SIZE:
            raise MetainfoError(
                f"piece layer of {f.display_path!r} is {len(layer)} bytes; "
                f"{count} pieces need {count * merkle.HASH_SIZE}"
            )
        computed = merkle.root_from_piece_layer(merkle.split_hashes(layer), piece_length, f.length)
        if computed != root:
            raise MetainfoError(f"piece layer of {f.display_path!r} does not hash to its pieces root")
        out[root] = layer
    return out
