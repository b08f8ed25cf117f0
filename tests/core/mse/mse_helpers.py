"""Helpers for the MSE machine tests: seeded randomness, a pump between two machines,
and a hand-written peer for each role built straight from the spec (hashlib + ARC4),
so the machines are checked against an independent encoding, not against themselves."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext

from p2pshare.config import EncryptionPolicy, MseConfig
from p2pshare.core.mse import Event, Initiator, Receiver, skey_lookup

P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
    16,
)
INFO_HASH = bytes(range(1, 21))
OTHER_HASH = bytes(range(101, 121))
CFG = MseConfig()


def sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def rc4(key: bytes) -> CipherContext:
    ctx = Cipher(ARC4(key), mode=None).encryptor()
    ctx.update(bytes(1024))
    return ctx


def seeded(seed: int, pad: int | None = None) -> Callable[[int], bytes]:
    """Seeded random bytes; with ``pad``, every pad-length draw (2 bytes) yields ``pad``."""
    rng = random.Random(seed)

    def draw(n: int) -> bytes:
        if n == 2 and pad is not None:
            return pad.to_bytes(2, "big")
        return rng.randbytes(n)

    return draw


def make_pair(
    seed: int = 1,
    *,
    pad: int | None = None,
    ia: bytes = b"",
    a_policy: EncryptionPolicy = EncryptionPolicy.PREFER,
    b_policy: EncryptionPolicy = EncryptionPolicy.PREFER,
    config: MseConfig = CFG,
) -> tuple[Initiator, Receiver]:
    a = Initiator(
        INFO_HASH, config=config, now=0.0, policy=a_policy, initial_payload=ia, random_bytes=seeded(seed, pad)
    )
    b = Receiver(
        skey_lookup([OTHER_HASH, INFO_HASH]),
        config=config,
        now=0.0,
        policy=b_policy,
        random_bytes=seeded(seed + 1000, pad),
    )
    return a, b


def pump(
    a: Initiator, b: Receiver, chunk: int | None = None, rounds: int = 10
) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways (in ``chunk``-byte pieces when given) until both machines are quiet."""
    ev_a: list[Event] = []
    ev_b: list[Event] = []
    for _ in range(rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            if data and not dst.finished:
                moved = True
                step = chunk or len(data)
                for i in range(0, len(data), step):
                    dst.receive_data(data[i : i + step])
        ev_a += a.events()
        ev_b += b.events()
        if not moved:
            break
    return ev_a, ev_b


@dataclass
class ScriptedA:
    """An initiator written out by hand; every field can be bent."""

    private: int = 0x1234567890ABCDEF1234567890ABCDEF12345678

    @property
    def ya(self) -> bytes:
        return pow(2, self.private, P).to_bytes(96, "big")

    def secret(self, yb: bytes) -> bytes:
        return pow(int.from_bytes(yb, "big"), self.private, P).to_bytes(96, "big")

    def step3(
        self,
        yb: bytes,
        skey: bytes = INFO_HASH,
        *,
        provide: int = 3,
        pad_c: bytes = b"",
        pad_c_len: int | None = None,
        ia: bytes = b"",
        ia_len: int | None = None,
        vc: bytes = bytes(8),
    ) -> tuple[bytes, CipherContext, CipherContext]:
        """req1, req2^req3, ENCRYPT(VC, provide, len(PadC), PadC, len(IA), IA); and both ciphers."""
        s = self.secret(yb)
        xored = bytes(x ^ y for x, y in zip(sha1(b"req2", skey), sha1(b"req3", s), strict=True))
        enc = rc4(sha1(b"keyA", s, skey))
        dec = rc4(sha1(b"keyB", s, skey))
        body = (
            vc
            + provide.to_bytes(4, "big")
            + (len(pad_c) if pad_c_len is None else pad_c_len).to_bytes(2, "big")
            + pad_c
            + (len(ia) if ia_len is None else ia_len).to_bytes(2, "big")
            + ia
        )
        return sha1(b"req1", s) + xored + enc.update(body), enc, dec


@dataclass
class ScriptedB:
    """A receiver written out by hand, answering one initiator's Ya."""

    private: int = 0x0FEDCBA9876543210FEDCBA9876543210FEDCBA9

    @property
    def yb(self) -> bytes:
        return pow(2, self.private, P).to_bytes(96, "big")

    def secret(self, ya: bytes) -> bytes:
        return pow(int.from_bytes(ya, "big"), self.private, P).to_bytes(96, "big")

    def step4(
        self,
        ya: bytes,
        skey: bytes = INFO_HASH,
        *,
        select: int = 2,
        pad_d: bytes = b"",
        pad_d_len: int | None = None,
    ) -> tuple[bytes, CipherContext, CipherContext]:
        """ENCRYPT(VC, crypto_select, len(PadD), PadD); and the (encrypt, decrypt) ciphers."""
        s = self.secret(ya)
        enc = rc4(sha1(b"keyB", s, skey))
        dec = rc4(sha1(b"keyA", s, skey))
        n = len(pad_d) if pad_d_len is None else pad_d_len
        return enc.update(bytes(8) + select.to_bytes(4, "big") + n.to_bytes(2, "big") + pad_d), enc, dec
