"""Per-block CPU cost of the download hot path, in process: no sockets, no disk, no noise.

Feeds pre-encoded piece messages (in 256 KiB chunks, as a socket read delivers them)
through the real PeerConnection and PiecePicker, copying each block into its piece
buffer the way the engine does, and reports microseconds per 16 KiB block for each
layer.  Run: python benchmarks/hotpath_bench.py
"""

from __future__ import annotations

import random
import time

from p2pshare.config import BLOCK_SIZE, PickerConfig
from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import BlockRef, Geometry
from p2pshare.core.picker import PiecePicker
from p2pshare.core.wire import connection as wc
from p2pshare.core.wire import messages as wm

PIECE = 1024 * 1024
PIECES = 256
CHUNK = 256 * 1024


def _setup() -> tuple[wc.PeerConnection, PiecePicker, list[bytes], Geometry]:
    geometry = Geometry(PIECE, [PIECE * PIECES])
    conn = wc.PeerConnection(b"i" * 20, b"a" * 20, initiator=True, num_pieces=PIECES)
    conn.set_geometry(geometry)
    conn.handshake_bytes()
    conn.receive_data(
        wm.encode_handshake(b"i" * 20, b"b" * 20, fast=True)
        + wm.encode(wm.HaveAll())
        + wm.encode(wm.Unchoke())
    )
    while conn.next_event() is not None:
        pass
    picker = PiecePicker(geometry, Bitfield(PIECES), PickerConfig(), random.Random(1))
    picker.add_peer("p", Bitfield(PIECES, full=True))
    block = bytes(BLOCK_SIZE)
    blocks = picker.pick_blocks("p", PIECES * PIECE // BLOCK_SIZE)
    conn.send_requests(blocks)
    stream = b"".join(wm.encode_piece_header(b.piece, b.begin, b.length) + block for b in blocks)
    chunks = [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]
    return conn, picker, chunks, geometry


def main() -> None:
    nblocks = PIECES * PIECE // BLOCK_SIZE
    # 1. wire only
    conn, picker, chunks, _ = _setup()
    t0 = time.perf_counter()
    n = 0
    for chunk in chunks:
        conn.receive_data(memoryview(chunk))
        while (ev := conn.next_event()) is not None:
            n += 1
    wire = (time.perf_counter() - t0) / nblocks * 1e6
    assert n == nblocks
    # 2. wire + picker + copy into piece buffers (the engine's _on_piece)
    conn, picker, chunks, _ = _setup()
    buffers: dict[int, bytearray] = {}
    spare = [bytearray(PIECE) for _ in range(8)]
    t0 = time.perf_counter()
    for chunk in chunks:
        conn.receive_data(memoryview(chunk))
        while (ev := conn.next_event()) is not None:
            assert type(ev) is wm.Piece
            data = ev.data
            result = picker.block_received("p", BlockRef(ev.index, ev.begin, len(data)))
            buf = buffers.get(ev.index)
            if buf is None:
                buf = buffers[ev.index] = spare.pop() if spare else bytearray(PIECE)
            buf[ev.begin : ev.begin + len(data)] = data
            if result.piece_complete:
                picker.piece_verified(ev.index)
                spare.append(buffers.pop(ev.index))
    full = (time.perf_counter() - t0) / nblocks * 1e6
    print(f"wire (parse + connection rules + event): {wire:6.2f} us/block")
    print(f"+ picker + copy into piece buffer:       {full:6.2f} us/block")
    print(f"=> at most {BLOCK_SIZE / full:6.0f} MB/s of Python work on one core")


if __name__ == "__main__":
    main()
