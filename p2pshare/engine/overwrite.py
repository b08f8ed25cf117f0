"""Never destroy data p2pshare did not write: the check of existing files before a download writes.

A file that already exists in the output folder, with no resume record of ours for
this download, may be another client's partial download (keep it: its verifying
pieces are ours too) or a user's own file that happens to share the name (never
overwrite it).  The rule, applied after the existing data was hashed and before
anything is written:

* a file with at least one verifying piece is kept: resuming another client's download;
* a non-empty file without any verifying piece (whatever its size) stops the
  download with :class:`~p2pshare.errors.ExistingFileError`, naming the file,
  unless the user allowed it (``--overwrite``).

Empty files hold nothing to lose.  With a resume record the files are ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from p2pshare.core.bitfield import Bitfield
from p2pshare.core.geometry import Geometry
from p2pshare.engine.params import TorrentParams
from p2pshare.engine.resume import load_resume
from p2pshare.errors import ExistingFileError
from p2pshare.io.storage import FileStorage, Storage

__all__ = ["check_existing_files", "files_at_risk", "protect_existing"]


def files_at_risk(
    geometry: Geometry, fingerprint: Sequence[tuple[int, int] | None], have: Bitfield
) -> list[int]:
    """Indexes of files that exist, are not empty, and have no verifying piece."""
    return [
        f
        for f, fp in enumerate(fingerprint)
        if fp is not None and fp[0] > 0 and not any(p in have for p in geometry.pieces_for_file(f))
    ]


def check_existing_files(
    geometry: Geometry,
    paths: Sequence[Path],
    fingerprint: Sequence[tuple[int, int] | None],
    have: Bitfield,
    *,
    resumed: bool,
    overwrite: bool,
) -> None:
    """Raise :class:`ExistingFileError` for the first existing file a download would destroy."""
    if resumed or overwrite:
        return
    risky = files_at_risk(geometry, fingerprint, have)
    if risky:
        more = f" (and {len(risky) - 1} more)" if len(risky) > 1 else ""
        raise ExistingFileError(
            f"{paths[risky[0]]} already exists and is not part of this download{more}; "
            "move it away, choose another folder with -o, or pass --overwrite"
        )


def protect_existing(
    params: TorrentParams, storage: Storage, have: Bitfield, selected: Sequence[bool] | None = None
) -> None:
    """The rule for a torrent's real files (in-memory storage holds nothing of the user's).

    Files left out by ``--select`` and pad files are never written, so they are not checked.
    """
    if not isinstance(storage, FileStorage):
        return
    path = params.resume_path
    resumed = path is not None and load_resume(path, params.info_hash.value, have.length) is not None
    fingerprint = storage.file_sizes_and_mtimes()
    chosen = selected if selected is not None else [True] * len(fingerprint)
    # Pad files (BEP 47) are zeros nobody writes to disk; unselected files are never written.
    fingerprint = [
        fp if keep and not f.pad else None
        for fp, keep, f in zip(fingerprint, chosen, storage.info.files, strict=True)
    ]
    check_existing_files(
        storage.geometry,
        storage.paths,
        fingerprint,
        have,
        resumed=resumed,
        overwrite=params.overwrite,
    )
