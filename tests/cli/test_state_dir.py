"""The state directory: where it is, the manifest cache of shared folders, resume paths, the DHT lock."""

from __future__ import annotations

import os
from pathlib import Path

from p2pshare.engine.state import StateDir, default_state_dir


def test_state_dir_location_follows_env_then_xdg_then_home(tmp_path: Path) -> None:
    """$P2PSHARE_STATE_DIR wins over $XDG_STATE_HOME/p2pshare, which wins over ~/.local/state/p2pshare."""
    both = {"P2PSHARE_STATE_DIR": str(tmp_path / "a"), "XDG_STATE_HOME": str(tmp_path / "x")}
    assert default_state_dir(both) == tmp_path / "a"
    assert default_state_dir({"XDG_STATE_HOME": str(tmp_path / "x")}) == tmp_path / "x" / "p2pshare"
    assert default_state_dir({}) == Path.home() / ".local" / "state" / "p2pshare"


def test_unchanged_folder_reuses_its_manifest(tmp_path: Path) -> None:
    """A second share of an unchanged folder reuses the manifest instead of hashing again."""
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(os.urandom(70_000))
    (folder / "sub" / "b.bin").write_bytes(os.urandom(1000))
    state = StateDir(tmp_path / "state")
    hashed: list[int] = []
    first = state.manifest_for(folder, progress=hashed.append)
    assert not first.reused and sum(hashed) == 71_000
    assert first.torrent_path is not None and first.torrent_path.read_bytes() == first.created.torrent
    hashed.clear()
    second = state.manifest_for(folder, progress=hashed.append)
    assert second.reused and hashed == []
    assert second.created.info.info_hash == first.created.info.info_hash
    assert second.created.paths == first.created.paths


def test_changed_size_mtime_or_flags_make_a_new_manifest(tmp_path: Path) -> None:
    """A file with a new mtime, a new file, or other flags/piece size invalidate the cached manifest."""
    folder = tmp_path / "f"
    folder.mkdir()
    target = folder / "a.bin"
    target.write_bytes(b"x" * 40_000)
    state = StateDir(tmp_path / "state")
    state.manifest_for(folder)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert not state.manifest_for(folder).reused
    assert state.manifest_for(folder).reused
    (folder / ".hidden").write_bytes(b"h")
    assert state.manifest_for(folder).reused  # hidden files are not part of the share
    assert not state.manifest_for(folder, include_hidden=True).reused
    assert not state.manifest_for(folder, piece_length=32768).reused
    (folder / "new.bin").write_bytes(b"n")
    assert not state.manifest_for(folder).reused


def test_unwritable_state_dir_costs_only_the_cache(tmp_path: Path) -> None:
    """When the state folder cannot be written, sharing still gets its manifest (no .torrent saved)."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a").write_bytes(b"a" * 100)
    shared = StateDir(blocker / "state").manifest_for(folder)
    assert shared.torrent_path is None and not shared.reused


def test_resume_paths_are_per_hash_and_folder(tmp_path: Path) -> None:
    """Resume files are kept per info hash and download folder."""
    state = StateDir(tmp_path)
    a = state.resume_path("ab" * 20, tmp_path / "x")
    assert a == state.resume_path("ab" * 20, tmp_path / "x")
    assert a != state.resume_path("ab" * 20, tmp_path / "y")
    assert a.name.startswith("ab" * 20) and a.parent == tmp_path / "resume"


def test_only_one_process_claims_the_saved_dht_identity(tmp_path: Path) -> None:
    """The DHT node id in the state dir is used by one holder at a time; a second gets None."""
    first, second = StateDir(tmp_path), StateDir(tmp_path)
    assert first.claim_dht_state() == tmp_path
    assert second.claim_dht_state() is None
    first.release()
    assert second.claim_dht_state() == tmp_path
    second.release()
