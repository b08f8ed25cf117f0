"""What ``p2pshare dht`` prints while it runs: its table and store, when they change."""

from __future__ import annotations

import asyncio
from typing import Any

from p2pshare.cli.views import Mode, View

__all__ = ["dht_status_loop"]


async def dht_status_loop(service: Any, view: View) -> None:
    last = None
    while True:
        await asyncio.sleep(5.0 if view.mode is Mode.JSON else 10.0)
        try:
            status = service.status()
        except Exception:
            continue
        summary = {k: v for k, v in status.items() if isinstance(v, int | float | str)}
        view.json({"event": "dht_status", **summary})
        text = (
            f"DHT: {status.get('nodes', '?')} nodes in the table, "
            f"{status.get('stored_peers', '?')} peers stored "
            f"for {status.get('stored_info_hashes', '?')} hashes"
        )
        if text != last:
            view.line(text)
            last = text
