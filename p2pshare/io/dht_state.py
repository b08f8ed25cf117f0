"""Persisting the DHT node id and good nodes, so a restart needs no bootstrap.

The state is one small JSON file, ``dht_state.json``, in the state directory:
``{"version": 1, "node_id": "<40 hex>", "nodes": [["<40 hex>", "ip", port], ...]}``.
It is written atomically (temporary file, then rename).  A missing, unreadable or
malformed file just means "no saved state"; bad entries are skipped.

The state directory is ``$P2PSHARE_STATE_DIR``, else ``$XDG_STATE_HOME/p2pshare``,
else ``~/.local/state/p2pshare`` (see :func:`default_state_dir`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from p2pshare.core.dht.krpc import NodeInfo
from p2pshare.core.types import Addr, parse_host_port
from p2pshare.errors import UsageError
from p2pshare.io.files import atomic_write, atomic_write_async

__all__ = [
    "BOOTSTRAP_ENV",
    "STATE_FILE",
    "DhtState",
    "bootstrap_from_env",
    "default_state_dir",
    "load_state",
    "encode_state",
    "save_state",
    "save_state_async",
]

log = logging.getLogger(__name__)

STATE_FILE = "dht_state.json"
BOOTSTRAP_ENV = "P2PSHARE_BOOTSTRAP"
_MAX_STATE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class DhtState:
    """What survives a restart: our id and nodes that were good."""

    node_id: bytes
    nodes: tuple[NodeInfo, ...]


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$P2PSHARE_STATE_DIR``, else ``$XDG_STATE_HOME/p2pshare``, else ``~/.local/state/p2pshare``."""
    env = os.environ if environ is None else environ
    if env.get("P2PSHARE_STATE_DIR"):
        return Path(env["P2PSHARE_STATE_DIR"]).expanduser()
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]).expanduser() / "p2pshare"
    return Path.home() / ".local" / "state" / "p2pshare"


def bootstrap_from_env(environ: Mapping[str, str] | None = None) -> list[Addr] | None:
    """``$P2PSHARE_BOOTSTRAP`` (comma-separated ``HOST:PORT``) as a list; None if unset or empty."""
    env = os.environ if environ is None else environ
    text = env.get(BOOTSTRAP_ENV, "").strip()
    if not text:
        return None
    out = []
    for item in text.split(","):
        if not item.strip():
            continue
        try:
            out.append(parse_host_port(item).as_tuple())
        except ValueError as exc:
            raise UsageError(f"{BOOTSTRAP_ENV}: {exc}; use HOST:PORT[,HOST:PORT...]") from None
    return out or None


def _node(entry: object) -> NodeInfo | None:
    if not isinstance(entry, list) or len(entry) != 3:
        return None
    id_hex, host, port = entry
    if not isinstance(id_hex, str) or not isinstance(host, str) or not isinstance(port, int):
        return None
    try:
        node_id = bytes.fromhex(id_hex)
        ipaddress.ip_address(host)
    except ValueError:
        return None
    if len(node_id) != 20 or not 0 < port < 65536:
        return None
    return (node_id, (host, port))


def load_state(state_dir: Path, *, max_nodes: int = 1000) -> DhtState | None:
    """The saved state, or None if there is none usable."""
    path = state_dir / STATE_FILE
    try:
        if path.stat().st_size > _MAX_STATE_BYTES:
            log.warning("ignoring oversized DHT state file %s", path)
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable DHT state file %s: %s", path, exc)
        return None
    if not isinstance(raw, dict) or raw.get("version") != 1:
        return None
    try:
        node_id = bytes.fromhex(str(raw.get("node_id", "")))
    except ValueError:
        return None
    if len(node_id) != 20:
        return None
    entries = raw.get("nodes")
    nodes: list[NodeInfo] = []
    if isinstance(entries, list):
        for entry in entries[:max_nodes]:
            node = _node(entry)
            if node is not None:
                nodes.append(node)
    return DhtState(node_id, tuple(nodes))


def encode_state(state: DhtState) -> bytes:
    """The state file's bytes (JSON)."""
    doc = {
        "version": 1,
        "node_id": state.node_id.hex(),
        "nodes": [[nid.hex(), host, port] for nid, (host, port) in state.nodes],
    }
    return json.dumps(doc, indent=1).encode()


def save_state(state_dir: Path, state: DhtState) -> None:
    """Write the state atomically, creating the directory if needed (blocking)."""
    atomic_write(state_dir / STATE_FILE, encode_state(state))


async def save_state_async(state_dir: Path, state: DhtState) -> None:
    """:func:`save_state` through ``aiofiles``, for the event loop."""
    await atomic_write_async(state_dir / STATE_FILE, encode_state(state))
