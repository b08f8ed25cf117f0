"""The data room of a torrent: piece buffers, the verify-and-write pool, the upload read cache.

Blocks are copied into a per-piece buffer by the torrent (the hot path touches
:attr:`PieceIO.buffers` directly: one dict lookup per block, no call); a complete
piece is hashed and written in one trip to a worker thread (per piece, never per
block).  Uploads read whole pieces through a small cache, off the event loop.
Every disk call goes through :attr:`pool`, whose threads are the data path's own
(``aiofiles`` would add a thread hop per call).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from p2pshare.config import BLOCK_SIZE, Config
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.metainfo import Info
from p2pshare.engine.resume import load_resume, pieces_to_recheck
from p2pshare.io.storage import Storage

__all__ = ["PieceIO", "Verdict"]

log = logging.getLogger("p2pshare.torrent")


class Verdict(NamedTuple):
    """A piece's hash check: whether it matched, and its blocks' SHA-1s when asked for."""

    ok: bool
    digests: tuple[bytes, ...]


class PieceIO:
    """Piece buffers and disk access for one torrent whose manifest is known."""

    def __init__(
        self,
        info: Info,
        storage: Storage,
        config: Config,
        verify: Callable[[int, memoryview], bool] | None = None,
    ) -> None:
        self.info = info
        #: the check of a whole piece for v2 and hybrid manifests (merkle, and SHA-1 for hybrid)
        self._verify = verify
        #: v2 pieces that failed, kept (a few) until leaf hashes name the bad blocks' senders
        self.failed: OrderedDict[int, bytes] = OrderedDict()
        self._keep_failed = config.hash_exchange.max_failed_pieces_kept
        self.storage = storage
        self.config = config.storage
        self._spare_divisor = config.engine.spare_buffer_divisor
        self.piece_length = info.piece_length
        #: piece index -> its buffer while blocks arrive (every buffer is piece_length long)
        self.buffers: dict[int, bytearray] = {}
        #: Piece buffers to reuse: a fresh large bytearray costs page faults on first write.
        self.spare: list[bytearray] = []
        self.verifying: set[int] = set()
        self.pool = ThreadPoolExecutor(
            max_workers=config.storage.hash_workers, thread_name_prefix="p2pshare-io"
        )
        self._read_cache: OrderedDict[int, bytes] = OrderedDict()
        self._reads: dict[int, asyncio.Future[bytes | None]] = {}

    def new_buffer(self, index: int) -> bytearray:
        """A buffer for piece ``index`` (reused when one is spare; stale bytes are overwritten).

        A piece completes only when every block arrived, so stale bytes never survive.
        """
        spare = self.spare
        buf = self.buffers[index] = spare.pop() if spare else bytearray(self.piece_length)
        return buf

    def may_start_piece(self, partial_pieces: int) -> bool:
        """Whether the in-flight budget has room for one more piece buffer.

        At least one piece may always be in flight, or pieces larger than the budget
        (manifests may use up to MetainfoLimits.max_parse_piece_length) would never start.
        """
        in_flight = (partial_pieces + len(self.verifying)) * self.piece_length
        return in_flight == 0 or in_flight + self.piece_length <= self.config.max_pieces_in_flight_bytes

    # -- verifying ----------------------------------------------------------------------

    def _verify_and_write(self, index: int, buf: bytearray, digests: bool) -> Verdict:
        data = memoryview(buf)[: self.info.geometry.piece_size(index)]
        if self._verify is not None:  # v2 / hybrid: the merkle tree (and SHA-1 for a hybrid)
            ok = self._verify(index, data)
            if not ok:
                self.failed[index] = bytes(data)
                while len(self.failed) > self._keep_failed:
                    self.failed.popitem(last=False)
        else:
            ok = hashlib.sha1(data).digest() == self.info.piece_hash(index)
        if ok:
            self.storage.write_piece(index, data)
        blocks: tuple[bytes, ...] = ()
        if digests or not ok:  # smart ban: what each block was, for the peers who sent them
            blocks = tuple(
                hashlib.sha1(data[at : at + BLOCK_SIZE]).digest() for at in range(0, len(data), BLOCK_SIZE)
            )
        return Verdict(ok, blocks)

    async def verify(self, index: int, *, digests: bool = False) -> Verdict | None:
        """Hash piece ``index`` and write it when good; None when it has no buffer.

        The verdict carries the SHA-1 of each 16 KiB block when the piece failed, or when
        ``digests`` asks for them (a piece that failed before and now passes).
        """
        data = self.buffers.get(index)
        if data is None:
            return None
        self.verifying.add(index)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, self._verify_and_write, index, data, digests)
        finally:
            buf = self.buffers.pop(index, None)
            self.verifying.discard(index)
            if buf is not None:
                budget = self.config.max_pieces_in_flight_bytes // self.piece_length
                if len(self.spare) < max(1, budget // self._spare_divisor):
                    self.spare.append(buf)

    async def ensure_files(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, self.storage.ensure_files)

    # -- checking what is there ---------------------------------------------------------

    def check_existing(self, resume_path: Path | None, known: Bitfield | None = None) -> Bitfield:
        """Trust the resume file for unchanged files; hash pieces that touch changed ones (blocks).

        ``known`` pieces are trusted without hashing (an updatable share's unchanged files,
        verified when the previous version was synced), unless a file they touch is missing.
        """
        info = self.info
        geometry = info.geometry
        current = self.storage.file_sizes_and_mtimes()
        saved = load_resume(resume_path, info.info_hash.value, geometry.num_pieces) if resume_path else None
        if saved is not None:
            trusted, recheck = pieces_to_recheck(geometry, saved[0], saved[1], current)
        else:
            trusted = Bitfield(geometry.num_pieces)
            recheck = {
                p for f, fp in enumerate(current) if fp is not None for p in geometry.pieces_for_file(f)
            }
        if known is not None:
            for p in known:
                trusted.add(p)
        # Pieces that touch a missing file cannot be complete.
        missing = {p for f, fp in enumerate(current) if fp is None for p in geometry.pieces_for_file(f)}
        todo = sorted(recheck - missing - set(trusted))
        if todo and self._verify is not None:
            for p in todo:
                data = self.storage.read_piece(p)
                if data is not None and self._verify(p, memoryview(data)):
                    trusted.add(p)
        elif todo:
            for p in self.storage.verify_pieces(info.pieces, todo, self.config.hash_workers):
                trusted.add(p)
        for p in list(trusted):
            if p in missing:
                trusted.discard(p)
        log.info("resume: %d/%d pieces present (%d hashed)", len(trusted), geometry.num_pieces, len(todo))
        return trusted

    # -- uploading ----------------------------------------------------------------------

    async def read_piece(self, index: int) -> bytes | None:
        """The whole piece for uploads, from the cache or the disk; None if it cannot be read."""
        cached = self._read_cache.get(index)
        if cached is not None:
            self._read_cache.move_to_end(index)
            return cached
        pending = self._reads.get(index)
        if pending is not None:
            return await pending
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes | None] = loop.run_in_executor(self.pool, self.storage.read_piece, index)
        self._reads[index] = fut
        try:
            data = await fut
        finally:
            self._reads.pop(index, None)
        if data is not None:
            self._read_cache[index] = data
            limit = max(1, self.config.read_cache_bytes // len(data))
            while len(self._read_cache) > limit:
                self._read_cache.popitem(last=False)
        return data

    # -- closing ------------------------------------------------------------------------

    async def drain(self) -> None:
        """Let pieces being hashed or written finish, so nothing is torn."""
        await asyncio.get_running_loop().run_in_executor(None, self.pool.shutdown, True)
