"""Message Stream Encryption / Protocol Encryption (MSE/PE), sans-I/O.

* :mod:`.crypto` -- the DH group, the SHA-1 markers, RC4 from ``cryptography``;
* :mod:`.events` -- :class:`HandshakeDone`, :class:`PlaintextStream`, :class:`Failed`, :class:`MseError`;
* :mod:`.machine` -- what both roles share (buffers, deadline, sync search);
* :mod:`.policy` -- what prefer / require / off mean for each role; when to retry plaintext;
* :mod:`.initiator` / :mod:`.receiver` -- side A (dialed out) and side B (accepted).

Both machines use the protocol verbs: ``receive_data(data)`` (``b""`` = closed),
``data_to_send()``, ``next_event()`` / ``events()``, ``get_timer()`` / ``handle_timer(now)``.
After :class:`HandshakeDone` with :attr:`Method.RC4`, ``machine.cipher`` encrypts and
decrypts the payload stream.
"""

from p2pshare.config import EncryptionPolicy
from p2pshare.core.mse.crypto import (
    DH_BYTES,
    RC4_DISCARD,
    VC,
    Rc4,
    SkeyLookup,
    StreamCipher,
    req2,
    skey_lookup,
)
from p2pshare.core.mse.events import (
    Event,
    Failed,
    FailureReason,
    HandshakeDone,
    Method,
    MseError,
    PlaintextStream,
)
from p2pshare.core.mse.initiator import Initiator
from p2pshare.core.mse.machine import MseMachine, RandomBytes
from p2pshare.core.mse.policy import allowed_methods, provided_methods, retry_plaintext, select_method
from p2pshare.core.mse.receiver import PLAIN_HEADER, Receiver

__all__ = [
    "DH_BYTES",
    "PLAIN_HEADER",
    "RC4_DISCARD",
    "VC",
    "EncryptionPolicy",
    "Event",
    "Failed",
    "FailureReason",
    "HandshakeDone",
    "Initiator",
    "Method",
    "MseError",
    "MseMachine",
    "PlaintextStream",
    "RandomBytes",
    "Rc4",
    "Receiver",
    "SkeyLookup",
    "StreamCipher",
    "allowed_methods",
    "provided_methods",
    "req2",
    "retry_plaintext",
    "select_method",
    "skey_lookup",
]
