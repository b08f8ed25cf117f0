"""Usage errors as the README promises them: one ``p2pshare: error:`` line and exit code 2.

Click (inside typer) prints three lines for a bad option (``Usage: ...``, ``Try ...``,
``Error: ...``).  :class:`OneLineGroup` runs the command group in click's non-standalone
mode and renders every click error itself, as one line naming the ``--help`` to read.
A bare ``p2pshare`` still prints the help (click's no-args-is-help), with exit code 2.
The group also hands click the config file's defaults (see :mod:`p2pshare.cli.config_file`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from typer._click import exceptions as click_exc
from typer._click import utils as click_utils
from typer.core import TyperGroup
from typer.exceptions import Abort

from p2pshare.cli.config_file import config_path, default_map, load_file
from p2pshare.errors import ExitCode, UsageError

__all__ = ["OneLineGroup", "usage_line"]


def usage_line(exc: click_exc.ClickException) -> str:
    """The one line for a click error: its message, and for a usage error the help to read."""
    message = " ".join(exc.format_message().split())
    if isinstance(exc, click_exc.UsageError) and exc.ctx is not None:
        message += f" (see '{exc.ctx.command_path} --help')"
    return f"p2pshare: error: {message}"


class OneLineGroup(TyperGroup):
    """A typer group whose click errors are one line on stderr with a distinct exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            if "default_map" not in extra:
                extra["default_map"] = self._file_defaults()
            rv = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except UsageError as exc:  # the config file
            click_utils.echo(f"p2pshare: error: {exc}", err=True)
            code = int(ExitCode.USAGE)
        except click_exc.NoArgsIsHelpError as exc:
            exc.show()  # the help text itself
            code = int(ExitCode.USAGE)
        except click_exc.UsageError as exc:
            click_utils.echo(usage_line(exc), err=True)
            code = int(ExitCode.USAGE)
        except click_exc.ClickException as exc:
            click_utils.echo(usage_line(exc), err=True)
            code = exc.exit_code
        except Abort:
            code = int(ExitCode.INTERRUPTED)
        else:
            code = rv if isinstance(rv, int) else 0
            if not standalone_mode:
                return rv
        if standalone_mode:
            sys.exit(code)
        return code

    def _file_defaults(self) -> dict[str, dict[str, Any]]:
        """The config file's values as click's default_map (below flags and environment)."""
        values = load_file(config_path())
        params = {name: [p.name or "" for p in cmd.params] for name, cmd in self.commands.items()}
        return default_map(values, params)
