"""The loopback demo: a whole swarm on this machine, from a DHT bootstrap node to a verified download.

Every address is 127.0.0.x and no state directory is read or written, so nothing
outside this machine is ever contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import filecmp
import logging
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from p2pshare.config import DEFAULT_CONFIG, Config
from p2pshare.engine.create import CreatedTorrent, create_torrent
from p2pshare.engine.events import DemoStep
from p2pshare.engine.runner import (
    DownloadResult,
    EventSink,
    Swarm,
    SwarmOptions,
    download,
    open_swarm,
    seed_params,
)
from p2pshare.errors import UsageError
from p2pshare.units import human_size

__all__ = ["DemoResult", "demo", "find_sample_files", "make_payload"]

log = logging.getLogger("p2pshare.demo")


def _ignore(_: object) -> None:
    return None


@dataclass(frozen=True)
class DemoResult:
    """The demo's download and whether its files equal the originals."""

    download: DownloadResult
    files_checked: int
    identical: bool
    seeders: tuple[str, ...]


def find_sample_files() -> Path | None:
    """``sample_files/`` next to the package (a source checkout), or in the current folder."""
    import p2pshare

    for base in (Path(p2pshare.__file__).resolve().parent.parent, Path.cwd()):
        candidate = base / "sample_files"
        if candidate.is_dir():
            return candidate
    return None


def make_payload(folder: Path, size: int, rng: random.Random | None = None) -> Path:
    """A folder of a few random files totalling ``size`` bytes (sizes deliberately uneven)."""
    if size <= 0:
        raise UsageError("--size must be a positive number of bytes")
    rng = rng or random.Random()
    root = folder / "demo_payload"
    (root / "more").mkdir(parents=True)
    shares = [0.5, 0.3, 0.15, 0.05] if size >= 64 else [1.0]
    names = ["big.bin", "medium.bin", "more/small.bin", "more/tiny.bin"]
    left = size
    for i, share in enumerate(shares):
        n = left if i == len(shares) - 1 else int(size * share)
        left -= n
        with open(root / names[i], "wb") as f:
            remaining = n
            while remaining:
                chunk = min(remaining, 1 << 20)
                f.write(rng.randbytes(chunk))
                remaining -= chunk
    return root


def _same_files(created: CreatedTorrent, downloaded_root: Path) -> tuple[int, bool]:
    count = 0
    for f in created.selection.files:
        other = downloaded_root.joinpath(*f.parts) if not created.selection.single_file else downloaded_root
        count += 1
        if not other.is_file() or not filecmp.cmp(f.path, other, shallow=False):
            log.error("demo: %s differs from %s", other, f.path)
            return count, False
    return count, True


async def demo(
    *,
    peers: int = 3,
    size: int | None = None,
    config: Config = DEFAULT_CONFIG,
    timeout: float = 120.0,
    on_event: EventSink = _ignore,
    on_swarm: Callable[[Swarm], None] | None = None,
    on_complete: Callable[[DownloadResult], None] | None = None,
) -> DemoResult:
    """A whole swarm on loopback: a DHT bootstrap node, ``peers`` seeders, one downloader by hash.

    Every address is 127.0.0.x and no state directory is read or written, so nothing
    outside this machine is ever contacted.
    """
    from p2pshare.engine.dht_node import DhtService

    if not 1 <= peers <= 100:
        raise UsageError("--peers must be between 1 and 100")
    work = Path(tempfile.mkdtemp(prefix="p2pshare-demo-"))
    bootstrap_node: DhtService | None = None
    stack = contextlib.AsyncExitStack()
    try:
        if size is None:
            source = find_sample_files()
            if source is None:
                size = config.engine.demo_payload_size
                source = await asyncio.to_thread(make_payload, work, size)
        else:
            source = await asyncio.to_thread(make_payload, work, size)
        created = await asyncio.to_thread(create_torrent, source)
        info = created.info
        on_event(
            DemoStep(
                "payload",
                f"sharing {info.name}: {human_size(info.total_length)} in {len(info.files)} file(s), "
                f"{info.num_pieces} pieces, info hash {info.info_hash.hex}",
            )
        )
        bootstrap_node = await DhtService.start(
            host="127.0.0.1", port=0, bootstrap=(), state_dir=None, config=config.dht
        )
        boot = ("127.0.0.1", bootstrap_node.port)
        on_event(DemoStep("bootstrap", "DHT bootstrap node listening", f"127.0.0.1:{boot[1]}"))

        seeders: list[Swarm] = []
        for i in range(peers):
            host = f"127.0.0.{10 + i}"
            opts = SwarmOptions(config=config, host=host, port=0, bootstrap=[boot], dht_port=0)
            swarm = await stack.enter_async_context(open_swarm(seed_params(created), opts))
            seeders.append(swarm)
            on_event(DemoStep("seeder", f"seeder {i + 1} serving", f"{host}:{swarm.port}"))

        async def announce(s: Swarm) -> int:
            assert s.session.dht is not None
            return await s.session.dht.announce(
                s.info_hash, s.port, timeout=config.engine.demo_announce_timeout
            )

        acks = await asyncio.gather(*(announce(s) for s in seeders))
        on_event(
            DemoStep(
                "announce",
                f"{peers} seeder(s) announced the info hash to the DHT ({sum(acks)} acknowledgements)",
            )
        )
        out = work / "download"
        opts = SwarmOptions(config=config, host="127.0.0.2", port=0, bootstrap=[boot], dht_port=0)
        on_event(DemoStep("downloader", "downloader starts with nothing but the info hash", "127.0.0.2"))
        result = await download(
            created.info.info_hash,
            opts,
            out_dir=out,
            timeout=timeout,
            on_event=on_event,
            on_swarm=on_swarm,
            on_complete=on_complete,
        )
        checked, identical = await asyncio.to_thread(_same_files, created, result.path)
        on_event(
            DemoStep(
                "verify",
                f"{checked} file(s) compared byte for byte with the originals: "
                + ("identical" if identical else "DIFFERENT"),
            )
        )
        return DemoResult(result, checked, identical, tuple(f"{s.options.host}:{s.port}" for s in seeders))
    finally:
        await asyncio.shield(stack.aclose())
        if bootstrap_node is not None:
            await asyncio.shield(bootstrap_node.close())
        await asyncio.to_thread(shutil.rmtree, work, True)
