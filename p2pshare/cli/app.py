"""The ``p2pshare`` command: a thin typer shell over the engine."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from p2pshare import __version__
from p2pshare.cli import config_cmd, demo_cmd, dht_cmd, doctor_cmd, manifest_cmds, seed_cmd, swarm_cmds
from p2pshare.cli.common import settings
from p2pshare.cli.help_words import WordsCommand
from p2pshare.cli.usage import OneLineGroup

__all__ = ["app", "main"]

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 error, 2 usage, 3 bad target, 4 no such path, 5 port in use, "
    "6 no peers, 7 no metadata, 8 disk full, 9 output not writable, 10 incomplete, 11 unsafe manifest, "
    "12 file not ours, "
    "130 interrupted."
)

app = typer.Typer(
    name="p2pshare",
    cls=OneLineGroup,
    help="Share files peer to peer over real BitTorrent, with no central server.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"p2pshare {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="Log what happens to stderr (-vv for debug).")
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors and the essential result.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    settings.verbose = verbose
    settings.quiet = quiet
    # Without -v, failures reach the user as one line (handle_errors), not as log records.
    level = logging.CRITICAL if quiet else (logging.CRITICAL, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


app.command("create", cls=WordsCommand)(manifest_cmds.create)
app.command("info", cls=WordsCommand)(manifest_cmds.info)
app.command("share", cls=WordsCommand)(swarm_cmds.share)
app.command("seed", cls=WordsCommand)(seed_cmd.seed)
app.command("get", cls=WordsCommand)(swarm_cmds.get)
app.command("dht", cls=WordsCommand)(dht_cmd.dht)
app.command("demo", cls=WordsCommand)(demo_cmd.demo)
app.command("config", cls=WordsCommand)(config_cmd.config)
app.command("doctor", cls=WordsCommand)(doctor_cmd.doctor)


def main() -> None:
    app()
