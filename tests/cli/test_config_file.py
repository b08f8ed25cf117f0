"""The config file: defaults below flags and environment; `p2pshare config` shows where each came from."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from p2pshare.cli.app import app
from p2pshare.cli.config_file import config_path, default_map, effective, load_file
from p2pshare.errors import ExitCode, UsageError


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    monkeypatch.setenv("P2PSHARE_CONFIG", str(path))
    for var in ("P2PSHARE_PORT", "P2PSHARE_HOST", "P2PSHARE_BOOTSTRAP", "P2PSHARE_DHT_PORT"):
        monkeypatch.delenv(var, raising=False)
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def test_path_follows_xdg(tmp_path: Path) -> None:
    """Without $P2PSHARE_CONFIG the file is $XDG_CONFIG_HOME/p2pshare/config.toml."""
    assert config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "p2pshare" / "config.toml"
    assert config_path({"P2PSHARE_CONFIG": "/x/y.toml"}) == Path("/x/y.toml")


def test_missing_file_is_empty(tmp_path: Path) -> None:
    """No file means no values, not an error."""
    assert load_file(tmp_path / "none.toml") == {}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("prt = 1", "unknown key 'prt'"),
        ('port = "x"', "port: expected a port number"),
        ("port = 70000", "port: expected a port number"),
        ('bootstrap = ["nohost"]', "is not HOST:PORT"),
        ("port = = 1", "not valid TOML"),
        ("dht_read_only = 1", "expected true or false"),
        ('encryption = "maybe"', "encryption: expected one of prefer, require, off"),
    ],
)
def test_bad_file_is_a_usage_error(tmp_path: Path, text: str, needle: str) -> None:
    """A wrong key or value names the file and the key."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=needle) as info:
        load_file(path)
    assert str(path) in str(info.value)


def test_default_map_skips_keys_set_in_environment() -> None:
    """A key whose environment variable is set is left to the environment."""
    values = {"port": 7000, "bootstrap": ["127.0.0.1:9"], "output": "/tmp/x"}
    commands = {"get": ["port", "bootstrap", "output"], "dht": ["port", "bootstrap"], "info": ["target"]}
    got = default_map(values, commands, {"P2PSHARE_BOOTSTRAP": "127.0.0.1:1"})
    assert got == {"get": {"port": 7000, "output": "/tmp/x"}, "dht": {"port": 7000}}


def test_effective_sources() -> None:
    """Each key reports environment over file over default."""
    rows = {r.key: r for r in effective({"port": 7000, "host": "127.0.0.1"}, {"P2PSHARE_PORT": "7001"})}
    assert (rows["port"].value, rows["port"].source) == ("7001", "environment (P2PSHARE_PORT)")
    assert (rows["host"].value, rows["host"].source) == ("127.0.0.1", "config file")
    assert rows["output"].source == "default"


def test_config_command_json(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`p2pshare config --json` lists every key with its value and source."""
    cfg.write_text('port = 7000\noutput = "~/dl"\n')
    monkeypatch.setenv("P2PSHARE_HOST", "127.0.0.5")
    result = CliRunner().invoke(app, ["config", "--json"])
    assert result.exit_code == 0, result.stderr
    obj = json.loads(result.stdout)
    assert obj["values"]["port"] == {"value": 7000, "source": "config file"}
    assert obj["values"]["host"] == {"value": "127.0.0.5", "source": "environment (P2PSHARE_HOST)"}
    assert obj["values"]["output"]["value"] == str(Path("~/dl").expanduser())
    assert obj["values"]["bootstrap"]["source"] == "default"


def test_config_command_table(cfg: Path) -> None:
    """The table names the file and says when it is absent."""
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0
    assert f"config file: {cfg} (not present)" in result.stdout
    assert "port" in result.stdout and "[default]" in result.stdout


def test_bad_file_stops_every_command_with_one_line(cfg: Path) -> None:
    """A broken config file is one `p2pshare: error:` line and exit 2, before the command runs."""
    cfg.write_text("nonsense = true\n")
    result = CliRunner().invoke(app, ["info", "0" * 40])
    assert result.exit_code == ExitCode.USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("p2pshare: error: ") and "nonsense" in lines[0]


def _get(*extra: str) -> int:
    args = ["get", "1" * 40, "--no-dht", "--peer", "127.0.0.1:1", "--timeout", "1", "-o", "."]
    result = CliRunner().invoke(app, [*args, *extra])
    return result.exit_code


def test_file_value_reaches_the_command(
    cfg: Path, busy_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port from the file is used; the environment beats the file; a flag beats both."""
    monkeypatch.chdir(tmp_path)
    cfg.write_text(f'port = {busy_port}\nhost = "127.0.0.1"\n')
    assert _get() == ExitCode.PORT_IN_USE
    assert _get("--port", "0") == ExitCode.NO_PEERS
    monkeypatch.setenv("P2PSHARE_PORT", "0")
    assert _get() == ExitCode.NO_PEERS


def test_encryption_key_is_read_in_any_case(tmp_path: Path) -> None:
    """The encryption key takes prefer/require/off in any case and stores it lower-case."""
    path = tmp_path / "c.toml"
    path.write_text('encryption = "Require"')
    assert load_file(path) == {"encryption": "require"}
