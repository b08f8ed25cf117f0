"""ed25519 key files for BEP 44 mutable items (``share --publish``, ``--key FILE``).

A key file holds the 32-byte private key (the ed25519 seed) as 64 hex digits and a
newline; it is written atomically and readable by its owner only (mode 0600).  The
public key, which followers use as the share's handle, is derived from it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from p2pshare.core.dht.items import public_key_of
from p2pshare.errors import UsageError

__all__ = [
    "generate_private_key",
    "load_or_create_private_key",
    "load_private_key",
    "public_key_hex",
    "save_private_key",
]

_KEY_BYTES = 32
_MAX_KEY_FILE = 1024  #: a key file larger than this is not one of ours


def generate_private_key() -> bytes:
    """A fresh 32-byte ed25519 private key from the operating system's CSPRNG."""
    return Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def public_key_hex(private_key: bytes) -> str:
    """The public key of ``private_key`` as 64 hex digits (the ``xs=urn:btpk:`` handle)."""
    return public_key_of(private_key).hex()


def save_private_key(path: Path, private_key: bytes) -> None:
    """Write ``private_key`` to ``path`` as hex, atomically, mode 0600."""
    if len(private_key) != _KEY_BYTES:
        raise ValueError("an ed25519 private key is 32 bytes")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, private_key.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_private_key(path: Path) -> bytes:
    """Read a key file (64 hex digits, or the 32 raw bytes); UsageError if it is not one."""
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_KEY_FILE + 1)
    except OSError as exc:
        raise UsageError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    if len(data) == _KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * _KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise UsageError(
        f"{path} is not an ed25519 private key (expected 64 hex digits); "
        "give another --key or delete it to create a new one"
    )


def load_or_create_private_key(path: Path) -> bytes:
    """The key stored at ``path``, or a new one saved there if the file does not exist."""
    if path.exists():
        return load_private_key(path)
    key = generate_private_key()
    save_private_key(path, key)
    return key
