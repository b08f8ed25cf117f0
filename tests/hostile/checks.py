"""The three things every hostile-peer test asserts, stated once."""

from __future__ import annotations

from tests.e2e.procs import Proc
from tests.hostile.harness import hosts_banned, reasons_for

#: Reasons that end a connection without blame (the transfer is over, or we are stopping).
BENIGN = ("both sides are seeds", "shutting down", "the peer closed the connection", "connection closed")


def assert_only_blamed(proc: Proc, liar_host: str | None, honest_hosts: list[str], *, ban: bool) -> None:
    """``liar_host`` (if any) is banned (or at least dropped), and no honest host is banned or
    dropped for anything but a benign reason."""
    banned = hosts_banned(proc)
    for host in honest_hosts:
        assert host not in banned, (host, reasons_for(proc, host))
        blamed = [r for r in reasons_for(proc, host) if not r.startswith(BENIGN)]
        assert not blamed, (host, blamed)
    if liar_host is not None:
        if ban:
            assert banned == {liar_host}, (banned, reasons_for(proc, liar_host))
        else:
            assert reasons_for(proc, liar_host), f"{liar_host} was never dropped: {proc.describe()}"
            assert banned <= {liar_host}, banned
