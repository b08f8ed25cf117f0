"""Defaults from ``$XDG_CONFIG_HOME/p2pshare/config.toml``, below flags and environment.

Precedence, highest first: a flag on the command line, an environment variable, the
config file, the built-in default.  Click already orders the first three that way when
the file's values are handed to it as the context's ``default_map``; a key whose
environment variable is set is left out of that map, so an environment variable that
p2pshare reads itself (``P2PSHARE_BOOTSTRAP``) wins over the file too.

The file is flat TOML; each key sets the option of the same name on every command that
has it::

    port = 6881
    bootstrap = ["192.168.1.2:6881"]
    output = "~/Downloads"

An unknown key, a value of the wrong type or a file that is not TOML is one clear error
(exit 2), never a traceback.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pshare.config import EncryptionPolicy
from p2pshare.core.rate import parse_rate
from p2pshare.core.types import parse_host_port
from p2pshare.errors import UsageError

__all__ = ["KEYS", "ConfigKey", "Effective", "config_path", "default_map", "effective", "load_file"]

#: A config file larger than this is not a config file.
MAX_CONFIG_BYTES = 64 * 1024


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError("expected a port number from 0 to 65535")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _encryption(value: object) -> str:
    choices = [p.value for p in EncryptionPolicy]
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}")
    return value.lower()


def _path(value: object) -> str:
    return str(Path(_text(value)).expanduser())


def _rate(value: object) -> str:
    """A rate as ``--max-up`` takes it: a number of bytes/s or text such as ``8MiB/s``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError('expected a rate such as "8MiB/s" or a number of bytes per second')
    text = str(value)
    try:
        parse_rate(text)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    return text


def _host_ports(value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError('expected "HOST:PORT" or a list of them')
    out: list[str] = []
    for item in items:
        try:
            out.append(str(parse_host_port(_text(item))))
        except ValueError:
            raise ValueError(f"{item!r} is not HOST:PORT") from None
    return out


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One key of the config file: the option it sets, its variable, its built-in default."""

    name: str
    env: str | None
    default: str  #: as a person reads it
    parse: Callable[[object], object]

    @property
    def param(self) -> str:
        """The command parameter it sets (every command that has one of this name)."""
        return self.name


KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("port", "P2PSHARE_PORT", "0 (any free port)", _port),
    ConfigKey("dht_port", "P2PSHARE_DHT_PORT", "the TCP port number if free, else any", _port),
    ConfigKey("host", "P2PSHARE_HOST", "0.0.0.0", _text),
    ConfigKey("bootstrap", "P2PSHARE_BOOTSTRAP", "the public Mainline routers", _host_ports),
    ConfigKey("output", None, ". (the current folder)", _path),
    ConfigKey("dht_read_only", "P2PSHARE_DHT_READ_ONLY", "false", _flag),
    ConfigKey("max_up", None, "no cap", _rate),
    ConfigKey("max_down", None, "no cap", _rate),
    ConfigKey("encryption", "P2PSHARE_ENCRYPTION", "prefer", _encryption),
)
_BY_NAME = {key.name: key for key in KEYS}


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$P2PSHARE_CONFIG``, else ``$XDG_CONFIG_HOME/p2pshare/config.toml`` (``~/.config`` by default)."""
    env = os.environ if environ is None else environ
    if env.get("P2PSHARE_CONFIG"):
        return Path(env["P2PSHARE_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "p2pshare" / "config.toml"


def load_file(path: Path) -> dict[str, object]:
    """The validated values of the config file (empty when there is none); UsageError if it is wrong."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise UsageError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes; not a config file")
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    values: dict[str, object] = {}
    for name, value in raw.items():
        key = _BY_NAME.get(name)
        if key is None:
            known = ", ".join(k.name for k in KEYS)
            raise UsageError(f"{path}: unknown key {name!r} (known keys: {known})")
        try:
            values[name] = key.parse(value)
        except ValueError as exc:
            raise UsageError(f"{path}: {name}: {exc}") from None
    return values


def default_map(
    values: Mapping[str, object],
    commands: Mapping[str, Iterable[str]],
    environ: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Click's ``default_map``: for each command, the file's values for the parameters it has.

    ``commands`` maps a command name to its parameter names.  Keys whose environment
    variable is set are left out: the environment ranks above the file.
    """
    env = os.environ if environ is None else environ
    out: dict[str, dict[str, Any]] = {}
    for command, params in commands.items():
        names = set(params)
        chosen = {
            name: value
            for name, value in values.items()
            if name in names and not (_BY_NAME[name].env and env.get(_BY_NAME[name].env or ""))
        }
        if chosen:
            out[command] = chosen
    return out


@dataclass(frozen=True, slots=True)
class Effective:
    """A key's value in force before any flag, and where it came from."""

    key: str
    value: object
    source: str  #: "environment (VAR)", "config file", or "default"


def effective(values: Mapping[str, object], environ: Mapping[str, str] | None = None) -> list[Effective]:
    """Every key's value as a command would see it without flags, with its source."""
    env = os.environ if environ is None else environ
    rows: list[Effective] = []
    for key in KEYS:
        if key.env and env.get(key.env):
            rows.append(Effective(key.name, env[key.env], f"environment ({key.env})"))
        elif key.name in values:
            rows.append(Effective(key.name, values[key.name], "config file"))
        else:
            rows.append(Effective(key.name, key.default, "default"))
    return rows
