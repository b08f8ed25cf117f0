"""Harnesses for the BitTorrent engines of the interop matrix (issue 10).

One module per engine (:mod:`.aria2`, :mod:`.transmission`, :mod:`.webtorrent`), each
starting it on loopback with every way of finding peers off except the one a cell
tests, and :mod:`.common` for processes, bounded waits, payloads and p2pshare's CLI.
``make tools`` (scripts/install-engines.sh, run by ``make dev`` and ``make test``)
installs the engines; a missing one skips its cells with the reason.
"""
