"""What every command shares: error handling, output streams, target parsing."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from p2pshare.config import DEFAULT_BOOTSTRAP, MetainfoLimits
from p2pshare.core.magnet import Magnet, parse_magnet
from p2pshare.core.metainfo import Metainfo, parse_torrent
from p2pshare.core.types import Addr, PeerAddress, parse_host_port
from p2pshare.errors import ExitCode, MetainfoError, P2PShareError, PathNotFoundError, TargetError, UsageError
from p2pshare.io.dht_state import bootstrap_from_env

__all__ = [
    "Settings",
    "Target",
    "err_console",
    "fail",
    "handle_errors",
    "load_target",
    "out_console",
    "parse_peers",
    "print_json",
    "resolve_bootstrap",
    "run_async",
    "settings",
    "stdout_gone",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


@dataclass
class Settings:
    """The global options (-v / -q), set by the root callback for every command."""

    verbose: int = 0
    quiet: bool = False


settings = Settings()

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
        except BrokenPipeError:
            stdout_gone()  # the reader of our output went away: not an error to report
            raise typer.Exit(0) from None
        except P2PShareError as exc:  # an ordinary condition: a traceback only with -vv
            log.info("command failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("p2pshare: interrupted; stopped cleanly (run it again to go on)", markup=False)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except OSError as exc:
            log.info("command failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
            raise fail(f"{exc.strerror or exc} ({exc.filename or 'I/O'})") from None
        except Exception as exc:  # a bug: still one line, details with -v
            log.error("unexpected error", exc_info=True)
            raise fail(f"unexpected {type(exc).__name__}: {exc} (run with -v for details)") from None

    return wrapper  # type: ignore[return-value]


def stdout_gone() -> None:
    """Stdout's reader has gone (a closed pipe): send what is left to /dev/null, quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


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


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main``; Ctrl-C (SIGINT) or SIGTERM cancels it so its cleanup runs, then KeyboardInterrupt."""
    terminated = False

    async def wrapper() -> T:
        nonlocal terminated
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def on_term() -> None:
            nonlocal terminated
            terminated = True
            if task is not None:
                task.cancel()

        try:
            loop.add_signal_handler(signal.SIGTERM, on_term)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals
            pass
        try:
            return await main
        finally:
            try:
                loop.remove_signal_handler(signal.SIGTERM)
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    try:
        with asyncio.Runner() as runner:
            return runner.run(wrapper())
    except asyncio.CancelledError:
        if terminated:
            raise KeyboardInterrupt from None
        raise


def parse_peers(values: Sequence[str] | None, option: str = "--peer") -> list[PeerAddress]:
    """``HOST:PORT`` values (each may also be a comma-separated list) as checked addresses."""
    out: list[PeerAddress] = []
    for value in values or ():
        for item in value.split(","):
            if not item.strip():
                continue
            try:
                out.append(parse_host_port(item))
            except ValueError:
                raise UsageError(
                    f"{option} {item.strip()!r}: expected HOST:PORT, for example 192.168.1.5:6881"
                ) from None
    return out


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def resolve_bootstrap(
    flags: Sequence[str] | None, *, no_dht: bool = False, host: str = "0.0.0.0"
) -> list[Addr] | None:
    """DHT bootstrap nodes: --bootstrap, else $P2PSHARE_BOOTSTRAP, else the public routers; None: no DHT.

    A node bound to a loopback address cannot reach the internet, so it never gets the
    public routers as a default (it starts alone, or from its saved nodes).
    """
    if no_dht:
        return None
    nodes: list[Addr] = list(parse_peers(flags, "--bootstrap"))
    if nodes:
        return nodes
    from_env = bootstrap_from_env()
    if from_env:
        return from_env
    if _is_loopback(host):
        return []
    return list(DEFAULT_BOOTSTRAP)
