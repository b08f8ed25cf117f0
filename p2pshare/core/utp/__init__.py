"""uTP (BEP 29) as a sans-I/O machine: datagrams and ``now`` in, datagrams, events and timers out.

* :mod:`.packet`: the header codec and the selective-ACK extension;
* :mod:`.congestion`: RTT/timeout and LEDBAT;
* :mod:`.receiver`: in-order delivery, the reorder buffer and the receive window;
* :mod:`.connection`: one connection's state machine and send side;
* :mod:`.manager`: many connections over one UDP endpoint, demultiplexed by id.
"""

from p2pshare.core.utp.events import (
    Closed,
    CloseReason,
    Connected,
    DataReceived,
    IncomingConnection,
    UtpEvent,
)
from p2pshare.core.utp.manager import UtpManager
from p2pshare.core.utp.packet import Packet, PacketType, UtpPacketError, decode, encode

__all__ = [
    "CloseReason",
    "Closed",
    "Connected",
    "DataReceived",
    "IncomingConnection",
    "Packet",
    "PacketType",
    "UtpEvent",
    "UtpManager",
    "UtpPacketError",
    "decode",
    "encode",
]
