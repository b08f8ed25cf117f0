"""``p2pshare config``: the defaults in force, and where each one came from."""

from __future__ import annotations

from typing import Annotated

import typer

from p2pshare.cli.common import handle_errors, out_console, print_json
from p2pshare.cli.config_file import config_path, effective, load_file

__all__ = ["config"]


@handle_errors
def config(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
) -> None:
    """Show the effective defaults and where each came from: environment, config file, or built in.

    Flags on the command line win over all of these.  The file is
    $XDG_CONFIG_HOME/p2pshare/config.toml (or $P2PSHARE_CONFIG), flat TOML:

      port = 6881

      bootstrap = ["192.168.1.2:6881"]

      output = "~/Downloads"
    """
    path = config_path()
    rows = effective(load_file(path))
    if json_output:
        print_json(
            {
                "event": "config",
                "file": str(path),
                "file_exists": path.is_file(),
                "values": {row.key: {"value": row.value, "source": row.source} for row in rows},
            }
        )
        return
    state = "" if path.is_file() else " (not present)"
    out_console.print(f"config file: {path}{state}", markup=False)
    width = max(len(row.key) for row in rows)
    for row in rows:
        value = ", ".join(map(str, row.value)) if isinstance(row.value, list) else str(row.value)
        out_console.print(f"  {row.key:<{width}}  {value}  [{row.source}]", markup=False)
