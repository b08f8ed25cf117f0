"""Status snapshots of a torrent: what live views poll a few times a second."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pshare.engine import events as ev
from p2pshare.engine.file_choice import selected_progress

if TYPE_CHECKING:
    from p2pshare.engine.torrent import Torrent

__all__ = ["torrent_status"]


def torrent_status(t: Torrent) -> ev.TorrentStatus:
    """A snapshot of ``t``: totals, rates, each connected peer, and per-file progress."""
    info = t.info
    picker = t.picker
    peers = tuple(
        ev.PeerStatus(
            address=p.label,
            client=p.client,
            down_rate=p.down.rate,
            up_rate=p.up.rate,
            downloaded=p.down.total,
            uploaded=p.up.total,
            pieces=len(p.conn.peer_has) if p.conn.peer_has is not None else 0,
            choking_us=p.conn.peer_choking,
            choked_by_us=p.conn.am_choking,
            interested=p.conn.peer_interested,
            snubbed=p.snubbed,
            outgoing=p.outgoing,
        )
        for p in t.peers.values()
        if p.handshake_done
    )
    verified = 0
    files: tuple[tuple[str, int, int], ...] = ()
    total = info.total_length if info else 0
    if info is not None and picker is not None:
        g = info.geometry
        have = picker.have
        verified = len(have) * g.piece_length
        last = g.num_pieces - 1
        if last in have:
            verified -= g.piece_length - g.piece_size(last)
        if t.choice.partial:  # some files chosen: done and total count only those
            verified, total = selected_progress(info, t.choice.selected, have)
        if not info.single_file and len(info.files) <= t.config.engine.max_status_files:
            files = tuple(
                ("/".join(f.path), done, f.length)
                for f, done in zip(info.files, g.file_progress(have), strict=True)
            )
    return ev.TorrentStatus(
        info_hash=t.info_hash.hex,
        name=info.name if info else None,
        phase=t.phase,
        total_size=total,
        num_pieces=info.num_pieces if info else 0,
        have_pieces=len(picker.have) if picker else 0,
        verified_bytes=verified,
        downloaded=t.downloaded,
        uploaded=t.uploaded,
        down_rate=sum(p.down_rate for p in peers),
        up_rate=sum(p.up_rate for p in peers),
        peers=peers,
        known_peers=len(t.book.known),
        pieces_failed=t.pieces_failed,
        wasted=t.wasted,
        file_progress=files,
    )
