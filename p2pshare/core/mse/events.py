"""What an MSE handshake machine reports: the events, the negotiated method, the typed error."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntFlag

from p2pshare.errors import RemoteProtocolError

__all__ = [
    "Event",
    "Failed",
    "FailureReason",
    "HandshakeDone",
    "Method",
    "MseError",
    "PlaintextStream",
]


class Method(IntFlag):
    """crypto_provide / crypto_select bits: how the payload after the handshake travels."""

    PLAINTEXT = 0x01  #: the handshake is obfuscated, the payload is not
    RC4 = 0x02


class FailureReason(Enum):
    """Why a handshake failed; each is the peer's doing except TIMEOUT and the policy refusals."""

    TIMEOUT = "timeout"  #: the handshake did not finish within handshake_timeout
    CLOSED = "closed"  #: the peer closed the stream mid-handshake
    BAD_PUBLIC_KEY = "bad public key"  #: a degenerate DH public key (0, 1, P-1 or >= P)
    NO_SYNC = "no sync"  #: the req1 hash or VC was not found within the sync window
    UNKNOWN_SKEY = "unknown skey"  #: the peer asked for a torrent we do not serve
    BAD_VC = "bad verification constant"
    PAD_TOO_LONG = "pad too long"  #: PadC / PadD longer than max_pad
    PAYLOAD_TOO_LONG = "initial payload too long"  #: IA longer than max_initial_payload
    NO_COMMON_METHOD = "no common method"  #: nothing in crypto_provide that our policy allows
    BAD_SELECT = "bad crypto_select"  #: the receiver chose a method we did not offer
    PLAINTEXT_REFUSED = "plaintext refused"  #: a plain BitTorrent peer while the policy is require
    ENCRYPTION_REFUSED = "encryption refused"  #: an MSE peer while the policy is off


class MseError(RemoteProtocolError):
    """An MSE handshake failed; ``reason`` says why (under ``prefer`` the caller may retry plaintext)."""

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(f"encryption handshake failed ({reason.value}): {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class HandshakeDone:
    """The handshake finished; the payload stream starts.

    ``initial_payload`` is the plaintext the peer already sent, in order: its IA (the
    receiver's side) followed by any payload bytes that came with the handshake.
    """

    method: Method
    info_hash: bytes
    initial_payload: bytes


@dataclass(frozen=True, slots=True)
class PlaintextStream:
    """(Receiver) the stream is plain BitTorrent; ``data`` is everything received so far."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Failed:
    """The handshake failed; drop the link (under ``prefer`` an initiator may retry in plaintext)."""

    reason: FailureReason
    detail: str

    def error(self) -> MseError:
        return MseError(self.reason, self.detail)


Event = HandshakeDone | PlaintextStream | Failed
