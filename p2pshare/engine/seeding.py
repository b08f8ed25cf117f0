"""``p2pshare seed X.torrent --data DIR``: check files already on disk, then serve them.

Like aria2's ``-V -d DIR`` or transmission-cli's ``-w DIR``: no peers are needed to
start, and nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from p2pshare.core.metainfo import Info
from p2pshare.core.types import PeerAddress
from p2pshare.engine import events as ev
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.preflight import CheckListener, check_existing, check_port
from p2pshare.engine.runner import EventSink, Swarm, SwarmOptions, _ignore, open_swarm
from p2pshare.errors import IncompleteError, PathNotFoundError

__all__ = ["seed_existing"]


async def seed_existing(
    info: Info,
    folder: Path,
    options: SwarmOptions,
    *,
    on_event: EventSink = _ignore,
    on_swarm: Callable[[Swarm], None] | None = None,
    on_check: CheckListener | None = None,
    peers: Sequence[PeerAddress] = (),
) -> None:
    """Check ``info``'s files under ``folder``, then serve them until cancelled (no peers needed).

    Raises IncompleteError when a piece is missing or damaged (``get`` fetches the rest).
    """
    check_port(options.host, options.port)
    folder = Path(folder)
    if not folder.is_dir():
        raise PathNotFoundError(f"no such folder: {folder}")
    on_event(ev.PhaseChanged(ev.Phase.CHECKING))
    checked = await check_existing(info, folder, options, on_check)
    if not checked.complete:
        raise IncompleteError(
            f"{checked.have_pieces}/{info.num_pieces} pieces of {info.name} are in {folder}: "
            "nothing to seed whole; `p2pshare get` with the same .torrent and -o fetches the rest"
        )
    params = TorrentParams(info.info_hash, info=info, download_dir=folder, assume_complete=True)
    async with open_swarm(params, options, on_event=on_event) as swarm:
        if on_swarm is not None:
            on_swarm(swarm)
        if peers:
            swarm.add_peers(peers, "cli")
        swarm.announce()
        await swarm.serve_forever()
