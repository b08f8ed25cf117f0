"""--transport: a bad value is a usage error; a good one reaches the session's configuration."""

from __future__ import annotations

from typer.testing import CliRunner

from p2pshare.cli.app import app
from p2pshare.cli.swarm_opts import _options
from p2pshare.engine.transports import Transport
from p2pshare.errors import ExitCode


def test_an_unknown_transport_is_a_usage_error() -> None:
    """`get --transport quic` exits 2 with one line naming the option."""
    result = CliRunner().invoke(app, ["get", "0" * 40, "--transport", "quic"])
    assert result.exit_code == ExitCode.USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--transport" in lines[0]


def test_the_chosen_transport_is_the_session_mode() -> None:
    """Each --transport value becomes config.transport.mode; the default is both."""
    for choice in Transport:
        options = _options("127.0.0.1", 0, None, None, transport=choice)
        assert options.config.transport.mode == choice.value
    assert _options("127.0.0.1", 0, None, None).config.transport.mode == "both"
