"""A streaming, limit-checked parser for the peer wire byte stream.

Feed it whatever the socket delivered with :meth:`MessageParser.feed`, then pull
whole messages with :meth:`MessageParser.next_handshake` (once, first) and
:meth:`MessageParser.next_message` until it returns ``None`` (need more bytes).

Limits are checked as soon as the 4-byte length and 1-byte id are buffered, so a
peer cannot make us buffer more than one legal message: every id has an exact or
bounded length, and a breach is a :class:`RemoteProtocolError`.  Message ids we do
not know are skipped (common practice) but still obey ``max_message_length``.

The buffer is a ``bytearray`` read at an offset; consumed bytes are dropped in
bulk (CPython deletes from the front of a bytearray without moving the rest), so
parsing is linear in the input however it is split.
"""

from __future__ import annotations

import struct

from p2pshare.config import HashesLimits, WireLimits
from p2pshare.core.wire import hashes
from p2pshare.core.wire.messages import (
    HANDSHAKE_LENGTH,
    PROTOCOL_HEADER,
    AllowedFast,
    BitfieldMsg,
    Cancel,
    Choke,
    Extended,
    Handshake,
    Have,
    HaveAll,
    HaveNone,
    Interested,
    KeepAlive,
    Message,
    MessageId,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    Suggest,
    Unchoke,
)
from p2pshare.errors import RemoteProtocolError, Violation

