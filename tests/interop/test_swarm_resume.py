"""A download SIGKILLed at random moments resumes, completes, and does not refetch verified pieces."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from tests.engine.conftest import MakeShare, assert_same_files
from tests.interop.conftest import MakeLt
from tests.interop.ltpeer import limit_local_peers_too, lt_seed, save_path_of

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]


async def _start(args: list[str]) -> tuple[asyncio.subprocess.Process, dict[str, int]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.engine.resume_driver", *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            line = await proc.stdout.readline()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc, json.loads(line)


async def test_sigkill_at_random_moments_then_resume(
    make_share: MakeShare, lt_sessions: MakeLt, tmp_path: Path
) -> None:
    """Killed three times mid-download, the next run finds the verified pieces and fetches only the rest."""
    share = make_share(
        {"kr/a.bin": 5 * 1024 * 1024 + 5, "kr/b.bin": 3 * 1024 * 1024 - 77}, piece_length=16384
    )
    total = share.info.total_length
    lt, port = lt_sessions("127.0.30.1", upload_rate_limit=2_000_000)
    limit_local_peers_too(lt)
    lt_seed(lt, share.torrent, save_path_of(share.paths, share.info.file_paths()))
    torrent_file = tmp_path / "t.torrent"
    torrent_file.write_bytes(share.torrent)
    out, resume = tmp_path / "out", tmp_path / "state" / "resume.bencode"
    args = [str(torrent_file), str(out), str(resume), "127.0.30.2", f"127.0.30.1:{port}"]
    rng = random.Random(1234)
    started: list[int] = []
    for _ in range(3):
        proc, hello = await _start(args)
        started.append(hello["started"])
        await asyncio.sleep(rng.uniform(0.8, 1.8))
        if proc.returncode is None:
            os.kill(proc.pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            await proc.wait()
    proc, hello = await _start(args)
    started.append(hello["started"])
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = await proc.stdout.readline()
        assert await proc.wait() == 0
    done = json.loads(line)
    print("resume runs started with", started, "pieces; last run downloaded", done["downloaded"], "of", total)
    assert done["done"]
    assert_same_files(share, out)
    have_at_start = started[-1]
    assert have_at_start > 0, f"the restarted run found nothing to resume from: {started}"
    assert started == sorted(started), f"a restart lost verified pieces: {started}"
    # Pieces verified before the kill are not fetched again (a little slack for blocks in flight).
    assert done["downloaded"] <= total - have_at_start * 16384 + 16 * 16384, (done, started)
    assert done["downloaded"] < total
