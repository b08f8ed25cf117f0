"""Write tokens for announce_peer (BEP 5).

A token is a keyed hash of the querier's IP address.  The secret rotates every
``token_rotation`` seconds and the previous secret stays valid, so a token handed
out by get_peers works for 5 to 10 minutes.  Rotation is lazy: each call first
catches the secrets up with ``now``, so no timer is needed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

__all__ = ["TokenManager"]

_TOKEN_BYTES = 8


class TokenManager:
    """Issue and check write tokens bound to an IP address."""

    def __init__(self, rotation: float, now: float, secret_source: Callable[[int], bytes]) -> None:
        self._rotation = rotation
        self._secret_source = secret_source
        self._current = secret_source(16)
        self._previous = secret_source(16)
        self._next_rotation = now + rotation

    def _catch_up(self, now: float) -> None:
        if now < self._next_rotation:
            return
        periods = int((now - self._next_rotation) // self._rotation) + 1
        if periods >= 2:
            self._previous = self._secret_source(16)
        else:
            self._previous = self._current
        self._current = self._secret_source(16)
        self._next_rotation += periods * self._rotation

    @staticmethod
    def _make(secret: bytes, ip: str) -> bytes:
        return hashlib.blake2b(ip.encode(), key=secret, digest_size=_TOKEN_BYTES).digest()

    def token_for(self, ip: str, now: float) -> bytes:
        """The token to hand to a querier at ``ip``."""
        self._catch_up(now)
        return self._make(self._current, ip)

    def is_valid(self, token: bytes, ip: str, now: float) -> bool:
        """Whether ``token`` was issued to ``ip`` under the current or previous secret."""
        self._catch_up(now)
        return hmac.compare_digest(token, self._make(self._current, ip)) or hmac.compare_digest(
            token, self._make(self._previous, ip)
        )
