"""Engine events as NDJSON: phases and violation kinds come out as plain strings."""

from __future__ import annotations

import json

from p2pshare.engine import events as ev
from p2pshare.errors import Violation


def test_phase_and_violation_kinds_serialise_as_their_names() -> None:
    """event_to_dict turns Phase and Violation into their string values, and None stays null."""
    lines = [
        json.dumps(ev.event_to_dict(e))
        for e in (
            ev.PhaseChanged(ev.Phase.FETCHING_METADATA),
            ev.PeerBanned("127.0.0.9:1", "sent piece 3 that failed its hash check", Violation.BAD_PIECE),
            ev.PeerDisconnected("127.0.0.9:2", "connection closed"),
        )
    ]
    assert [json.loads(line) for line in lines] == [
        {"event": "phase", "phase": "fetching_metadata"},
        {
            "event": "peer_banned",
            "address": "127.0.0.9:1",
            "reason": "sent piece 3 that failed its hash check",
            "kind": "bad_piece",
        },
        {"event": "peer_disconnected", "address": "127.0.0.9:2", "reason": "connection closed", "kind": None},
    ]
