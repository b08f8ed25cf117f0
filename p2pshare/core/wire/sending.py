"""Sending: every rule checked on what we send (see :mod:`.connection`)."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import BlockRef
from p2pshare.core.wire.extension import UT_METADATA, ExtensionHandshake
from p2pshare.core.wire.messages import (
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
    encode,
    encode_piece_header,
)
from p2pshare.core.wire.metadata import (
    MetadataData,
    MetadataMessage,
    MetadataReject,
    MetadataRequest,
    encode_metadata_message,
)
from p2pshare.core.wire.state import ConnectionBase, Key
from p2pshare.errors import LocalProtocolError

__all__ = ["Sending"]

#: length prefix, message id, index, begin, length: a whole request message.
_REQUEST = struct.Struct(">IBIII")
#: Messages that may precede the bitfield without ending the FIRST phase.
_BEFORE_BITFIELD = (KeepAlive, Extended, Port)


class Sending(ConnectionBase):
    """The sending half of :class:`~p2pshare.core.wire.connection.PeerConnection`."""

    # ------------------------------------------------------------------
    # sending

    def handshake_bytes(self) -> bytes:
        """Our 68-byte handshake (call once)."""
        if self._handshake_sent:
            raise LocalProtocolError("our handshake was already sent")
        if self.info_hash is None:
            raise LocalProtocolError("a receiver sends its handshake after the peer's (info hash unknown)")
        self._handshake_sent = True
        return Handshake(self.info_hash, self.our_peer_id, self.our_reserved).encode()

    def send(self, msg: Message | ExtensionHandshake | MetadataMessage) -> bytes:
        """Bytes for one message, after applying it to our side of the state.

        Raises :class:`LocalProtocolError` if the message breaks a rule.  Returns
        ``b""`` for a piece or reject the peer no longer expects (see the module doc).
        """
        return b"".join(self._send(msg))

    def send_piece(self, index: int, begin: int, data: bytes | memoryview) -> list[bytes | memoryview]:
        """A piece as ``[header, data]`` for ``writelines`` (data not copied); ``[]`` if no longer wanted."""
        if not self._answer_request((index, begin, len(data))):
            return []
        return [encode_piece_header(index, begin, len(data)), data]

    def _check_can_send(self) -> None:
        if not self._handshake_sent:
            raise LocalProtocolError("send our handshake before any message")
        if self.peer_id is None:
            raise LocalProtocolError("wait for the peer's handshake before sending messages")

    def _check_our_index(self, index: int, what: str) -> None:
        if self.num_pieces is None:
            raise LocalProtocolError(f"cannot send {what} before the piece count is known")
        if not 0 <= index < self.num_pieces:
            raise LocalProtocolError(f"{what} for piece {index} out of range ({self.num_pieces} pieces)")

    def _require_our_fast(self, msg: object) -> None:
        if not self.fast_enabled:
            raise LocalProtocolError(f"cannot send {type(msg).__name__}: fast extension not negotiated")

    def _answer_request(self, key: Key) -> bool:
        """Mark the peer's request answered; False if it no longer expects an answer."""
        self._check_can_send()
        if key in self.incoming:
            self.incoming.discard(key)
            return True
        if key in self.owed_rejects:
            self.owed_rejects.discard(key)
            return True
        return False

    def _send(self, msg: Message | ExtensionHandshake | MetadataMessage) -> list[bytes]:
        """Apply one message of ours to the state; return the bytes to write."""
        self._check_can_send()
        if isinstance(msg, ExtensionHandshake | MetadataRequest | MetadataData | MetadataReject):
            if not self.extensions_enabled:
                raise LocalProtocolError("cannot send BEP 10 messages: extensions are not negotiated")
            if isinstance(msg, ExtensionHandshake):
                for name, ext_id in msg.m.items():
                    for old in [k for k, v in self._our_ext_names.items() if v == name]:
                        del self._our_ext_names[old]
                    if ext_id:
                        self._our_ext_names[ext_id] = name
                return [encode(Extended(0, msg.encode()))]
            peer_id = self.peer_ext_id(UT_METADATA)
            if peer_id is None:
                raise LocalProtocolError("the peer does not support ut_metadata")
            return [encode(Extended(peer_id, encode_metadata_message(msg)))]

        if self._our_first_pending and not isinstance(msg, _BEFORE_BITFIELD):
            self._our_first_pending = False
            first = True
        else:
            first = False

        match msg:
            case BitfieldMsg() | HaveAll() | HaveNone():
                if not isinstance(msg, BitfieldMsg):
                    self._require_our_fast(msg)
                if not first:
                    raise LocalProtocolError(f"{type(msg).__name__} may only be our first message")
                if isinstance(msg, BitfieldMsg):
                    if self.num_pieces is None:
                        raise LocalProtocolError("cannot send a bitfield before the piece count is known")
                    try:
                        self.we_have = Bitfield.from_bytes(msg.data, self.num_pieces)
                    except ValueError as exc:
                        raise LocalProtocolError(f"bad bitfield: {exc}") from None
                elif isinstance(msg, HaveAll):
                    self._we_have_all = True
                    if self.num_pieces is not None:
                        self.we_have = Bitfield(self.num_pieces, full=True)
            case Have(index=index):
                self._check_our_index(index, "have")
                assert self.we_have is not None
                self.we_have.add(index)
            case Choke():
                self.am_choking = True
                if self.fast_enabled:
                    rejects = [k for k in self.incoming if k[0] not in self.allowed_fast_out]
                    for key in rejects:
                        self.incoming.discard(key)
                    return [encode(msg), *(encode(RejectRequest(*k)) for k in sorted(rejects))]
                self.incoming.clear()  # BEP 3: a choke discards the peer's requests
            case Unchoke():
                self.am_choking = False
            case Interested():
                self.am_interested = True
            case NotInterested():
                self.am_interested = False
            case Request(index=index, begin=begin, length=length):
                self._apply_request(BlockRef(index, begin, length))
            case Cancel(index=index, begin=begin, length=length):
                key = (index, begin, length)
                if key in self.outstanding:
                    self.outstanding.discard(key)
                    self._remember_late(key)
            case Piece(index=index, begin=begin, data=data):
                if not self._answer_request((index, begin, len(data))):
                    return []
            case RejectRequest(index=index, begin=begin, length=length):
                self._require_our_fast(msg)
                if not self._answer_request((index, begin, length)):
                    return []
            case Suggest(index=index):
                self._require_our_fast(msg)
                self._check_our_index(index, "suggest")
            case AllowedFast(index=index):
                self._require_our_fast(msg)
                self._check_our_index(index, "allowed-fast")
                self.allowed_fast_out.add(index)
            case Extended():
                if not self.extensions_enabled:
                    raise LocalProtocolError("cannot send BEP 10 messages: extensions are not negotiated")
            case KeepAlive() | Port():
                pass
        return [encode(msg)]

    def _apply_request(self, key: BlockRef) -> None:
        """Our request for a block: the rules, then it counts as outstanding."""
        index, begin, length = key
        self._check_our_index(index, "request")
        if not 0 < length <= self.limits.max_request_length:
            raise LocalProtocolError(f"request for {length} bytes")
        if self.piece_size is not None and begin + length > self.piece_size(index):
            raise LocalProtocolError(f"request {begin}+{length} runs past the end of piece {index}")
        if self.peer_choking and not (self.fast_enabled and index in self.allowed_fast_in):
            raise LocalProtocolError("cannot request while choked (piece not allowed-fast)")
        if key in self.outstanding:
            raise LocalProtocolError(f"block {key} is already requested from this peer")
        self.outstanding.add(key)
        self._late.pop(key, None)

    def send_requests(self, blocks: Iterable[BlockRef]) -> bytes:
        """Bytes for many requests at once: the download hot path, same rules as ``send(Request)``."""
        self._check_can_send()
        self._our_first_pending = False
        out = bytearray()
        pack = _REQUEST.pack
        for block in blocks:
            self._apply_request(block)
            index, begin, length = block
            out += pack(13, MessageId.REQUEST, index, begin, length)
        return bytes(out)

    def send_all(self, msgs: Iterable[Message | ExtensionHandshake | MetadataMessage]) -> bytes:
        """:meth:`send` for several messages, joined."""
        return b"".join(self.send(m) for m in msgs)
