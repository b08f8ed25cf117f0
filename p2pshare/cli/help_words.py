"""Help that reads as words: ``TARGET``, ``PATH``, ``PORT``, ``SECONDS``, not ``{target}`` or ``<int range>``.

Typer writes a required argument as ``{name}`` in the usage line and appends its type
(``<str>``, ``<path>``) in the Arguments section.  Commands built with
:class:`WordsCommand` show the argument's metavar (or its name in capitals) alone.
Options name their placeholder with ``metavar=`` where they are declared.
"""

from __future__ import annotations

from typing import Any

from typer import _click as click
from typer.core import TyperCommand

__all__ = ["WordsCommand"]


def _word(param: click.Parameter) -> str:
    return param.metavar or (param.name or "").upper()


class WordsCommand(TyperCommand):
    """A command whose usage line and Arguments section name arguments by one word."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                word = _word(param)
                pieces.append(word if param.required else f"[{word}]")
        return pieces

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        args: list[tuple[str, str]] = []
        opts: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record: Any = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                args.append((_word(param), record[1]))
            elif param.param_type_name == "option":
                opts.append(record)
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if opts:
            with formatter.section("Options"):
                formatter.write_dl(opts)
