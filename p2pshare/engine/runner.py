"""High-level orchestration for the command line: download and seed (the demo is in :mod:`.demo`).

The CLI stays a thin shell: it parses options, builds a :class:`SwarmOptions`, and
calls :func:`download`, :func:`seed` or :func:`~p2pshare.engine.demo.demo`; it renders the events they
emit and the :class:`Swarm` status snapshots it polls.  Everything here is policy
about *when*: which session to build, whether to start the DHT, where peers come
from, how long to wait, and which error a timeout means.  It never prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

from p2pshare.core.metainfo import Info
from p2pshare.core.selection import FileSelection
from p2pshare.core.types import InfoHash, InfoHashV2, PeerAddress
from p2pshare.engine import events as ev
from p2pshare.engine.checking import CheckResult
from p2pshare.engine.create import CreatedTorrent
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.preflight import (
    CheckListener,
    check_existing,
    check_port,
    check_writable,
)
from p2pshare.engine.reachability import start_reachability
from p2pshare.engine.session import Session
from p2pshare.engine.state import SharedManifest
from p2pshare.engine.streamer import StreamRequest
from p2pshare.engine.swarm import DownloadResult, EventSink, RunnerEvent, Swarm, SwarmOptions
from p2pshare.errors import (
    NoMetadataError,
    NoPeersError,
    PortInUseError,
    UsageError,
)

__all__ = [
    "CheckListener",
    "DemoStep",
    "DhtReady",
    "DownloadResult",
    "StreamRequest",
    "Ready",
    "RunnerEvent",
    "Swarm",
    "SwarmOptions",
    "check_existing",
    "check_port",
    "check_writable",
    "download",
    "fetch_manifest",
    "open_swarm",
    "seed",
    "seed_params",
]

log = logging.getLogger("p2pshare.runner")

# ---------------------------------------------------------------------- events the runner adds


# DhtReady, Ready and DemoStep live in engine/events.py (the CLI imports them without
# loading the swarm engine); they are re-exported here.
DhtReady = ev.DhtReady
Ready = ev.Ready
DemoStep = ev.DemoStep


def _ignore(_: RunnerEvent) -> None:
    return None


@contextlib.asynccontextmanager
async def open_swarm(
    params: TorrentParams, options: SwarmOptions, *, on_event: EventSink = _ignore
) -> AsyncIterator[Swarm]:
    """Start a session (TCP listener, maybe a DHT node), add the torrent; close it all on exit."""
    session = Session(
        options.config,
        listen_host=options.host,
        listen_port=options.port,
        state_dir=None,
    )
    swarm: Swarm | None = None
    dht_lock = False
    try:
        await session.start()
        if options.bootstrap is not None:
            if options.state is not None and options.dht_state:
                session.state_dir = options.state.claim_dht_state()
                dht_lock = session.state_dir is not None
            dht_port = options.dht_port
            if dht_port is None:
                dht_port = options.port
            try:
                await session.start_dht(bootstrap=options.bootstrap, host=options.host, port=dht_port)
            except (OSError, PortInUseError):
                if not dht_port or options.dht_port is not None:
                    raise  # the user asked for this UDP port: say it is taken
                log.warning("UDP port %d is taken; the DHT node uses any free port", dht_port)
                await session.start_dht(bootstrap=options.bootstrap, host=options.host, port=0)
            assert session.dht is not None
            on_event(DhtReady(options.host, session.dht.port))

        holder: list[Swarm] = []

        def sink(event: ev.EngineEvent) -> None:
            if isinstance(event, ev.PeerConnected) and holder:
                holder[0].ever_connected += 1
            if isinstance(event, ev.PhaseChanged) and holder:
                holder[0].note_phase(event.phase)
            if isinstance(event, ev.Listening):
                return  # replaced by Ready, which says more
            on_event(event)

        torrent = await session.add_torrent(params, on_event=sink)
        swarm = Swarm(session, torrent, options)
        holder.append(swarm)
        if torrent.phase in (ev.Phase.DOWNLOADING, ev.Phase.SEEDING):
            swarm.note_phase(ev.Phase.DOWNLOADING)
            if torrent.phase is ev.Phase.SEEDING:
                swarm.note_phase(ev.Phase.SEEDING)
        swarm.ever_connected = len(torrent.peers)
        swarm.trackers.start()  # beside the DHT, never instead of it
        public = await start_reachability(session, options, on_event)
        on_event(Ready(params.info_hash.hex, options.host, session.port, swarm.dht_port, public))
        yield swarm
    finally:
        if swarm is not None:
            await asyncio.shield(swarm.close())
        else:
            await asyncio.shield(session.close())
        if dht_lock and options.state is not None:
            options.state.release()


# ---------------------------------------------------------------------- download and seed


def seed_params(created: CreatedTorrent) -> TorrentParams:
    """Parameters that serve ``created``'s files where they are, trusted (they were just hashed)."""
    return TorrentParams(
        created.info.info_hash,
        info=created.info,
        download_dir=created.selection.root,
        file_paths=created.paths,
        assume_complete=True,
        trackers=tuple((url,) for url in created.trackers),
        piece_layers=created.piece_layers or None,
    )


