"""Arguments, help and messages of the terminal round two, through typer's CliRunner."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from p2pshare.cli.app import app
from p2pshare.engine.create import create_torrent
from p2pshare.errors import ExitCode
from tests.cli.test_swarm_cli import HASH, assert_user_error, run
from tests.e2e.procs import SAMPLE


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test keeps its state in a temporary folder, never in ~."""
    monkeypatch.setenv("P2PSHARE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for name in ("P2PSHARE_BOOTSTRAP", "P2PSHARE_PORT", "P2PSHARE_HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "state"


def help_of(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("command", ["share", "seed", "get", "dht", "demo", "create", "info"])
def test_help_placeholders_read_as_words(command: str) -> None:
    """No `<int range>`, `<str>` or `{path}` placeholders: words such as PORT, PATH, SECONDS, TARGET."""
    text = help_of(command)
    assert not re.search(r"<[a-z ]+>|\{[a-z_]+\}", text), text
    placeholders = re.findall(r"^  (?:-\w, )?--[\w-]+ ([^\s]+)  ", text.split("Options:")[1], re.M)
    assert placeholders or command in ("info", "demo")
    assert all(p.isupper() for p in placeholders), placeholders


@pytest.mark.parametrize("command", ["share", "seed", "get", "dht", "demo"])
def test_examples_keep_one_command_a_line(command: str) -> None:
    """Each example in --help stands on its own line, starting with `p2pshare COMMAND`."""
    text = help_of(command)
    examples = text.split("Examples:")[1].split("Arguments:")[0].split("Options:")[0]
    lines = [line.strip() for line in examples.strip().splitlines() if line.strip()]
    assert len(lines) >= 2
    assert all(line.startswith(f"p2pshare {command}") for line in lines), lines


def test_dht_help_describes_its_own_udp_port() -> None:
    """`dht --help` says its port is the DHT node's UDP port, not a TCP port for peers."""
    text = " ".join(help_of("dht").split())
    assert "UDP port of this DHT node" in text and "TCP port to accept peers" not in text


def test_get_help_explains_timeout_and_max_time() -> None:
    """--timeout is the stall timeout, --max-time the total cap, both in SECONDS."""
    text = " ".join(help_of("get").split())
    assert "--timeout SECONDS" in text and "nothing new has arrived" in text
    assert "--max-time SECONDS" in text


def test_dht_port_in_use_names_an_option_that_exists() -> None:
    """A taken UDP port for `dht` exits 5 and suggests --port, which `dht` has."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        result = run("dht", "--host", "127.0.0.1", "--port", str(port), "--no-bootstrap")
    line = assert_user_error(result, ExitCode.PORT_IN_USE, str(port), "--port")
    assert "--dht-port" not in line
    assert "--port" in help_of("dht")


def test_share_checks_its_port_before_hashing(tmp_path: Path) -> None:
    """A taken --port fails before any hashing starts (no hashing line, no manifest)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run("share", str(SAMPLE), "--host", "127.0.0.1", "--port", str(port), "--no-dht", "--json")
    assert result.exit_code == ExitCode.PORT_IN_USE
    events = [line for line in result.stdout.splitlines() if line.strip()]
    assert not any('"hashing"' in e or '"manifest"' in e for e in events), events


def test_verbose_no_peers_prints_no_traceback(tmp_path: Path) -> None:
    """-v on an ordinary failure (no peers) still ends in one error line, no traceback."""
    result = run(
        "-v", "get", HASH, "-o", str(tmp_path / "o"), "--no-dht", "--peer", "127.0.0.1:1", "--timeout", "0.5"
    )
    assert result.exit_code == ExitCode.NO_PEERS
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert "nothing new arrived for 0.5 s" in result.stderr


def test_seed_needs_a_torrent_file() -> None:
    """`seed` with a magnet link exits 3: only a .torrent lists the files to check."""
    result = run("seed", "magnet:?xt=urn:btih:" + HASH, "--no-dht")
    assert_user_error(result, ExitCode.BAD_TARGET, "seed needs a .torrent")


def make_torrent(tmp_path: Path) -> tuple[Path, Any]:
    created = create_torrent(SAMPLE)
    path = tmp_path / "sample.torrent"
    path.write_bytes(created.torrent)
    return path, created


def test_seed_refuses_a_folder_with_missing_pieces(tmp_path: Path) -> None:
    """`seed` on an empty folder exits 10 and says `get` fetches the rest."""
    torrent, _ = make_torrent(tmp_path)
    (tmp_path / "empty").mkdir()
    result = run("seed", str(torrent), "--data", str(tmp_path / "empty"), "--no-dht", "--host", "127.0.0.1")
    assert_user_error(result, ExitCode.INCOMPLETE, "0/", "p2pshare get")


def test_seed_of_a_missing_folder(tmp_path: Path) -> None:
    """`seed --data` naming no folder exits 4."""
    torrent, _ = make_torrent(tmp_path)
    result = run("seed", str(torrent), "--data", str(tmp_path / "nope"), "--no-dht", "--host", "127.0.0.1")
    assert_user_error(result, ExitCode.NO_SUCH_PATH, "nope")


def test_get_of_partial_files_without_peers_says_what_is_there(tmp_path: Path) -> None:
    """`get X.torrent --no-dht` with nothing complete on disk is a usage error naming the pieces found."""
    torrent, _ = make_torrent(tmp_path)
    result = run("get", str(torrent), "-o", str(tmp_path / "o"), "--no-dht")
    assert_user_error(result, ExitCode.USAGE, "0/", "--peer")
