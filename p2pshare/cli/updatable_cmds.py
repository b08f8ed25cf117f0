"""The CLI side of updatable shares (BEP 46): ``share --publish`` and ``get <btpk magnet> --follow``.

Kept apart from :mod:`.swarm_cmds`, which only adds the options and calls
:func:`run_publish` / :func:`run_follow`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from p2pshare.cli.common import run_async
from p2pshare.cli.views import Mode, View
from p2pshare.core.types import PeerAddress
from p2pshare.core.updatable import Followed

if TYPE_CHECKING:
    from p2pshare.engine.runner import SwarmOptions

__all__ = [
    "DeleteOpt",
    "FollowArgs",
    "FollowOpt",
    "KeyOpt",
    "PublishArgs",
    "PublishOpt",
    "run_follow",
    "run_publish",
]

PublishOpt = Annotated[
    bool,
    typer.Option(
        "--publish",
        help="Publish an updatable share (BEP 46): followers use the public key, and get every new "
        "version of the folder as it changes (only changed files). Implies --format v2.",
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key",
        metavar="FILE",
        help="ed25519 private key file for --publish (default: one kept per folder in the state folder).",
        show_default=False,
    ),
]
FollowOpt = Annotated[
    bool,
    typer.Option("--follow", help="With a btpk magnet link: keep the folder in sync with every new version."),
]
DeleteOpt = Annotated[
    bool, typer.Option("--delete", help="With --follow: delete files that vanished upstream.")
]


class PublishArgs(NamedTuple):
    key_file: Path | None
    host: str
    piece_length: int | None
    include_hidden: bool
    peers: list[PeerAddress]


class FollowArgs(NamedTuple):
    output: Path
    keep_following: bool
    delete: bool
    peers: list[PeerAddress]
    timeout: float | None


def run_publish(path: Path, options: SwarmOptions, view: View, args: PublishArgs) -> None:
    """``share PATH --publish``: seed and keep the share's item current until Ctrl-C."""
    key_file, host, piece_length, include_hidden, peers = args
    from p2pshare.engine import publish as pub
    from p2pshare.engine.runner import Ready
    from p2pshare.engine.state import StateDir

    state = options.state or StateDir()
    private_key = pub.share_key(state, path, key_file)
    builder = pub.IncrementalBuilder(path, piece_length=piece_length, include_hidden=include_hidden)
    hints: list[PeerAddress] = []
    view.extra_listening = {"name": Path(path).name}

    def on_ready(ready: Ready) -> None:
        if host not in ("0.0.0.0", "::", ""):
            hints.append(PeerAddress(host, ready.port))
        from p2pshare.core.dht.items import public_key_of
        from p2pshare.core.updatable import make_btpk_magnet

        public_key = public_key_of(private_key)
        magnet = make_btpk_magnet(public_key, Path(path).resolve().name, tuple(hints))
        view.extra_listening.update(public_key=public_key.hex(), magnet=magnet)
        view.line(f"public key {public_key.hex()}", essential=True, style="bold cyan")
        view.line(f"magnet     {magnet}", essential=True)
        view.line(f"others run: p2pshare get '{magnet}' --follow", style="dim")

    def on_published(p: Any) -> None:
        view.json(p.to_dict())
        changed = f", {len(p.changed_files)} file(s) changed" if p.seq > 1 else ""
        view.line(f"published version {p.seq} ({p.info_hash_v2[:16]}...){changed}; {p.stored} DHT node(s)")

    view.on_ready = on_ready
    run_async(
        pub.publish(
            builder,
            options,
            private_key=private_key,
            state=state,
            hints=tuple(hints),
            on_event=view.event,
            on_published=on_published,
            on_swarm=view.attach,
            peers=peers,
        )
    )


def run_follow(followed: Followed, options: SwarmOptions, view: View, args: FollowArgs) -> None:
    """``get 'magnet:?xs=urn:btpk:...'``: the latest version; with ``--follow`` every one after it."""
    output, keep_following, delete, peers, timeout = args
    from p2pshare.engine.follow import follow

    def on_version(v: Any) -> None:
        view.json(v.to_dict())
        view.line(f"version {v.seq}: {len(v.changed_files)} file(s) to fetch, {len(v.removed_files)} removed")

    def on_synced(s: Any) -> None:
        view.json(s.to_dict())
        view.line(f"synced version {s.seq} into {s.path} ({s.downloaded} bytes fetched)", essential=True)

    if view.mode is not Mode.JSON:
        view.line(f"following {followed.public_key.hex()} into {output}", style="bold")
    run_async(
        follow(
            followed,
            options,
            out_dir=output,
            keep_following=keep_following,
            delete=delete,
            peers=peers,
            timeout=None if keep_following else timeout,
            on_event=view.event,
            on_version=on_version,
            on_synced=on_synced,
            on_swarm=view.attach,
        )
    )
