"""What every command shares: error handling, output streams, target parsing."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from p2pshare.config import MetainfoLimits
from p2pshare.core.magnet import Magnet, parse_magnet
from p2pshare.core.metainfo import Metainfo, parse_torrent
from p2pshare.errors import ExitCode, MetainfoError, P2PShareError, PathNotFoundError, TargetError

__all__ = ["Target", "err_console", "fail", "handle_errors", "load_target", "out_console", "print_json"]

F = TypeVar("F", bound=Callable[..., Any])

out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
log = logging.getLogger("p2pshare")


def fail(message: str, code: int = ExitCode.ERROR) -> typer.Exit:
    """Print one clear line on stderr and return the Exit to raise."""
    err_console.print(f"p2pshare: error: {message}", markup=False)
    return typer.Exit(int(code))


def handle_errors(func: F) -> F:
    """Turn every failure into one line on stderr and a distinct exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except P2PShareError as exc:
            log.debug("command failed", exc_info=True)
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("p2pshare: interrupted", markup=False)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except OSError as exc:
            log.debug("command failed", exc_info=True)
            raise fail(f"{exc.strerror or exc} ({exc.filename or 'I/O'})") from None
        except Exception as exc:  # a bug: still one line, details with -v
            log.debug("unexpected error", exc_info=True)
            raise fail(f"unexpected {type(exc).__name__}: {exc} (run with -v for details)") from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: object) -> None:
    """One JSON object on one line of stdout, flushed (for scripts reading NDJSON)."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n")
    sys.stdout.flush()


class Target:
    """What a TARGET argument named: a whole manifest, or only a hash (magnet/bare hash)."""

    def __init__(self, metainfo: Metainfo | None, magnet: Magnet) -> None:
        self.metainfo = metainfo
        self.magnet = magnet

    @property
    def info_hash(self) -> Any:
        return self.magnet.info_hash


def load_target(text: str, limits: MetainfoLimits | None = None) -> Target:
    """A .torrent path, a magnet link, or a 40-hex/32-base32 info hash."""
    limits = limits or MetainfoLimits()
    if text.lower().startswith("magnet:"):
        return Target(None, parse_magnet(text))
    path = Path(text)
    if path.is_file() or text.endswith(".torrent"):
        if not path.exists():
            raise PathNotFoundError(f"no such torrent file: {text}")
        try:
            if path.stat().st_size > limits.max_torrent_file:
                raise MetainfoError(f"{text} is larger than {limits.max_torrent_file} bytes: not a torrent")
            data = path.read_bytes()
        except PermissionError:
            raise PathNotFoundError(f"cannot read {text}: permission denied") from None
        try:
            metainfo = parse_torrent(data, limits)
        except MetainfoError as exc:
            raise MetainfoError(f"{text}: {exc}") from None
        return Target(metainfo, Magnet(metainfo.info_hash, metainfo.info.name))
    try:
        return Target(None, parse_magnet(text))
    except TargetError:
        raise TargetError(
            f"{text!r} is not a .torrent file, a magnet link, or a 40-hex / 32-base32 info hash"
        ) from None
