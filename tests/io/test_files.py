"""Walking the share: hidden files, symlinks (never out of the folder), order, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from p2pshare.errors import MetainfoError, PathNotFoundError
from p2pshare.io.files import atomic_write, atomic_write_async, collect_files
from tests.helpers import make_tree


def parts(sel: object) -> list[str]:
    return ["/".join(f.parts) for f in sel.files]  # type: ignore[attr-defined]


def test_single_file(tmp_path: Path) -> None:
    """A file path gives a single-file selection named after the file."""
    made = make_tree(tmp_path, {"movie.bin": 1234})
    sel = collect_files(made["movie.bin"])
    assert sel.single_file
    assert sel.name == "movie.bin"
    assert [(f.parts, f.length) for f in sel.files] == [(("movie.bin",), 1234)]
    assert sel.total_length == 1234


def test_folder_order_is_sorted_by_path(tmp_path: Path) -> None:
    """Files come sorted by path components, bytewise, descending into folders in place."""
    spec = {"b.txt": 1, "a/z.txt": 2, "a/b/c.txt": 3, "A.txt": 4, "a.txt": 5, "é.txt": 6, "a-b/x": 7}
    make_tree(tmp_path / "share", spec)
    sel = collect_files(tmp_path / "share")
    assert not sel.single_file
    assert sel.name == "share"
    expected = sorted(spec, key=lambda p: [c.encode() for c in p.split("/")])
    assert parts(sel) == expected
    assert {"/".join(f.parts): f.length for f in sel.files} == spec


def test_order_is_deterministic(tmp_path: Path) -> None:
    """Two walks of trees created in different orders give the same list."""
    spec = {f"d{i % 3}/f{i}": i + 1 for i in range(12)}
    make_tree(tmp_path / "one", spec)
    make_tree(tmp_path / "two", dict(reversed(list(spec.items()))))
    assert parts(collect_files(tmp_path / "one")) == parts(collect_files(tmp_path / "two"))


def test_hidden_files_skipped_by_default(tmp_path: Path) -> None:
    """Names starting with a dot, files or folders, are skipped unless asked for."""
    make_tree(tmp_path / "s", {"seen.txt": 3, ".hidden": 4, ".git/config": 5, "d/.x": 6})
    sel = collect_files(tmp_path / "s")
    assert parts(sel) == ["seen.txt"]
    assert sel.skipped_hidden == 3
    sel = collect_files(tmp_path / "s", include_hidden=True)
    assert parts(sel) == [".git/config", ".hidden", "d/.x", "seen.txt"]


def test_symlinks_skipped_by_default(tmp_path: Path) -> None:
    """A symlink to a file inside the share is skipped by default and included when asked."""
    made = make_tree(tmp_path / "s", {"real.txt": 10})
    (tmp_path / "s" / "link.txt").symlink_to(made["real.txt"])
    sel = collect_files(tmp_path / "s")
    assert parts(sel) == ["real.txt"]
    assert sel.skipped_symlinks == 1
    sel = collect_files(tmp_path / "s", include_symlinks=True)
    assert parts(sel) == ["link.txt", "real.txt"]


def test_symlinked_folder_inside_share_followed_when_asked(tmp_path: Path) -> None:
    """A symlink to a folder inside the share is walked only with include_symlinks."""
    make_tree(tmp_path / "s", {"inner/a.bin": 5})
    (tmp_path / "s" / "alias").symlink_to(tmp_path / "s" / "inner", target_is_directory=True)
    assert parts(collect_files(tmp_path / "s")) == ["inner/a.bin"]
    assert parts(collect_files(tmp_path / "s", include_symlinks=True)) == ["alias/a.bin", "inner/a.bin"]


def test_symlink_out_of_share_never_followed(tmp_path: Path) -> None:
    """Links to /etc/passwd, to a file or a folder outside, or dangling, are skipped even when included."""
    make_tree(tmp_path / "outside", {"secret.txt": 99, "dir/secret2.txt": 98})
    make_tree(tmp_path / "s", {"ok.txt": 1})
    s = tmp_path / "s"
    (s / "passwd").symlink_to("/etc/passwd")
    (s / "secret").symlink_to(tmp_path / "outside" / "secret.txt")
    (s / "dir").symlink_to(tmp_path / "outside" / "dir", target_is_directory=True)
    (s / "rel").symlink_to(Path("..") / "outside" / "secret.txt")
    (s / "dangling").symlink_to(s / "nope")
    for include in (False, True):
        sel = collect_files(s, include_symlinks=include, include_hidden=include)
        assert parts(sel) == ["ok.txt"]
        assert sel.skipped_symlinks == 5
        assert all("outside" not in str(f.path.resolve()) for f in sel.files)


def test_symlink_loop_terminates(tmp_path: Path) -> None:
    """A symlink pointing at its own ancestor does not loop forever."""
    make_tree(tmp_path / "s", {"d/a.txt": 1})
    (tmp_path / "s" / "d" / "loop").symlink_to(tmp_path / "s", target_is_directory=True)
    sel = collect_files(tmp_path / "s", include_symlinks=True)
    assert "d/a.txt" in parts(sel)
    assert len(parts(sel)) < 10


def test_empty_files_kept(tmp_path: Path) -> None:
    """Empty files are part of the share."""
    make_tree(tmp_path / "s", {"a": 0, "b": 5, "c/d": 0})
    assert [
        (p, f.length)
        for p, f in zip(
            parts(collect_files(tmp_path / "s")), collect_files(tmp_path / "s").files, strict=True
        )
    ] == [("a", 0), ("b", 5), ("c/d", 0)]


@pytest.mark.parametrize("spec", [{}, {"a": 0}, {"x/a": 0, "y": 0}, {".hidden": 10}])
def test_empty_share_is_an_error(tmp_path: Path, spec: dict[str, int]) -> None:
    """A folder with nothing (or only empty or hidden files) to share is a MetainfoError."""
    (tmp_path / "s").mkdir()
    make_tree(tmp_path / "s", spec)
    with pytest.raises(MetainfoError):
        collect_files(tmp_path / "s")


def test_empty_single_file_is_an_error(tmp_path: Path) -> None:
    """Sharing one empty file is a MetainfoError."""
    made = make_tree(tmp_path, {"empty": 0})
    with pytest.raises(MetainfoError):
        collect_files(made["empty"])


def test_missing_path(tmp_path: Path) -> None:
    """A path that does not exist is a PathNotFoundError (exit code 4)."""
    with pytest.raises(PathNotFoundError) as info:
        collect_files(tmp_path / "nope")
    assert info.value.exit_code == 4


def test_special_files_skipped(tmp_path: Path) -> None:
    """A FIFO inside the share is not a regular file and is left out."""
    make_tree(tmp_path / "s", {"a.txt": 1})
    os.mkfifo(tmp_path / "s" / "pipe")
    assert parts(collect_files(tmp_path / "s")) == ["a.txt"]


def test_dot_path_takes_folder_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sharing '.' names the torrent after the current folder."""
    make_tree(tmp_path / "named", {"a.txt": 1})
    monkeypatch.chdir(tmp_path / "named")
    assert collect_files(Path(".")).name == "named"


@pytest.mark.parametrize("how", ["blocking", "aiofiles"])
async def test_atomic_writes_replace_the_file_whole_and_leave_no_temp_file(tmp_path: Path, how: str) -> None:
    """Both atomic writers create missing folders, replace the old content and leave no temp file behind."""
    target = tmp_path / "state" / "deeper" / "resume.bin"
    for payload in (b"old" * 1000, b"new"):
        if how == "blocking":
            atomic_write(target, payload)
        else:
            await atomic_write_async(target, payload)
        assert target.read_bytes() == payload
    assert sorted(p.name for p in target.parent.iterdir()) == ["resume.bin"]
