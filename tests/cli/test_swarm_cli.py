"""`share`, `get`, `dht`, `demo` through typer's CliRunner: arguments, and every error as one line + code."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from p2pshare.cli.app import app
from p2pshare.cli.common import resolve_bootstrap
from p2pshare.config import DEFAULT_BOOTSTRAP
from p2pshare.engine.create import create_torrent
from p2pshare.errors import DiskFullError, ExitCode, UsageError
from tests.e2e.procs import SAMPLE, listening, processes, same_tree, start

HASH = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test keeps its state in a temporary folder, never in ~."""
    monkeypatch.setenv("P2PSHARE_STATE_DIR", str(tmp_path / "state"))
    for name in ("P2PSHARE_BOOTSTRAP", "P2PSHARE_PORT", "P2PSHARE_HOST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "state"


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(app, list(args), env=env)
    assert "Traceback" not in result.stdout and "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def assert_user_error(result: Any, code: int, *words: str) -> str:
    """Exit ``code``, exactly one line on stderr that starts like every error, mentioning ``words``."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("p2pshare: error: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------- arguments and help


def test_help_lists_every_exit_code() -> None:
    """The app's --help names each distinct exit code."""
    result = run("--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for code in ExitCode:
        assert str(int(code)) in text
    for command in ("share", "get", "dht", "demo"):
        assert command in text


@pytest.mark.parametrize("command", ["share", "get", "dht", "demo"])
def test_every_command_has_help_with_examples(command: str) -> None:
    """Each command's --help shows its options and examples."""
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Examples" in result.stdout and "--json" in result.stdout


def test_bad_peer_address_is_a_usage_error() -> None:
    """A --peer that is not HOST:PORT exits 2 and says what form is expected."""
    assert_user_error(run("get", HASH, "--peer", "nonsense", "--no-dht"), ExitCode.USAGE, "HOST:PORT")


def test_bad_bootstrap_address_is_a_usage_error() -> None:
    """A --bootstrap that is not HOST:PORT exits 2."""
    assert_user_error(run("get", HASH, "--bootstrap", "x:y"), ExitCode.USAGE, "--bootstrap")


def test_get_without_any_way_to_find_peers_is_a_usage_error(tmp_path: Path) -> None:
    """`get --no-dht` with no --peer and no magnet hint exits 2 and says to give a peer."""
    result = run("get", HASH, "--no-dht", "-o", str(tmp_path))
    assert_user_error(result, ExitCode.USAGE, "--peer")


def test_bootstrap_comes_from_flags_then_env_then_public_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """--bootstrap wins over $P2PSHARE_BOOTSTRAP, which wins over the public routers; loopback gets none."""
    monkeypatch.setenv("P2PSHARE_BOOTSTRAP", "127.0.0.9:7000, 127.0.0.9:7001")
    assert resolve_bootstrap(["127.0.0.1:1"]) == [("127.0.0.1", 1)]
    assert resolve_bootstrap(None) == [("127.0.0.9", 7000), ("127.0.0.9", 7001)]
    assert resolve_bootstrap(None, no_dht=True) is None
    monkeypatch.delenv("P2PSHARE_BOOTSTRAP")
    assert resolve_bootstrap(None) == list(DEFAULT_BOOTSTRAP)
    assert resolve_bootstrap(None, host="127.0.0.1") == []
    monkeypatch.setenv("P2PSHARE_BOOTSTRAP", "junk")
    with pytest.raises(UsageError):
        resolve_bootstrap(None)


# ---------------------------------------------------------------------- errors as a person meets them


def test_unknown_hash_format() -> None:
    """A TARGET that is no .torrent, magnet or hash exits 3 with one line."""
    assert_user_error(run("get", "not-a-hash"), ExitCode.BAD_TARGET, "info hash")


def test_unknown_hash_format_in_json_mode_also_emits_an_error_event() -> None:
    """With --json the failure is also an "error" event on stdout carrying the exit code."""
    result = run("get", "zz", "--json")
    assert_user_error(result, ExitCode.BAD_TARGET)
    event = json.loads(result.stdout.strip().splitlines()[-1])
    assert event == {**event, "event": "error", "code": 3, "kind": "bad_target"}


def test_share_no_such_path(tmp_path: Path) -> None:
    """Sharing a path that does not exist exits 4."""
    assert_user_error(run("share", str(tmp_path / "missing"), "--no-dht"), ExitCode.NO_SUCH_PATH, "missing")


def test_get_missing_torrent_file(tmp_path: Path) -> None:
    """A .torrent TARGET that does not exist exits 4."""
    assert_user_error(run("get", str(tmp_path / "x.torrent")), ExitCode.NO_SUCH_PATH)


def test_port_in_use() -> None:
    """A --port that another program listens on exits 5 and suggests another port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run("share", str(SAMPLE), "--host", "127.0.0.1", "--port", str(port), "--no-dht")
    assert_user_error(result, ExitCode.PORT_IN_USE, str(port), "--port")


def test_port_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """P2PSHARE_PORT sets the listening port (here one that is taken: exit 5)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run(
            "share", str(SAMPLE), "--host", "127.0.0.1", "--no-dht", env={"P2PSHARE_PORT": str(port)}
        )
    assert_user_error(result, ExitCode.PORT_IN_USE, str(port))


def test_no_peers_within_the_timeout(tmp_path: Path) -> None:
    """When no peer answers within --timeout, `get` exits 6 and says what to try."""
    result = run(
        "get", HASH, "-o", str(tmp_path / "o"), "--no-dht", "--peer", "127.0.0.1:1", "--timeout", "1"
    )
    assert_user_error(result, ExitCode.NO_PEERS, "no peers", "--timeout")


def test_output_folder_not_writable(tmp_path: Path) -> None:
    """An -o that cannot be created exits 9 before anything starts."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("get", HASH, "-o", str(blocker / "sub"), "--peer", "127.0.0.1:1", "--no-dht")
    assert_user_error(result, ExitCode.NOT_WRITABLE, "-o")


def test_metadata_never_arrived(tmp_path: Path) -> None:
    """Peers that do not have the manifest either make `get HASH` exit 7 at the timeout."""
    with processes() as procs:
        # A peer that knows only the hash: it accepts us but cannot send the manifest.
        other = start(
            procs,
            [
                "get",
                HASH,
                "-o",
                str(tmp_path / "a"),
                "--no-dht",
                "--peer",
                "127.0.0.1:1",
                "--host",
                "127.0.0.20",
                "--json",
            ],
            tmp_path / "s1",
        )
        port = listening(other)["port"]
        result = run(
            "get",
            HASH,
            "-o",
            str(tmp_path / "b"),
            "--no-dht",
            "--peer",
            f"127.0.0.20:{port}",
            "--timeout",
            "3",
        )
    assert_user_error(result, ExitCode.NO_METADATA, "manifest")


def test_incomplete_at_the_timeout(tmp_path: Path) -> None:
    """Peers with the manifest but no pieces make `get` exit 10 at the timeout, saying it can resume."""
    created = create_torrent(SAMPLE)
    torrent = tmp_path / "s.torrent"
    torrent.write_bytes(created.torrent)
    with processes() as procs:
        other = start(
            procs,
            [
                "get",
                str(torrent),
                "-o",
                str(tmp_path / "a"),
                "--no-dht",
                "--peer",
                "127.0.0.1:1",
                "--host",
                "127.0.0.21",
                "--json",
            ],
            tmp_path / "s1",
        )
        port = listening(other)["port"]
        result = run(
            "get",
            created.info.info_hash.hex,
            "-o",
            str(tmp_path / "b"),
            "--no-dht",
            "--peer",
            f"127.0.0.21:{port}",
            "--timeout",
            "3",
        )
    assert_user_error(result, ExitCode.INCOMPLETE, "0/", "again")


def test_disk_full_while_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that fills up during the download makes `get` exit 8 with the storage's message."""
    from p2pshare.io import storage

    def full(self: object, index: int, data: object) -> None:
        raise DiskFullError("no space left on the device; free some space or choose another folder with -o")

    monkeypatch.setattr(storage.FileStorage, "write_piece", full)
    with processes() as procs:
        sharer = start(
            procs, ["share", str(SAMPLE), "--host", "127.0.0.22", "--no-dht", "--json"], tmp_path / "s1"
        )
        ready = listening(sharer)
        result = run(
            "get",
            ready["info_hash"],
            "-o",
            str(tmp_path / "out"),
            "--no-dht",
            "--peer",
            f"127.0.0.22:{ready['port']}",
            "--timeout",
            "30",
        )
    assert_user_error(result, ExitCode.DISK_FULL, "space")


# ---------------------------------------------------------------------- success through the runner


def test_get_succeeds_in_process_with_quiet_output(tmp_path: Path) -> None:
    """`-q get` prints only the essential result and exits 0 with identical files."""
    with processes() as procs:
        sharer = start(
            procs, ["share", str(SAMPLE), "--host", "127.0.0.23", "--no-dht", "--json"], tmp_path / "s1"
        )
        ready = listening(sharer)
        out = tmp_path / "out"
        result = run(
            "-q",
            "get",
            ready["info_hash"],
            "-o",
            str(out),
            "--no-dht",
            "--peer",
            f"127.0.0.23:{ready['port']}",
            "--timeout",
            "30",
        )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("done: sample_files") and "saved in" in lines[1]
    assert result.stderr == ""
    assert same_tree(SAMPLE, out / "sample_files")


def test_dht_read_only_flag_reaches_the_dht_config() -> None:
    """--dht-read-only turns on BEP 43 read-only mode in the session's DHT configuration."""
    from p2pshare.cli.swarm_opts import _options

    assert _options("127.0.0.1", 0, [], None, True).config.dht.read_only is True
    assert _options("127.0.0.1", 0, [], None).config.dht.read_only is False


def test_encryption_option_reaches_the_mse_config() -> None:
    """--encryption and $P2PSHARE_ENCRYPTION set the session's MSE policy on share, seed and get."""
    from p2pshare.cli.app import app
    from p2pshare.cli.swarm_opts import _options
    from p2pshare.config import EncryptionPolicy

    assert _options("127.0.0.1", 0, [], None).config.mse.policy is EncryptionPolicy.PREFER
    opts = _options("127.0.0.1", 0, [], None, encryption=EncryptionPolicy.REQUIRE)
    assert opts.config.mse.policy is EncryptionPolicy.REQUIRE
    for command in ("share", "seed", "get"):
        shown = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"}).stdout
        assert "--encryption" in shown and "P2PSHARE_ENCRYPTION" in shown
    bad = CliRunner().invoke(app, ["get", "00" * 20, "--encryption", "maybe"])
    assert bad.exit_code == 2


def test_human_time_is_one_clock_style_at_every_scale() -> None:
    """Durations and ETAs are all clocks (m:ss or h:mm:ss), rounded up so a running job never reads 0:00."""
    from p2pshare.cli.views import human_time

    assert human_time(0.042) == "0:01"
    assert human_time(0) == "0:00"
    assert human_time(2.5) == "0:03"
    assert human_time(125) == "2:05"
    assert human_time(3725) == "1:02:05"
    assert human_time(None) == "--:--"
    assert human_time(float("inf")) == "--:--"


def test_cli_start_up_does_not_load_the_swarm_engine() -> None:
    """Importing the CLI (for create, info, --help) leaves the swarm engine and DHT unloaded."""
    import subprocess
    import sys

    code = (
        "import sys, p2pshare.cli.app\n"
        "names = ('p2pshare.engine.torrent', 'p2pshare.engine.runner', 'p2pshare.engine.dht_node')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
