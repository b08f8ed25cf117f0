"""The arithmetic of MSE/PE: 768-bit Diffie-Hellman, the SHA-1 markers, RC4 keyed per direction.

Facts of the protocol (as libtorrent, Transmission and Vuze implement it):

* DH over the 768-bit prime ``P`` below with generator 2; private keys are 160 bits;
  public keys and the shared secret ``S`` travel as 96-byte big-endian numbers.
* ``HASH`` is SHA-1.  The initiator proves it knows ``S`` with ``HASH('req1', S)`` and
  names the torrent with ``HASH('req2', SKEY) xor HASH('req3', S)``; SKEY is the info hash.
* The initiator (A) encrypts with RC4 keyed by ``HASH('keyA', S, SKEY)``, the receiver (B)
  with ``HASH('keyB', S, SKEY)``; each stream drops its first 1024 bytes.
* The verification constant VC is eight zero bytes.

RC4 comes from the ``cryptography`` package (a C implementation), never from Python.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext

try:  # cryptography >= 43 keeps ARC4 among the "decrepit" algorithms
    from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import ARC4  # type: ignore[no-redef,unused-ignore]

from p2pshare.core.mse.events import Method

__all__ = [
    "DH_BYTES",
    "G",
    "P",
    "PRIVATE_KEY_BITS",
    "RC4_DISCARD",
    "VC",
    "Rc4",
    "SkeyLookup",
    "StreamCipher",
    "decode_public_key",
    "method_bits",
    "private_key_from",
    "public_key",
    "req1",
    "req2",
    "req3",
    "shared_secret",
    "skey_lookup",
    "stream_keys",
]

P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563",
    16,
)
G = 2
DH_BYTES = 96  #: public keys and the shared secret on the wire
PRIVATE_KEY_BITS = 160
RC4_DISCARD = 1024  #: keystream bytes dropped from the start of each direction
VC = bytes(8)  #: the verification constant

#: Maps ``HASH('req2', SKEY)`` to the SKEY (info hash) it names, or None when not served.
SkeyLookup = Callable[[bytes], bytes | None]


def _sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def private_key_from(random20: bytes) -> int:
    """A 160-bit private key from 20 random bytes (never zero)."""
    return int.from_bytes(random20[: PRIVATE_KEY_BITS // 8], "big") or 1


def public_key(private: int) -> bytes:
    """``G**x mod P`` as the 96 bytes that go on the wire."""
    return pow(G, private, P).to_bytes(DH_BYTES, "big")


def decode_public_key(data: bytes) -> int | None:
    """The peer's public key, or None when it is degenerate (outside 2..P-2)."""
    y = int.from_bytes(data, "big")
    return y if 1 < y < P - 1 else None


def shared_secret(peer_public: int, private: int) -> bytes:
    """``S``, the DH secret, as 96 big-endian bytes."""
    return pow(peer_public, private, P).to_bytes(DH_BYTES, "big")


def req1(secret: bytes) -> bytes:
    return _sha1(b"req1", secret)


def req2(skey: bytes) -> bytes:
    return _sha1(b"req2", skey)


def req3(secret: bytes) -> bytes:
    return _sha1(b"req3", secret)


def skey_lookup(info_hashes: Iterable[bytes]) -> SkeyLookup:
    """A lookup for the receiver over every torrent a session serves (one dict, built once)."""
    table = {req2(ih): ih for ih in info_hashes}
    return table.get


def stream_keys(secret: bytes, skey: bytes) -> tuple[bytes, bytes]:
    """(keyA, keyB): the RC4 keys of the initiator's and the receiver's direction."""
    return _sha1(b"keyA", secret, skey), _sha1(b"keyB", secret, skey)


def method_bits(methods: Method) -> bytes:
    """A crypto_provide / crypto_select field (32 bits, big-endian)."""
    return int(methods).to_bytes(4, "big")


class Rc4:
    """One direction's RC4 keystream, first 1024 bytes already dropped."""

    __slots__ = ("_ctx",)

    def __init__(self, key: bytes) -> None:
        self._ctx: CipherContext = Cipher(ARC4(key), mode=None).encryptor()
        self._ctx.update(bytes(RC4_DISCARD))

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Encrypt or decrypt (the same operation) the next ``len(data)`` bytes of the stream."""
        return self._ctx.update(data)

    def update_into(self, data: bytes | bytearray | memoryview, out: bytearray | memoryview) -> int:
        """Like :meth:`update`, writing into ``out`` (at least ``len(data)`` bytes) without allocating."""
        return self._ctx.update_into(data, out)


class StreamCipher:
    """Both directions of an RC4 link after the handshake: ``encrypt`` ours, ``decrypt`` the peer's."""

    __slots__ = ("decryptor", "encryptor")

    def __init__(self, encryptor: Rc4, decryptor: Rc4) -> None:
        self.encryptor = encryptor
        self.decryptor = decryptor

    def encrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        return self.encryptor.update(data)

    def decrypt(self, data: bytes | bytearray | memoryview) -> bytes:
        return self.decryptor.update(data)
