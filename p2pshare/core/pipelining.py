"""Request pipelining: how many block requests to keep in flight to one peer."""

from __future__ import annotations

import math

from p2pshare.config import BLOCK_SIZE, PickerConfig

__all__ = ["queue_depth"]


def queue_depth(
    rate_bytes_per_s: float, peer_reqq: int | None, config: PickerConfig, *, block_size: int = BLOCK_SIZE
) -> int:
    """How many block requests to keep outstanding to a peer that gives us ``rate_bytes_per_s``.

    With no rate measured yet (``rate <= 0``) this is ``config.initial_queue``; after that
    it is ``queue_seconds`` worth of the peer's rate in blocks, at least ``min_queue``.
    The result never exceeds ``config.max_queue`` nor the peer's ``reqq`` (BEP 10), and
    is at least 1.
    """
    if rate_bytes_per_s > 0 and math.isfinite(rate_bytes_per_s):
        depth = max(config.min_queue, math.ceil(rate_bytes_per_s * config.queue_seconds / block_size))
    else:
        depth = config.initial_queue
    depth = min(depth, config.max_queue)
    if peer_reqq is not None and peer_reqq > 0:
        depth = min(depth, peer_reqq)
    return max(1, depth)
