"""The initiator (A, the side that dialed) of an MSE/PE handshake, sans-I/O.

Steps (``->`` we send, ``<-`` we wait for)::

    -> Ya, PadA                                   (at construction)
    <- Yb (96 bytes)
    -> HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
       ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
    <- PadB, then ENCRYPT(VC): searched within sync_window bytes
    <- ENCRYPT(crypto_select, len(PadD)), ENCRYPT(PadD)
    => HandshakeDone(method, info_hash, payload already received)
"""

from __future__ import annotations

import struct

from p2pshare.config import EncryptionPolicy, MseConfig
from p2pshare.core.mse.crypto import (
    DH_BYTES,
    VC,
    Rc4,
    StreamCipher,
    decode_public_key,
    method_bits,
    req1,
    req2,
    req3,
    shared_secret,
    stream_keys,
)
from p2pshare.core.mse.events import FailureReason, Method
from p2pshare.core.mse.machine import MseMachine, RandomBytes
from p2pshare.core.mse.policy import provided_methods
from p2pshare.errors import LocalProtocolError

__all__ = ["Initiator"]

_SELECT = struct.Struct(">IH")  # crypto_select, len(PadD)


class Initiator(MseMachine):
    """Side A: opens with its public key; knows the info hash (SKEY) it wants."""

    def __init__(
        self,
        info_hash: bytes,
        *,
        config: MseConfig,
        now: float,
        policy: EncryptionPolicy | None = None,
        initial_payload: bytes = b"",
        random_bytes: RandomBytes | None = None,
    ) -> None:
        super().__init__(config, now, random_bytes)
        if len(info_hash) != 20:
            raise LocalProtocolError("an MSE SKEY (info hash) is 20 bytes")
        if len(initial_payload) > 0xFFFF:
            raise LocalProtocolError("the initial payload (IA) is at most 65535 bytes")
        self._skey = info_hash
        self._provide = provided_methods(policy or config.policy)
        self._ia = initial_payload
        self._cipher: StreamCipher | None = None
        self._vc_marker = b""
        self._pad_d = 0
        self._selected = Method.PLAINTEXT
        self._out += self._public + self._pad()
        self._step = self._read_yb

    def _read_yb(self) -> bool:
        if len(self._buf) < DH_BYTES:
            return False
        yb = decode_public_key(self._take(DH_BYTES))
        if yb is None:
            self._fail(FailureReason.BAD_PUBLIC_KEY, "the receiver's public key is degenerate")
            return False
        secret = shared_secret(yb, self._private)
        key_a, key_b = stream_keys(secret, self._skey)
        self._cipher = StreamCipher(Rc4(key_a), Rc4(key_b))
        self._vc_marker = Rc4(key_b).update(VC)
        pad_c = self._pad()
        head = VC + method_bits(self._provide) + len(pad_c).to_bytes(2, "big")
        body = head + pad_c + len(self._ia).to_bytes(2, "big") + self._ia
        xored = bytes(a ^ b for a, b in zip(req2(self._skey), req3(secret), strict=True))
        self._out += req1(secret) + xored + self._cipher.encrypt(body)
        self._step = self._sync_vc
        return True

    def _sync_vc(self) -> bool:
        at = self._find_marker(self._vc_marker)
        if at is None:
            return False
        del self._buf[:at]
        assert self._cipher is not None
        self._cipher.decrypt(self._take(len(VC)))  # keeps the keystream in step
        self._step = self._read_select
        return True

    def _read_select(self) -> bool:
        if len(self._buf) < _SELECT.size:
            return False
        assert self._cipher is not None
        select, pad_d = _SELECT.unpack(self._cipher.decrypt(self._take(_SELECT.size)))
        if select not in (Method.PLAINTEXT, Method.RC4) or not select & self._provide:
            detail = f"crypto_select {select:#x} for crypto_provide {int(self._provide):#x}"
            self._fail(FailureReason.BAD_SELECT, detail)
            return False
        if pad_d > self._cfg.max_pad:
            self._fail(FailureReason.PAD_TOO_LONG, f"PadD of {pad_d} bytes (limit {self._cfg.max_pad})")
            return False
        self._selected = Method(select)
        self._pad_d = pad_d
        self._step = self._read_pad_d
        return True

    def _read_pad_d(self) -> bool:
        if len(self._buf) < self._pad_d:
            return False
        assert self._cipher is not None
        self._cipher.decrypt(self._take(self._pad_d))
        cipher = self._cipher if self._selected is Method.RC4 else None
        self._done(self._selected, self._skey, cipher)
        return False
