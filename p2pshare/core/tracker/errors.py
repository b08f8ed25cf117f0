"""Errors a tracker exchange can end in.

All of them are :class:`~p2pshare.errors.P2PShareError`; the engine records them in the
tracker's status and moves on to the next tracker (BEP 12), it never stops the download.
A tracker that breaks the protocol or a limit raises
:class:`~p2pshare.errors.RemoteProtocolError` instead (from the codecs).
"""

from __future__ import annotations

from p2pshare.errors import P2PShareError

__all__ = ["TrackerError", "TrackerFailure", "TrackerTimeout", "TrackerUnreachable", "UnsupportedTracker"]


class TrackerError(P2PShareError):
    """An announce or scrape did not succeed; try the next tracker."""


class TrackerFailure(TrackerError):
    """The tracker answered with a refusal (HTTP ``failure reason``, UDP action 3 'error')."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"tracker refused: {reason}")
        self.reason = reason


class TrackerTimeout(TrackerError):
    """The tracker did not answer within its deadline (after every retry)."""


class TrackerUnreachable(TrackerError):
    """The tracker's host could not be resolved or connected to, or answered with an HTTP error."""


class UnsupportedTracker(TrackerError):
    """A tracker URL we cannot use (a scheme other than http, https or udp, or malformed)."""
