"""Events a :class:`~p2pshare.core.utp.manager.UtpManager` reports through ``next_event()``.

Each names the connection by the integer handle that ``connect`` returned (or that
:class:`IncomingConnection` announced).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from p2pshare.core.types import Addr

__all__ = [
    "CloseReason",
    "Closed",
    "Connected",
    "DataReceived",
    "IncomingConnection",
    "UtpEvent",
]



class CloseReason(Enum):
    EOF = "closed by the peer (FIN)"
    LOCAL = "closed by us"
    RESET = "reset by the peer (ST_RESET)"
    TIMEOUT = "timed out"
    REFUSED = "connection refused (the peer did not answer our SYN)"
    PROTOCOL_ERROR = "the peer broke the uTP protocol"


@dataclass(frozen=True, slots=True)
class IncomingConnection:
    """A peer's SYN was accepted; the connection can be written to at once."""

    conn: int
    addr: Addr


@dataclass(frozen=True, slots=True)
class Connected:
    """Our SYN was answered: the connection is established."""

    conn: int
    addr: Addr


@dataclass(frozen=True, slots=True)
class DataReceived:
    """Bytes that arrived in order (only while reading is not paused)."""

    conn: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is gone; no event follows for it.  ``detail`` says why in words."""

    conn: int
    reason: CloseReason
    detail: str = ""


UtpEvent = IncomingConnection | Connected | DataReceived | Closed