async def download(
    info_hash: InfoHash,
    options: SwarmOptions,
    *,
    out_dir: Path,
    info: Info | None = None,
    peers: Sequence[PeerAddress] = (),
    magnet_peers: Sequence[PeerAddress] = (),
    timeout: float | None = None,
    max_time: float | None = None,
    seed: bool = False,
    overwrite: bool = False,
    on_event: EventSink = _ignore,
    on_swarm: Callable[[Swarm], None] | None = None,
    on_complete: Callable[[DownloadResult], None] | None = None,
    on_check: CheckListener | None = None,
    trackers: Sequence[Sequence[str]] = (),
    select: FileSelection | None = None,
    sequential: bool = False,
    stream: StreamRequest | None = None,
    info_hash_v2: InfoHashV2 | None = None,
    piece_layers: Mapping[bytes, bytes] | None = None,
) -> DownloadResult:
    """Fetch ``info_hash`` (its manifest too, when ``info`` is None) into ``out_dir``.

    Peers come from ``peers``, ``magnet_peers``, the DHT (when ``options.bootstrap``
    is set) and the ``trackers`` tiers (unless ``config.tracker.enabled`` is off).  With
    a v1 ``info`` and the whole torrent wanted, the files already in ``out_dir`` are
    checked first (told to ``on_check``): complete files need no peers at all, and with
    ``seed`` are served at once.  Only the files ``select`` chooses are downloaded;
    ``sequential`` fetches in file order; ``stream`` writes one chosen file, in order
    and verified, to its sink as it arrives.  Returns when every chosen piece is
    verified; with ``seed``, calls ``on_complete`` and then keeps serving until
    cancelled.  Raises NoPeersError, NoMetadataError or IncompleteError when nothing
    new arrived for ``timeout`` seconds or ``max_time`` passed, and the storage error
    (disk full, not writable) when writing fails.
    """
    use_trackers = bool(trackers) and options.config.tracker.enabled
    no_peers = (
        options.bootstrap is None and not peers and not magnet_peers and not use_trackers and not options.lsd
    )
    precheck = info is not None and info.has_v1 and select is None and stream is None
    if no_peers and not precheck:
        raise UsageError(
            "no way to find peers: give --peer HOST:PORT, or leave the DHT, the trackers or LSD on "
            "(drop --no-dht / --no-trackers / --no-lsd)"
        )
    check_port(options.host, options.port)
    out_dir = check_writable(out_dir)
    checked: CheckResult | None = None
    if precheck:
        assert info is not None
        on_event(ev.PhaseChanged(ev.Phase.CHECKING))
        checked = await check_existing(info, out_dir, options, on_check)
        if no_peers and not checked.complete:
            raise UsageError(
                f"{checked.have_pieces}/{info.num_pieces} pieces are in {out_dir} and there is no way to "
                "find peers for the rest: give --peer HOST:PORT, or leave the DHT on (drop --no-dht)"
            )
    resume = options.state.resume_path(info_hash.hex, out_dir) if options.state is not None else None
    if checked is None or not checked.complete:
        on_event(ev.PhaseChanged(ev.Phase.FINDING_PEERS))
    params = TorrentParams(
        info_hash,
        info=info,
        download_dir=out_dir,
        resume_path=resume,
        assume_complete=checked is not None and checked.complete,
        trackers=tuple(tuple(tier) for tier in trackers),
        select=select,
        sequential=sequential or stream is not None,
        info_hash_v2=info_hash_v2,  # a btmh magnet: the manifest is checked by SHA-256
        piece_layers=piece_layers,  # a v2 .torrent's layers (else fetched from peers)
        overwrite=overwrite,
    )
    async with open_swarm(params, options, on_event=on_event) as swarm:
        if checked is not None:
            swarm.had_pieces, swarm.had_bytes, swarm.resumed = (
                checked.have_pieces,
                checked.have_bytes,
                checked.resumed,
            )
        if on_swarm is not None:
            on_swarm(swarm)
        if peers:
            swarm.add_peers(peers, "cli")
        if magnet_peers:
            swarm.add_peers(magnet_peers, "magnet")
        if not swarm.torrent.completed.is_set():
            swarm.find_peers()
        swarm.announce()  # findable while downloading: others fetch from us as we go
        if stream is None:
            await swarm.wait_complete(timeout, max_time)
        else:
            await _complete_and_stream(swarm, swarm.stream(stream), timeout, max_time)
        result = swarm.result(out_dir)
        if on_complete is not None:
            on_complete(result)
        if seed:
            await swarm.serve_forever()
        return result


