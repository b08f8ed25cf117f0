"""One peer link as a sans-I/O state machine (h11 style).

Theory of operation
===================

:class:`PeerConnection` never touches a socket or a clock.  The engine

1. sends :meth:`PeerConnection.handshake_bytes` (the initiator at once, the
   receiver after :class:`HandshakeReceived`; a receiver built with
   ``info_hash=None`` adopts the hash the peer asks for, and the engine checks it
   against the torrents it serves);
2. passes every chunk read from the socket to :meth:`~PeerConnection.receive_data`
   (``b""`` means end of stream) and then drains :meth:`~PeerConnection.next_event`
   until it returns ``None`` (more bytes needed);
3. turns every message it wants to send into bytes with :meth:`~PeerConnection.send`
   (or :meth:`~PeerConnection.send_piece` for the zero-copy data path) and writes them.

Every protocol rule is checked in one place, :meth:`PeerConnection._receive` for
what the peer sent (module :mod:`.receiving`) and :meth:`PeerConnection._send` for
what we send (:mod:`.sending`); nothing else changes the state, which is declared
in :mod:`.state`.  A rule the peer breaks raises :class:`RemoteProtocolError`
from ``next_event`` (and again on every later call): drop the peer, and ban it if
``exc.ban``.  A rule *we* would break raises :class:`LocalProtocolError` from
``send``: a bug in the caller.

Link phases (``state``)::

    HANDSHAKE --68 bytes, hash ok--> FIRST --any message but keep-alive,
                                            extended or port--> ACTIVE
    any --b"" received--> CLOSED (after the buffered events)   any --peer broke a rule--> ERROR

In FIRST the peer may send its bitfield, or (BEP 6) have-all / have-none, after
any extended, port or keep-alive messages.  A later one is not an error (aria2
re-sends its bitfield in place of a run of haves): the pieces it adds come out as
:class:`Have` events, and have-none adds nothing.  See docs/wire-rules.md for every
rule that drops a peer and the ones relaxed to match libtorrent and Transmission.

Each side's choke/interest flags, our requests to the peer (``outstanding``), the
peer's requests to us (``incoming``), the requests we still owe a reject for
(``owed_rejects``), and both allowed-fast sets are kept here, with these rules:

* A piece that answers none of our requests (cancelled, dropped by a non-fast
  peer's choke, or never asked for) comes out as :class:`UnwantedPiece`, as
  libtorrent counts it as waste; a piece outside the torrent, or at a requested
  offset with another length, is an error.
* When a non-fast peer chokes us, all our requests are void (BEP 3):
  :class:`RequestsDropped` follows the :class:`Choke`.  A fast peer must reject
  each one instead (BEP 6), so nothing is dropped implicitly.
* The peer's request is queued (emitted as :class:`Request`) only if it is in
  range, not longer than ``limits.max_request_length``, for a piece we
  advertised, and we are not choking the peer (unless the piece is in the
  allowed-fast set we granted) and the queue holds fewer than
  ``limits.max_incoming_requests``.  Otherwise it comes out as
  :class:`RequestDenied`; with the fast extension ``reject=True`` and the engine
  must ``send(RejectRequest(...))``.  More than twice the cap outstanding is a
  flood (ban).
* When we choke a non-fast peer its queued requests are discarded (BEP 3); when we
  choke a fast peer, ``send(Choke())`` appends a reject for each queued request
  outside the allowed-fast set we granted (BEP 6).
* ``send(Piece)`` / ``send(RejectRequest)`` for a request the peer no longer
  wants (cancelled by a non-fast peer, or already answered) return ``b""``: write
  what you get and the link stays correct.
* Fast-extension messages need both fast bits (else an error); extended messages
  without both extension bits, a malformed extension handshake, a reject that
  matches no request of ours and a suggest / allowed-fast past the last piece are
  ignored.  Spare bits set in a bitfield are masked off.

The peer's piece count may be unknown at first (magnet links): bitfield, have and
allowed-fast are then kept aside and checked by :meth:`set_num_pieces`; an error
found there surfaces from the next ``next_event`` call.
"""

from __future__ import annotations

from p2pshare.core.geometry import BlockRef
from p2pshare.core.wire.events import (
    Event,
    ExtensionHandshakeReceived,
    HandshakeReceived,
    PeerClosed,
    RequestDenied,
    RequestsDropped,
    UnwantedPiece,
)
from p2pshare.core.wire.receiving import Receiving
from p2pshare.core.wire.sending import Sending
from p2pshare.core.wire.state import ConnectionState

__all__ = [
    "Block",
    "ConnectionState",
    "Event",
    "ExtensionHandshakeReceived",
    "HandshakeReceived",
    "PeerClosed",
    "PeerConnection",
    "RequestDenied",
    "RequestsDropped",
    "UnwantedPiece",
]

#: A request's identity: one type with the picker's block (see :class:`~p2pshare.core.geometry.BlockRef`).
Block = BlockRef


class PeerConnection(Receiving, Sending):
    """The protocol state of one peer link; see the module docstring.

    The state lives in :class:`~p2pshare.core.wire.state.ConnectionBase`; the rules
    for what the peer sends are in :mod:`.receiving`, for what we send in :mod:`.sending`.
    """
