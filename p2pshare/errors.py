"""Every error p2pshare raises on purpose, and the exit code each one maps to.

One base class, :class:`P2PShareError`, so the CLI can turn any of them into one
clear line and a distinct exit code.  Each message says what went wrong and, where
the user can act, what to do.

Two families matter for protocol code (as in h11):

* :class:`RemoteProtocolError`: the other side broke a rule or pushed past a limit.
  The connection is dropped (and the peer possibly banned); we never crash.
* :class:`LocalProtocolError`: we tried to do something the protocol forbids, a bug.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = [
    "BencodeError",
    "ExitCode",
    "LocalProtocolError",
    "MetainfoError",
    "NoMetadataError",
    "NoPeersError",
    "NotWritableError",
    "DiskFullError",
    "P2PShareError",
    "PathNotFoundError",
    "PortInUseError",
    "RemoteProtocolError",
    "StorageError",
    "TargetError",
    "IncompleteError",
    "UnsafeManifestError",
    "UsageError",
    "Violation",
]


class ExitCode(IntEnum):
    """Process exit codes; each user-facing failure has its own."""

    OK = 0
    ERROR = 1  #: anything not listed below, including an invalid manifest
    USAGE = 2  #: bad arguments or options (typer/click use 2 as well)
    BAD_TARGET = 3  #: not a .torrent, magnet link or 40-hex/32-base32 info hash
    NO_SUCH_PATH = 4  #: a path given on the command line does not exist
    PORT_IN_USE = 5  #: the listening port is taken
    NO_PEERS = 6  #: no peers found within the timeout
    NO_METADATA = 7  #: peers found, but the manifest never arrived
    DISK_FULL = 8  #: no space left on the device
    NOT_WRITABLE = 9  #: the output folder cannot be written
    INCOMPLETE = 10  #: timed out before every piece was verified
    UNSAFE_MANIFEST = 11  #: the only manifest the info hash can name writes outside the folder
    INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT, as shells report it)


class P2PShareError(Exception):
    """Base of every error p2pshare raises on purpose."""

    exit_code: ExitCode = ExitCode.ERROR


class UsageError(P2PShareError):
    """The user gave an argument or option that cannot work."""

    exit_code = ExitCode.USAGE


class TargetError(UsageError):
    """A TARGET is neither a .torrent file, a magnet link nor an info hash."""

    exit_code = ExitCode.BAD_TARGET


class PathNotFoundError(UsageError):
    """A path given by the user does not exist."""

    exit_code = ExitCode.NO_SUCH_PATH


class BencodeError(P2PShareError, ValueError):
    """Bytes that are not valid (or are too large / too deep) bencode."""


class MetainfoError(P2PShareError, ValueError):
    """A manifest (.torrent or info dict) that is malformed or unsafe."""


class Violation(StrEnum):
    """What kind of rule a remote party broke: the reason as a type, the message for people."""

    MALFORMED = "malformed"  #: bytes that do not decode as what they claim to be
    TOO_LARGE = "too_large"  #: a length or count past one of our named limits
    WRONG_TORRENT = "wrong_torrent"  #: a handshake for another info hash
    SELF_CONNECTION = "self_connection"  #: the peer id is our own
    OUT_OF_ORDER = "out_of_order"  #: a message where the protocol does not allow it
    OUT_OF_RANGE = "out_of_range"  #: a piece, offset or length outside the torrent
    UNREQUESTED = "unrequested"  #: a piece or reject for something we never asked for
    NOT_NEGOTIATED = "not_negotiated"  #: a fast or extension message without the handshake bits
    FLOOD = "flood"  #: more unanswered requests than any honest peer sends
    BAD_PIECE = "bad_piece"  #: piece data that failed its hash check
    BAD_METADATA = "bad_metadata"  #: a manifest that does not match the info hash, or is invalid
    UNREAD = "unread"  #: replies the peer asked for and left unread, past the outgoing cap


class RemoteProtocolError(P2PShareError):
    """The remote side broke the protocol or a limit; drop (or ban) it.

    ``kind`` says which rule (tests and policy look at it; the message is for
    people).  ``ban`` says whether the offence is bad enough to refuse the peer for
    the rest of the session (for example, data that failed its hash on its own).
    """

    def __init__(self, message: str, *, kind: Violation = Violation.MALFORMED, ban: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.ban = ban


class LocalProtocolError(P2PShareError):
    """We tried to do something the protocol forbids: a bug in p2pshare."""


class StorageError(P2PShareError, OSError):
    """Reading or writing the shared files failed."""


class DiskFullError(StorageError):
    """No space left on the device."""

    exit_code = ExitCode.DISK_FULL


class NotWritableError(StorageError):
    """The output folder cannot be created or written."""

    exit_code = ExitCode.NOT_WRITABLE


class PortInUseError(P2PShareError):
    """The port we were asked to listen on is taken."""

    exit_code = ExitCode.PORT_IN_USE


class NoPeersError(P2PShareError):
    """No peer was found within the timeout."""

    exit_code = ExitCode.NO_PEERS


class NoMetadataError(P2PShareError):
    """Peers were found, but none delivered the manifest in time."""

    exit_code = ExitCode.NO_METADATA


class IncompleteError(P2PShareError):
    """The timeout passed before every piece was verified."""

    exit_code = ExitCode.INCOMPLETE


class UnsafeManifestError(MetainfoError):
    """The manifest that matches the info hash is unsafe (a path escaping the folder, ...).

    A hash names exactly one manifest, so no peer can ever send a better one: stop at once.
    """

    exit_code = ExitCode.UNSAFE_MANIFEST
