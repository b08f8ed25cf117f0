"""The ``--json`` events built from snapshots and results, and the filter that keeps the stream honest.

The filter holds back ``fetching_metadata`` until a peer is connected, drops repeated
identical ``peers_found`` events, and drops ``phase: seeding`` from a ``get`` that
does not seed.  The schema is in the README.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2pshare.engine import events as ev
from p2pshare.engine.events import Phase
from p2pshare.errors import ExitCode

if TYPE_CHECKING:
    from p2pshare.engine.runner import DownloadResult

__all__ = ["JsonFilter", "error_kind", "progress_dict", "result_dict"]


def progress_dict(
    st: ev.TorrentStatus, rate: float, up_rate: float, eta: float | None, search: ev.DhtSearch | None = None
) -> dict[str, Any]:
    """The JSON ``progress`` event for a snapshot (rates are the live view's, in bytes/s)."""
    d: dict[str, Any] = {
        "event": "progress",
        "phase": st.phase,
        "bytes": st.verified_bytes,
        "total": st.total_size,
        "rate": round(rate, 1),
        "up_rate": round(up_rate, 1),
        "eta": None if eta is None else round(eta, 1),
        "downloaded": st.downloaded,
        "uploaded": st.uploaded,
        "peers": len(st.peers),
        "known_peers": st.known_peers,
        "pieces": st.have_pieces,
        "num_pieces": st.num_pieces,
        "pieces_failed": st.pieces_failed,
    }
    if len(st.file_progress) > 1:
        d["files"] = [{"path": p, "bytes": done, "total": n} for p, done, n in st.file_progress]
    if search is not None:
        d["dht_nodes"] = search.nodes
        d["dht_lookups"] = search.lookups_done
    return d


def result_dict(result: DownloadResult) -> dict[str, Any]:
    """The JSON ``done`` event for a finished download."""
    return {
        "event": "done",
        "info_hash": result.info_hash,
        "name": result.name,
        "total_size": result.total_size,
        "num_pieces": result.num_pieces,
        "elapsed": round(result.elapsed, 3),
        "transfer_time": round(result.transfer_time, 3),
        "rate": round(result.rate, 1),
        "had_pieces": result.had_pieces,
        "had_bytes": result.had_bytes,
        "resumed": result.resumed,
        "peers_used": result.peers_used,
        "pieces_failed": result.pieces_failed,
        "downloaded": result.downloaded,
        "uploaded": result.uploaded,
        "path": str(result.path),
        "verified": True,
    }


def error_kind(code: int) -> str:
    try:
        return ExitCode(code).name.lower()
    except ValueError:
        return "error"


class JsonFilter:
    """Decides which engine events reach the NDJSON stream, and when."""

    def __init__(self, *, seeding_allowed: bool) -> None:
        self.seeding_allowed = seeding_allowed
        self._held_metadata = False
        self._connected = False
        self._last_found: tuple[int, str] | None = None

    def allow_seeding(self) -> None:
        self.seeding_allowed = True

    def pass_through(self, e: ev.EngineEvent) -> list[dict[str, Any]]:
        """The dicts to print for ``e`` (none, one, or a held-back event first)."""
        out: list[dict[str, Any]] = []
        if isinstance(e, ev.PhaseChanged):
            if e.phase is Phase.FETCHING_METADATA and not self._connected:
                self._held_metadata = True
                return out
            if e.phase is Phase.SEEDING and not self.seeding_allowed:
                return out
            if e.phase is not Phase.FETCHING_METADATA:
                self._held_metadata = False
        elif isinstance(e, ev.PeersFound):
            key = (e.count, e.source)
            if key == self._last_found:
                return out
            self._last_found = key
        elif isinstance(e, ev.PeerConnected):
            self._connected = True
            if self._held_metadata:
                self._held_metadata = False
                out.append(ev.event_to_dict(e))
                out.append(ev.event_to_dict(ev.PhaseChanged(Phase.FETCHING_METADATA)))
                return out
        out.append(ev.event_to_dict(e))
        return out