async def _complete_and_stream(
    swarm: Swarm, streaming: asyncio.Task[int], timeout: float | None, max_time: float | None = None
) -> None:
    """Wait for the download and the stream together; the first failure of either ends both."""
    waiting = asyncio.ensure_future(swarm.wait_complete(timeout, max_time))
    try:
        done, _ = await asyncio.wait({waiting, streaming}, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        await waiting
        await streaming  # the last pieces are verified: the rest of the file goes out now
    finally:
        for task in (waiting, streaming):
            task.cancel()


async def fetch_manifest(
    info_hash: InfoHash,
    options: SwarmOptions,
    *,
    peers: Sequence[PeerAddress] = (),
    trackers: Sequence[Sequence[str]] = (),
    timeout: float | None = None,
    on_event: EventSink = _ignore,
) -> Info:
    """Only the manifest of ``info_hash`` (BEP 9), for ``get --list``: no file is written.

    Raises NoPeersError or NoMetadataError when ``timeout`` passes first.
    """
    with tempfile.TemporaryDirectory(prefix="p2pshare-list-") as scratch:
        params = TorrentParams(
            info_hash,
            download_dir=Path(scratch),
            trackers=tuple(tuple(tier) for tier in trackers),
            select=FileSelection(),  # nothing chosen: nothing is downloaded or created
        )
        async with open_swarm(params, options, on_event=on_event) as swarm:
            if peers:
                swarm.add_peers(peers, "cli")
            swarm.find_peers()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await swarm.torrent.metadata_ready.wait()
            if swarm.torrent.info is not None:
                return swarm.torrent.info
            if not swarm.ever_connected:
                raise NoPeersError(f"no peers found after {timeout:g} s; give --peer HOST:PORT or a tracker")
            raise NoMetadataError(f"no peer sent the manifest after {timeout:g} s; try again later")


async def seed(
    manifest: SharedManifest | CreatedTorrent,
    options: SwarmOptions,
    *,
    on_event: EventSink = _ignore,
    on_swarm: Callable[[Swarm], None] | None = None,
    peers: Sequence[PeerAddress] = (),
) -> None:
    """Serve the files of ``manifest`` (already verified by hashing) until cancelled."""
    created = manifest.created if isinstance(manifest, SharedManifest) else manifest
    async with open_swarm(seed_params(created), options, on_event=on_event) as swarm:
        if on_swarm is not None:
            on_swarm(swarm)
        if peers:
            swarm.add_peers(peers, "cli")
        swarm.announce()
        await swarm.serve_forever()
