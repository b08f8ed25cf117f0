"""The receiver (B, the side that accepted) of an MSE/PE handshake, sans-I/O.

Steps (``<-`` we wait for, ``->`` we send)::

    <- 20 bytes: "\\x13BitTorrent protocol"? => PlaintextStream (or Failed under require)
    <- Ya (96 bytes)
    -> Yb, PadB
    <- PadA, then HASH('req1', S): searched within sync_window bytes
    <- HASH('req2', SKEY) xor HASH('req3', S): SKEY resolved among the torrents we serve
    <- ENCRYPT(VC, crypto_provide, len(PadC))
    <- ENCRYPT(PadC, len(IA))
    <- ENCRYPT(IA)
    -> ENCRYPT(VC, crypto_select, len(PadD), PadD)
    => HandshakeDone(method, info_hash, IA + payload already received)

The plaintext test needs only as many bytes as match the BitTorrent header: the first
byte that differs decides for MSE.  A 96-byte public key that starts with the 20-byte
header is a 2**-160 chance.
"""

from __future__ import annotations

import struct

from p2pshare.config import EncryptionPolicy, MseConfig
from p2pshare.core.mse.crypto import (
    DH_BYTES,
    VC,
    Rc4,
    SkeyLookup,
    StreamCipher,
    decode_public_key,
    method_bits,
    req1,
    req3,
    shared_secret,
    stream_keys,
)
from p2pshare.core.mse.events import FailureReason, Method
from p2pshare.core.mse.machine import MseMachine, RandomBytes
from p2pshare.core.mse.policy import allowed_methods, select_method

__all__ = ["PLAIN_HEADER", "Receiver"]

#: The first 20 bytes of a plain BitTorrent handshake.
PLAIN_HEADER = b"\x13BitTorrent protocol"

_PROVIDE = struct.Struct(">8sIH")  # VC, crypto_provide, len(PadC)


class Receiver(MseMachine):
    """Side B: waits for the dialer; finds the torrent by SKEY with ``lookup``."""

    def __init__(
        self,
        lookup: SkeyLookup,
        *,
        config: MseConfig,
        now: float,
        policy: EncryptionPolicy | None = None,
        random_bytes: RandomBytes | None = None,
    ) -> None:
        super().__init__(config, now, random_bytes)
        self._lookup = lookup
        self._policy = policy or config.policy
        self._secret = b""
        self._req1 = b""
        self._skey = b""
        self._key_a = b""
        self._key_b = b""
        self._decrypt: Rc4 | None = None
        self._provided = 0
        self._pad_c = 0
        self._ia_len = 0
        self._step = self._detect_plaintext

    def _detect_plaintext(self) -> bool:
        n = min(len(self._buf), len(PLAIN_HEADER))
        if self._buf[:n] == PLAIN_HEADER[:n]:
            if n < len(PLAIN_HEADER):
                return False
            if self._policy is EncryptionPolicy.REQUIRE:
                detail = "a plain BitTorrent peer while encryption is required"
                self._fail(FailureReason.PLAINTEXT_REFUSED, detail)
            else:
                self._plaintext()
            return False
        if self._policy is EncryptionPolicy.OFF:
            self._fail(FailureReason.ENCRYPTION_REFUSED, "not plain BitTorrent, and encryption is off")
            return False
        self._step = self._read_ya
        return True

    def _read_ya(self) -> bool:
        if len(self._buf) < DH_BYTES:
            return False
        ya = decode_public_key(self._take(DH_BYTES))
        if ya is None:
            self._fail(FailureReason.BAD_PUBLIC_KEY, "the initiator's public key is degenerate")
            return False
        self._secret = shared_secret(ya, self._private)
        self._req1 = req1(self._secret)
        self._out += self._public + self._pad()
        self._step = self._sync_req1
        return True

    def _sync_req1(self) -> bool:
        at = self._find_marker(self._req1)
        if at is None:
            return False
        del self._buf[: at + len(self._req1)]
        self._step = self._read_skey
        return True

    def _read_skey(self) -> bool:
        if len(self._buf) < 20:
            return False
        xored = self._take(20)
        req2_hash = bytes(a ^ b for a, b in zip(xored, req3(self._secret), strict=True))
        skey = self._lookup(req2_hash)
        if skey is None:
            self._fail(FailureReason.UNKNOWN_SKEY, "the peer asked for a torrent we do not serve")
            return False
        self._skey = skey
        self._key_a, self._key_b = stream_keys(self._secret, skey)
        self._decrypt = Rc4(self._key_a)
        self._step = self._read_provide
        return True

    def _read_provide(self) -> bool:
        if len(self._buf) < _PROVIDE.size:
            return False
        assert self._decrypt is not None
        vc, provided, pad_c = _PROVIDE.unpack(self._decrypt.update(self._take(_PROVIDE.size)))
        if vc != VC:
            self._fail(FailureReason.BAD_VC, "the verification constant did not decrypt to zeros")
            return False
        if pad_c > self._cfg.max_pad:
            self._fail(FailureReason.PAD_TOO_LONG, f"PadC of {pad_c} bytes (limit {self._cfg.max_pad})")
            return False
        self._provided = provided
        self._pad_c = pad_c
        self._step = self._read_pad_c
        return True

    def _read_pad_c(self) -> bool:
        if len(self._buf) < self._pad_c + 2:
            return False
        assert self._decrypt is not None
        ia_len = int.from_bytes(self._decrypt.update(self._take(self._pad_c + 2))[-2:], "big")
        if ia_len > self._cfg.max_initial_payload:
            self._fail(
                FailureReason.PAYLOAD_TOO_LONG,
                f"IA of {ia_len} bytes (limit {self._cfg.max_initial_payload})",
            )
            return False
        self._ia_len = ia_len
        self._step = self._read_ia
        return True

    def _read_ia(self) -> bool:
        if len(self._buf) < self._ia_len:
            return False
        assert self._decrypt is not None
        ia = self._decrypt.update(self._take(self._ia_len)) if self._ia_len else b""
        method = select_method(self._provided, self._policy, self._cfg.prefer_rc4)
        if method is None:
            self._fail(
                FailureReason.NO_COMMON_METHOD,
                f"crypto_provide {self._provided:#x}; policy {self._policy.value} allows "
                f"{int(allowed_methods(self._policy)):#x}",
            )
            return False
        encrypt = Rc4(self._key_b)
        pad_d = bytes(len(self._pad()))  # PadD's content is zeros, its length random
        self._out += encrypt.update(VC + method_bits(method) + len(pad_d).to_bytes(2, "big") + pad_d)
        cipher = StreamCipher(encrypt, self._decrypt) if method is Method.RC4 else None
        self._done(method, self._skey, cipher, ia)
        return False
