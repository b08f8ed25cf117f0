"""Before and around a run: is the port free, what is already on disk, what a stopped wait means.

The runner calls these so that long work (hashing, waiting for peers) starts only
when it can succeed, and so that a wait that ends early raises the error (and exit
code) that says why.
"""

from __future__ import annotations

import errno
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from p2pshare.core.metainfo import Info
from p2pshare.engine import events as ev
from p2pshare.engine.checking import CheckResult, CheckStarted, check_files
from p2pshare.errors import IncompleteError, NoMetadataError, NoPeersError, NotWritableError, PortInUseError

if TYPE_CHECKING:
    from p2pshare.engine.runner import SwarmOptions

__all__ = ["CheckListener", "check_existing", "check_port", "check_writable", "raise_for_stall"]


class CheckListener(Protocol):
    """Who watches a file check (the view's bar); ``advance`` is called from hashing threads."""

    def check_started(self, started: CheckStarted) -> None: ...

    def check_advance(self, nbytes: int) -> None: ...

    def check_finished(self, result: CheckResult) -> None: ...


async def check_existing(
    info: Info, folder: Path, options: SwarmOptions, listener: CheckListener | None
) -> CheckResult:
    """Check what ``folder`` already holds of ``info``, telling ``listener``; keep it as resume state."""
    resume = options.state.resume_path(info.info_hash.hex, folder) if options.state is not None else None
    if listener is None:
        return await check_files(info, folder, options.config, resume_path=resume)
    result = await check_files(
        info,
        folder,
        options.config,
        resume_path=resume,
        on_start=listener.check_started,
        advance=listener.check_advance,
    )
    listener.check_finished(result)
    return result


def raise_for_stall(st: ev.TorrentStatus, ever_connected: int, has_info: bool, reason: str) -> None:
    """The error a stopped wait means: no peers (6), no manifest (7), or incomplete (10)."""
    if not ever_connected:
        tried = f" ({st.known_peers} address(es) tried)" if st.known_peers else ""
        raise NoPeersError(
            f"no peers found, {reason}{tried}; check the hash, give --peer HOST:PORT or --bootstrap, "
            "or raise --timeout"
        )
    if not has_info:
        raise NoMetadataError(
            f"connected to {ever_connected} peer(s) but none sent the manifest, {reason}; "
            "try again later, or get the .torrent file"
        )
    raise IncompleteError(
        f"{st.have_pieces}/{st.num_pieces} pieces verified, {reason}; run the same command again "
        "to resume, or raise --timeout"
    )


def check_port(host: str, port: int) -> None:
    """Fail early (PortInUseError) when ``port`` is taken, before any long work such as hashing."""
    if not port:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(
                    f"port {port} on {host} is in use or not allowed; choose another with --port, or --port 0"
                ) from None
            raise


def check_writable(folder: Path) -> Path:
    """Create ``folder`` if needed and prove we can write in it (NotWritableError otherwise)."""
    folder = Path(folder)
    hint = "choose another folder with -o"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotWritableError(f"{folder} exists and is not a folder; {hint}") from None
    except OSError as exc:
        raise NotWritableError(f"cannot create {folder}: {exc.strerror or exc}; {hint}") from None
    if not folder.is_dir():
        raise NotWritableError(f"{folder} is not a folder; {hint}")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise NotWritableError(f"cannot write in {folder}: {exc.strerror or exc}; {hint}") from None
    return folder.resolve()
