"""Sans-I/O protocol state: no sockets, no files, no clock, no asyncio.

Everything here takes bytes and an explicit ``now`` and gives back events and
bytes; the asyncio adapters in :mod:`p2pshare.io` and :mod:`p2pshare.engine` own
the sockets, timers and files.
"""
