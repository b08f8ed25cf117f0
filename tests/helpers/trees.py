"""Deterministic file trees for tests, and a deliberately simple SHA-1 reference."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["TreeSpec", "content_for", "make_tree", "random_spec", "reference_pieces", "tree_bytes"]

#: Relative POSIX path ("docs/a.txt") -> size in bytes.
TreeSpec = Mapping[str, int]


def content_for(relpath: str, size: int, seed: int) -> bytes:
    """The bytes ``make_tree`` writes for one file: a function of (seed, path, size) only."""
    rng = random.Random(f"{seed}:{relpath}")
    return rng.randbytes(size)


def make_tree(root: Path, spec: TreeSpec, seed: int = 0) -> dict[str, Path]:
    """Create the files of ``spec`` under ``root`` with deterministic content.

    Returns relative path -> absolute path.  Folders are created as needed; a size of
    0 makes an empty file.  The same (spec, seed) always gives the same bytes.
    """
    root.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    for relpath, size in spec.items():
        path = root.joinpath(*relpath.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content_for(relpath, size, seed))
        made[relpath] = path
    return made


def random_spec(
    seed: int,
    *,
    files: int = 8,
    max_size: int = 100_000,
    max_depth: int = 3,
    empty_ratio: float = 0.2,
) -> dict[str, int]:
    """A random but reproducible tree: nested folders, empty files and odd sizes."""
    rng = random.Random(seed)
    spec: dict[str, int] = {}
    folders = ["dir", "sub", "nested", "x"]
    while len(spec) < files:
        depth = rng.randint(0, max_depth)
        parts = [f"{rng.choice(folders)}{rng.randint(0, 2)}" for _ in range(depth)]
        parts.append(f"file{len(spec)}_{rng.randint(0, 999)}.bin")
        size = 0 if rng.random() < empty_ratio else rng.randint(1, max_size)
        rel = "/".join(parts)
        # A file name must never also be a folder name: the names above cannot collide.
        spec[rel] = size
    if all(size == 0 for size in spec.values()):
        spec[next(iter(spec))] = rng.randint(1, max_size)
    return spec


def tree_bytes(paths: Sequence[Path]) -> bytes:
    """The torrent's byte stream: the files concatenated in the given order."""
    return b"".join(p.read_bytes() for p in paths)


def reference_pieces(paths: Sequence[Path], piece_length: int) -> bytes:
    """The ``pieces`` string computed the obvious way: join everything, SHA-1 each slice."""
    data = tree_bytes(paths)
    return b"".join(
        hashlib.sha1(data[i : i + piece_length]).digest() for i in range(0, len(data), piece_length)
    )