__all__ = ["MessageParser"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_2U32 = struct.Struct(">II")
_3U32 = struct.Struct(">III")

#: Exact lengths (id byte included) of the fixed-size messages.
_FIXED_LENGTH: dict[int, int] = {
    MessageId.CHOKE: 1,
    MessageId.UNCHOKE: 1,
    MessageId.INTERESTED: 1,
    MessageId.NOT_INTERESTED: 1,
    MessageId.HAVE: 5,
    MessageId.REQUEST: 13,
    MessageId.CANCEL: 13,
    MessageId.PORT: 3,
    MessageId.SUGGEST: 5,
    MessageId.HAVE_ALL: 1,
    MessageId.HAVE_NONE: 1,
    MessageId.REJECT_REQUEST: 13,
    MessageId.ALLOWED_FAST: 5,
}
_BARE: dict[int, Message] = {
    MessageId.CHOKE: Choke(),
    MessageId.UNCHOKE: Unchoke(),
    MessageId.INTERESTED: Interested(),
    MessageId.NOT_INTERESTED: NotInterested(),
    MessageId.HAVE_ALL: HaveAll(),
    MessageId.HAVE_NONE: HaveNone(),
}
_KEEPALIVE = KeepAlive()
_HASH_IDS = frozenset((MessageId.HASH_REQUEST, MessageId.HASHES, MessageId.HASH_REJECT))
_COMPACT_AT = 64 * 1024


class MessageParser:
    """Turns the bytes of one peer link into handshake and message objects."""

    __slots__ = ("_buf", "_max_any", "_max_bitfield", "_num_pieces", "_pos", "hash_limits", "limits")

    def __init__(
        self,
        limits: WireLimits | None = None,
        num_pieces: int | None = None,
        hash_limits: HashesLimits | None = None,
    ) -> None:
        self.limits = limits if limits is not None else WireLimits()
        self.hash_limits = hash_limits if hash_limits is not None else HashesLimits()
        self._buf = bytearray()
        self._pos = 0
        self._num_pieces: int | None = None
        self._max_bitfield = 0
        self._max_any = 0
        self.set_num_pieces(num_pieces)

    # -- configuration -----------------------------------------------------

    def set_num_pieces(self, num_pieces: int | None) -> None:
        """Tell the parser the piece count (bitfields must then have the exact size)."""
        if num_pieces is not None and num_pieces < 0:
            raise ValueError("num_pieces must be >= 0")
        self._num_pieces = num_pieces
        if num_pieces is None:
            self._max_bitfield = 1 + self.limits.max_unknown_bitfield
        else:
            self._max_bitfield = 1 + (num_pieces + 7) // 8
        self._max_any = max(
            self.limits.max_message_length,
            2 + self.limits.max_extended_message,
            self._max_bitfield,
            hashes.max_frame_length(hashes.HashMessageId.HASHES, self.hash_limits),
        )

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buf) - self._pos

    # -- input -------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        if self._pos:
            if self._pos == len(self._buf):
                self._buf.clear()
                self._pos = 0
            elif self._pos >= _COMPACT_AT or self._pos * 2 >= len(self._buf):
                del self._buf[: self._pos]
                self._pos = 0
        self._buf += data

    def _take(self, start: int, end: int) -> bytes:
        with memoryview(self._buf) as view:
            return view[start:end].tobytes()

    # -- output ------------------------------------------------------------

    def next_handshake(self) -> Handshake | None:
        """The peer's 68-byte handshake, or ``None`` until it has all arrived.

        The protocol string is checked as soon as its bytes arrive, so a peer that
        speaks something else is refused without waiting for 68 bytes.
        """
        buf, pos = self._buf, self._pos
        avail = len(buf) - pos
        head = bytes(buf[pos : pos + min(avail, len(PROTOCOL_HEADER))])
        if head != PROTOCOL_HEADER[: len(head)]:
            raise RemoteProtocolError(
                f"not a BitTorrent handshake (starts with {head[:20]!r}); the peer speaks another protocol",
                kind=Violation.MALFORMED,
            )
        if avail < HANDSHAKE_LENGTH:
            return None
        start = pos + len(PROTOCOL_HEADER)
        reserved = bytes(buf[start : start + 8])
        info_hash = bytes(buf[start + 8 : start + 28])
        peer_id = bytes(buf[start + 28 : start + 48])
        self._pos = pos + HANDSHAKE_LENGTH
        return Handshake(info_hash, peer_id, reserved)

    def _check_length(self, msg_id: int, length: int) -> None:
        fixed = _FIXED_LENGTH.get(msg_id)
        if fixed is not None:
            if length != fixed:
                name = MessageId(msg_id).name.lower()
                raise RemoteProtocolError(
                    f"{name} message of length {length}; it must be {fixed}", kind=Violation.MALFORMED
                )
            return
        if msg_id == MessageId.PIECE:
            if not 9 <= length <= self.limits.max_message_length:
                raise RemoteProtocolError(
                    f"piece message of length {length}; allowed 9..{self.limits.max_message_length}",
                    kind=Violation.TOO_LARGE,
                )
        elif msg_id == MessageId.BITFIELD:
            if self._num_pieces is not None and length != self._max_bitfield:
                raise RemoteProtocolError(
                    f"bitfield message of length {length} for {self._num_pieces} pieces "
                    f"(expected {self._max_bitfield})",
                    kind=Violation.MALFORMED,
                )
            if length > self._max_bitfield:
                raise RemoteProtocolError(
                    f"bitfield message of length {length} exceeds {self._max_bitfield}",
                    kind=Violation.TOO_LARGE,
                )
        elif msg_id in _HASH_IDS:
            low, cap = 1 + hashes.HEADER_SIZE, hashes.max_frame_length(msg_id, self.hash_limits)
            if not low <= length <= cap:
                raise RemoteProtocolError(
                    f"{MessageId(msg_id).name.lower()} message of length {length}; allowed {low}..{cap}",
                    kind=Violation.TOO_LARGE if length > cap else Violation.MALFORMED,
                )
        elif msg_id == MessageId.EXTENDED:
            cap = 2 + self.limits.max_extended_message
            if not 2 <= length <= cap:
                raise RemoteProtocolError(
                    f"extended message of length {length}; allowed 2..{cap}", kind=Violation.TOO_LARGE
                )
        elif length > self.limits.max_message_length:
            raise RemoteProtocolError(
                f"message id {msg_id} of length {length} exceeds {self.limits.max_message_length}",
                kind=Violation.TOO_LARGE,
            )

    def next_message(self) -> Message | None:
        """The next whole message, or ``None`` until more bytes arrive.

        Raises :class:`RemoteProtocolError` on a length that breaks the rules.
        """
        buf = self._buf
        while True:
            pos = self._pos
            avail = len(buf) - pos
            if avail < 4:
                return None
            length = _U32.unpack_from(buf, pos)[0]
            if length == 0:
                self._pos = pos + 4
                return _KEEPALIVE
            if length > self._max_any:
                raise RemoteProtocolError(
                    f"message length {length} exceeds the limit of {self._max_any}", kind=Violation.TOO_LARGE
                )
            if avail < 5:
                return None
            msg_id = buf[pos + 4]
            self._check_length(msg_id, length)
            end = pos + 4 + length
            if len(buf) < end:
                return None
            self._pos = end
            start = pos + 5
            msg = self._decode(msg_id, start, end)
            if msg is not None:
                return msg
            # unknown id: skipped, try the next one

    def _decode(self, msg_id: int, start: int, end: int) -> Message | None:
        buf = self._buf
        bare = _BARE.get(msg_id)
        if bare is not None:
            return bare
        if msg_id == MessageId.PIECE:
            index, begin = _2U32.unpack_from(buf, start)
            return Piece(index, begin, self._take(start + 8, end))
        if msg_id in (MessageId.REQUEST, MessageId.CANCEL, MessageId.REJECT_REQUEST):
            index, begin, length = _3U32.unpack_from(buf, start)
            if msg_id == MessageId.REQUEST:
                return Request(index, begin, length)
            if msg_id == MessageId.CANCEL:
                return Cancel(index, begin, length)
            return RejectRequest(index, begin, length)
        if msg_id == MessageId.HAVE:
            return Have(_U32.unpack_from(buf, start)[0])
        if msg_id == MessageId.BITFIELD:
            return BitfieldMsg(self._take(start, end))
        if msg_id == MessageId.EXTENDED:
            return Extended(buf[start], self._take(start + 1, end))
        if msg_id == MessageId.PORT:
            return Port(_U16.unpack_from(buf, start)[0])
        if msg_id == MessageId.SUGGEST:
            return Suggest(_U32.unpack_from(buf, start)[0])
        if msg_id == MessageId.ALLOWED_FAST:
            return AllowedFast(_U32.unpack_from(buf, start)[0])
        if msg_id in _HASH_IDS:
            return hashes.decode_payload(msg_id, self._take(start, end), self.hash_limits)
        return None
