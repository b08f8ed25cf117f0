"""Field access and path safety shared by the v1 and v2 parsers.

Every path component (and the torrent name) goes through :func:`validate_component`,
whichever format it came from: nothing may climb out of the download folder.
"""

from __future__ import annotations

from p2pshare.config import MetainfoLimits
from p2pshare.errors import MetainfoError

__all__ = ["DEFAULT_LIMITS", "get_field", "validate_component", "validate_path"]

DEFAULT_LIMITS = MetainfoLimits()


def validate_component(component: bytes, limits: MetainfoLimits = DEFAULT_LIMITS) -> str:
    """Check one path component (or the torrent name) and return it as text.

    Rejects what could escape the download folder or cannot be a file name:
    empty, ``.``, ``..``, separators, NUL, drive letters, and over-long names.
    """
    if not isinstance(component, bytes):
        raise MetainfoError("a path component must be a byte string")
    if not component:
        raise MetainfoError("empty path component")
    if component in (b".", b".."):
        raise MetainfoError(f"path component {component!r} is not allowed")
    for bad in (b"/", b"\\", b"\x00"):
        if bad in component:
            raise MetainfoError(f"path component {component[:64]!r} contains {bad!r}")
    if len(component) > limits.max_component_bytes:
        raise MetainfoError(f"path component longer than {limits.max_component_bytes} bytes")
    if len(component) >= 2 and component[1:2] == b":" and component[:1].isalpha():
        raise MetainfoError(f"path component {component[:64]!r} looks like an absolute (drive) path")
    return component.decode("utf-8", errors="surrogateescape")


def validate_path(
    parts: list[bytes] | tuple[bytes, ...], what: str, limits: MetainfoLimits
) -> tuple[str, ...]:
    """Check a whole path (list of components) and return it as text."""
    if not parts:
        raise MetainfoError(f"{what} is empty")
    if len(parts) > limits.max_path_components:
        raise MetainfoError(f"{what} has more than {limits.max_path_components} parts")
    return tuple(validate_component(c, limits) for c in parts)


def get_field(d: dict[bytes, object], key: bytes, kind: type, what: str, required: bool = True) -> object:
    """``d[key]`` checked to be a ``kind``; None when absent and not ``required``."""
    value = d.get(key)
    if value is None:
        if required:
            raise MetainfoError(f"{what} is missing")
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MetainfoError(f"{what} must be {'an integer' if kind is int else kind.__name__}")
    return value
