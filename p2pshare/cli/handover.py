"""Handing a share over: the magnet in single quotes, a complete "others run:" command, a QR code.

The command others run is copy-pasteable as printed: the magnet is quoted for the
shell (``&`` would otherwise start a background job) and every ``--bootstrap`` the
sharer used is repeated, so the receiver finds the same DHT.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from p2pshare.core.types import Addr

__all__ = ["others_run", "qr_text", "shell_quote"]


def shell_quote(text: str) -> str:
    """``text`` in single quotes for a POSIX shell (a single quote inside becomes ``'\\''``)."""
    return "'" + text.replace("'", "'\\''") + "'"


def others_run(magnet: str, bootstrap: Sequence[Addr] | None) -> str:
    """The whole command a receiver runs: ``p2pshare get 'magnet:...' [--bootstrap H:P ...]``."""
    parts = ["p2pshare", "get", shell_quote(magnet)]
    for host, port in bootstrap or ():
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        parts += ["--bootstrap", shown]
    return " ".join(parts)


def qr_text(data: str) -> str:
    """``data`` as a QR code drawn with block characters (two modules a character row)."""
    import segno  # loaded only for --qr

    qr = segno.make(data, error="l")
    out = io.StringIO()
    qr.terminal(out=out, compact=True)
    return out.getvalue()
