"""What the encryption policy means for each role, in one place.

=========  ==========================  ===============================  ==========================
policy     outgoing: crypto_provide    incoming: may select             plain BitTorrent incoming
=========  ==========================  ===============================  ==========================
prefer     RC4 | plaintext             RC4 (or plaintext, prefer_rc4)   accepted
require    RC4                         RC4                              refused
off        (no MSE: dial plaintext)    (MSE refused)                    accepted
=========  ==========================  ===============================  ==========================

Under ``prefer`` an outgoing MSE attempt that fails because the peer does not speak MSE
(it closed, went silent or never synchronised) is retried in plaintext on a new
connection, as libtorrent and Transmission do by default.
"""

from __future__ import annotations

from p2pshare.config import EncryptionPolicy
from p2pshare.core.mse.events import FailureReason, Method, MseError
from p2pshare.errors import LocalProtocolError

__all__ = ["allowed_methods", "provided_methods", "retry_plaintext", "select_method"]

#: Failures that say "this peer does not do MSE", not "this peer misbehaved".
_NOT_SPOKEN = frozenset({FailureReason.CLOSED, FailureReason.TIMEOUT, FailureReason.NO_SYNC})


def provided_methods(policy: EncryptionPolicy) -> Method:
    """What an initiator offers: RC4 only under ``require``, both under ``prefer``."""
    if policy is EncryptionPolicy.OFF:
        raise LocalProtocolError("encryption is off: dial in plaintext instead of starting MSE")
    return Method.RC4 if policy is EncryptionPolicy.REQUIRE else Method.RC4 | Method.PLAINTEXT


def allowed_methods(policy: EncryptionPolicy) -> Method:
    """The payload methods a receiver may select under ``policy`` (none under ``off``)."""
    if policy is EncryptionPolicy.OFF:
        return Method(0)
    return Method.RC4 if policy is EncryptionPolicy.REQUIRE else Method.RC4 | Method.PLAINTEXT


def select_method(provided: int, policy: EncryptionPolicy, prefer_rc4: bool) -> Method | None:
    """The one method to select from crypto_provide, or None when nothing allowed is offered."""
    common = Method(provided & int(allowed_methods(policy)))
    if common == Method.RC4 | Method.PLAINTEXT:
        return Method.RC4 if prefer_rc4 else Method.PLAINTEXT
    if common in (Method.RC4, Method.PLAINTEXT):
        return common
    return None


def retry_plaintext(error: MseError, policy: EncryptionPolicy) -> bool:
    """After an outgoing MSE handshake failed with ``error``: dial again in plaintext?"""
    return policy is EncryptionPolicy.PREFER and error.reason in _NOT_SPOKEN
