"""`p2pshare create` and `p2pshare info`: output, options, and errors as one line with an exit code."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from p2pshare.cli.app import app
from p2pshare.core import bencode, merkle
from p2pshare.core.metainfo import parse_torrent
from p2pshare.errors import ExitCode
from tests.helpers import make_tree, reference_pieces

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_files"


def run(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    assert "Traceback" not in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def run_json(*args: str) -> dict[str, Any]:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


def assert_user_error(result: Any, code: int) -> None:
    """One line on stderr, the expected exit code, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stderr)
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("p2pshare: error: ")
    assert result.stdout == ""


def test_create_json_fields_single_file(tmp_path: Path) -> None:
    """create --json on one file prints every documented field, matching the written .torrent."""
    made = make_tree(tmp_path, {"data.bin": 50_000}, seed=3)
    out = tmp_path / "data.torrent"
    obj = run_json("create", str(made["data.bin"]), "-o", str(out))
    meta = parse_torrent(out.read_bytes())
    assert obj["info_hash"] == meta.info_hash.hex == hashlib.sha1(meta.info.raw).hexdigest()
    assert obj["name"] == "data.bin"
    assert obj["total_size"] == 50_000
    assert obj["piece_length"] == meta.info.piece_length == 16384
    assert obj["num_pieces"] == 4
    assert obj["files"] == [{"path": "data.bin", "length": 50_000}]
    assert obj["magnet"] == f"magnet:?xt=urn:btih:{meta.info_hash.hex}&dn=data.bin"
    assert obj["torrent"] == str(out)
    assert meta.info.pieces == reference_pieces([made["data.bin"]], 16384)
    assert meta.created_by is not None and meta.created_by.startswith("p2pshare/")
    assert meta.creation_date is not None and meta.creation_date > 1_600_000_000


def test_create_folder_lists_files_in_order(tmp_path: Path) -> None:
    """create on a folder lists each file under the torrent name, sorted, with empty files kept."""
    spec = {"b.txt": 10, "a/x.bin": 20_000, "a/empty": 0, "c.bin": 3}
    make_tree(tmp_path / "share", spec)
    out = tmp_path / "share.torrent"
    obj = run_json("create", str(tmp_path / "share"), "-o", str(out))
    assert obj["files"] == [
        {"path": "share/a/empty", "length": 0},
        {"path": "share/a/x.bin", "length": 20_000},
        {"path": "share/b.txt", "length": 10},
        {"path": "share/c.bin", "length": 3},
    ]
    assert obj["total_size"] == sum(spec.values())
    assert parse_torrent(out.read_bytes()).info_hash.hex == obj["info_hash"]


def test_create_default_output_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without -o the .torrent is written as NAME.torrent in the current folder."""
    make_tree(tmp_path / "share", {"f": 5})
    monkeypatch.chdir(tmp_path)
    obj = run_json("create", "share")
    assert obj["torrent"] == "share.torrent"
    assert (tmp_path / "share.torrent").is_file()


def test_create_piece_size_and_comment(tmp_path: Path) -> None:
    """--piece-size sets the piece length and --comment is stored in the .torrent."""
    make_tree(tmp_path / "s", {"f": 300_000})
    out = tmp_path / "s.torrent"
    obj = run_json(
        "create", str(tmp_path / "s"), "-o", str(out), "--piece-size", "64KiB", "--comment", "hé there"
    )
    assert obj["piece_length"] == 65536
    assert obj["num_pieces"] == 5
    meta = parse_torrent(out.read_bytes())
    assert meta.comment == "hé there"
    assert bencode.decode(out.read_bytes())[b"comment"] == "hé there".encode()


def test_create_include_hidden(tmp_path: Path) -> None:
    """--include-hidden adds dot files that are skipped by default."""
    make_tree(tmp_path / "s", {"f": 5, ".h": 7})
    out = tmp_path / "o.torrent"
    assert [f["path"] for f in run_json("create", str(tmp_path / "s"), "-o", str(out))["files"]] == ["s/f"]
    with_hidden = run_json("create", str(tmp_path / "s"), "-o", str(out), "--include-hidden")
    assert [f["path"] for f in with_hidden["files"]] == ["s/.h", "s/f"]


def test_create_text_output(tmp_path: Path) -> None:
    """Without --json create prints the info hash, the magnet link and where it wrote."""
    make_tree(tmp_path / "s", {"f": 5, "g": 6})
    out = tmp_path / "o.torrent"
    result = run("create", str(tmp_path / "s"), "-o", str(out))
    assert result.exit_code == 0
    ih = parse_torrent(out.read_bytes()).info_hash.hex
    assert ih in result.stdout
    assert f"magnet:?xt=urn:btih:{ih}" in result.stdout
    assert str(out) in result.stdout


@pytest.mark.parametrize("size", ["1000", "3KiB", "24KiB", "abc", "-16KiB", "nan", "inf", "0", "1GiB"])
def test_create_bad_piece_size(tmp_path: Path, size: str) -> None:
    """A piece size that is not a power of two in range, or not a size, is a usage error (exit 2)."""
    make_tree(tmp_path / "s", {"f": 5})
    result = run("create", str(tmp_path / "s"), "-o", str(tmp_path / "o.torrent"), "--piece-size", size)
    assert_user_error(result, ExitCode.USAGE)
    assert not (tmp_path / "o.torrent").exists()


def test_create_missing_path(tmp_path: Path) -> None:
    """create on a path that does not exist exits 4 with one line on stderr."""
    result = run("create", str(tmp_path / "missing"))
    assert_user_error(result, ExitCode.NO_SUCH_PATH)
    assert "missing" in result.stderr


def test_create_empty_folder(tmp_path: Path) -> None:
    """create on an empty folder is an error (exit 1) that says there is nothing to share."""
    (tmp_path / "empty").mkdir()
    result = run("create", str(tmp_path / "empty"))
    assert_user_error(result, ExitCode.ERROR)
    assert "no files" in result.stderr


def test_create_unwritable_output(tmp_path: Path) -> None:
    """An output path inside a missing folder exits 9 (not writable)."""
    make_tree(tmp_path / "s", {"f": 5})
    result = run("create", str(tmp_path / "s"), "-o", str(tmp_path / "no" / "such" / "dir" / "o.torrent"))
    assert_user_error(result, ExitCode.NOT_WRITABLE)


def test_info_on_torrent_json(tmp_path: Path) -> None:
    """info --json on a .torrent gives the same summary as create, plus comment and creator."""
    out = tmp_path / "sample.torrent"
    created = run_json("create", str(SAMPLE), "-o", str(out), "--comment", "c")
    shown = run_json("info", str(out))
    for key in ("info_hash", "name", "total_size", "piece_length", "num_pieces", "files", "magnet"):
        assert shown[key] == created[key], key
    assert shown["comment"] == "c"
    assert shown["created_by"].startswith("p2pshare/")
    assert shown["creation_date"]
    assert any(f["length"] == 0 for f in shown["files"])  # sample_files has an empty file


def test_info_on_torrent_text(tmp_path: Path) -> None:
    """info on a .torrent shows the name, the hash, the magnet link and a file table."""
    out = tmp_path / "sample.torrent"
    created = run_json("create", str(SAMPLE), "-o", str(out))
    result = run("info", str(out))
    assert result.exit_code == 0
    assert created["info_hash"] in result.stdout
    assert "docs/notes/todo.txt" in result.stdout
    assert created["magnet"] in result.stdout


def test_info_on_foreign_torrent_with_unsorted_keys(tmp_path: Path) -> None:
    """info reports the hash of the info bytes as written, even when they are not canonical."""
    info_raw = (
        b"d4:name1:x6:lengthi3e12:piece lengthi16384e6:pieces20:" + hashlib.sha1(b"abc").digest() + b"e"
    )
    path = tmp_path / "foreign.torrent"
    path.write_bytes(b"d4:info" + info_raw + b"e")
    assert run_json("info", str(path))["info_hash"] == hashlib.sha1(info_raw).hexdigest()


@pytest.mark.parametrize("form", ["hex", "HEX", "base32", "magnet", "magnet_b32"])
def test_info_on_hash_and_magnet(form: str) -> None:
    """info accepts a bare hex or base32 hash and a magnet link, and reports name and peers."""
    import base64

    raw = hashlib.sha1(b"whatever").digest()
    text = {
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "base32": base64.b32encode(raw).decode(),
        "magnet": f"magnet:?xt=urn:btih:{raw.hex()}&dn=my%20name&x.pe=127.0.0.1:6881",
        "magnet_b32": f"magnet:?xt=urn:btih:{base64.b32encode(raw).decode()}&dn=my%20name",
    }[form]
    obj = run_json("info", text)
    assert obj["info_hash"] == raw.hex()
    assert obj["magnet"].startswith(f"magnet:?xt=urn:btih:{raw.hex()}")
    assert obj["metadata"] is False
    if form.startswith("magnet"):
        assert obj["name"] == "my name"
    if form == "magnet":
        assert obj["peers"] == ["127.0.0.1:6881"]
    text_result = run("info", text)
    assert text_result.exit_code == 0
    assert raw.hex() in text_result.stdout


@pytest.mark.parametrize(
    "target", ["nothex", "0" * 39, "g" * 40, "magnet:?xt=urn:btih:1234", "magnet:?dn=no-hash"]
)
def test_info_bad_hash(target: str) -> None:
    """A target that is not a torrent, magnet or hash exits 3 with one line on stderr."""
    assert_user_error(run("info", target), ExitCode.BAD_TARGET)


def test_info_missing_torrent(tmp_path: Path) -> None:
    """A .torrent path that does not exist exits 4."""
    assert_user_error(run("info", str(tmp_path / "gone.torrent")), ExitCode.NO_SUCH_PATH)


@pytest.mark.parametrize(
    "content",
    [
        b"not bencode at all",
        b"d4:infod4:name1:xee",  # info without the required fields
        b"d4:infod4:name2:..6:lengthi1e12:piece lengthi16384e6:pieces20:" + b"\x00" * 20 + b"ee",
        b"",
    ],
)
def test_info_invalid_torrent(tmp_path: Path, content: bytes) -> None:
    """An invalid or unsafe .torrent exits 1 with one line naming the file."""
    path = tmp_path / "bad.torrent"
    path.write_bytes(content)
    result = run("info", str(path))
    assert_user_error(result, ExitCode.ERROR)
    assert "bad.torrent" in result.stderr


def test_usage_error_exit_code() -> None:
    """An unknown option is a usage error with exit code 2."""
    result = run("info", "--no-such-option")
    assert result.exit_code == ExitCode.USAGE


def test_version() -> None:
    """--version prints the version and exits 0."""
    from p2pshare import __version__

    result = run("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_python_m_help() -> None:
    """`python -m p2pshare --help` runs in a fresh interpreter and lists the commands."""
    proc = subprocess.run(
        [sys.executable, "-m", "p2pshare", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert "create" in proc.stdout and "info" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_create_shows_progress_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, create draws a hashing progress bar on stderr and still writes the same torrent."""
    import io

    from rich.console import Console

    from p2pshare.cli import manifest_cmds

    screen = io.StringIO()
    monkeypatch.setattr(manifest_cmds, "err_console", Console(file=screen, force_terminal=True, width=100))
    make_tree(tmp_path / "s", {"a": 200_000, "b/c": 5})
    out = tmp_path / "o.torrent"
    result = run("create", str(tmp_path / "s"), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "hashing" in screen.getvalue()
    meta = parse_torrent(out.read_bytes())
    assert meta.info.total_length == 200_005
    assert meta.info_hash.hex in result.stdout


V2_SPEC = {"a.txt": 1000, "b/big.bin": 70_000, "b/empty": 0, "c/d/e.bin": 16384, "z": 5}


def _v2_files(made: dict[str, Path]) -> list[tuple[tuple[str, ...], bytes]]:
    order = sorted(made, key=lambda rel: [c.encode() for c in rel.split("/")])
    return [(tuple(rel.split("/")), made[rel].read_bytes()) for rel in order]


@pytest.mark.parametrize("fmt", ["v2", "hybrid"])
def test_create_v2_and_hybrid_json(tmp_path: Path, fmt: str) -> None:
    """create --format v2/hybrid writes what an in-memory build gives, and reports both hashes."""
    from tests.core.v2_helpers import build

    made = make_tree(tmp_path / "share", V2_SPEC, seed=5)
    out = tmp_path / "s.torrent"
    obj = run_json(
        "create", str(tmp_path / "share"), "--format", fmt, "--piece-size", "16KiB", "-o", str(out)
    )
    meta = parse_torrent(out.read_bytes())
    expected, layers = build(_v2_files(made), 16384, hybrid=fmt == "hybrid")
    assert meta.info.raw == expected.raw
    assert dict(meta.piece_layers) == layers
    assert obj["format"] == fmt
    assert obj["info_hash_v2"] == hashlib.sha256(meta.info.raw).hexdigest()
    if fmt == "v2":
        assert obj["info_hash_v1"] is None
        assert obj["info_hash"] == obj["info_hash_v2"][:40]
        assert obj["magnet"] == f"magnet:?xt=urn:btmh:1220{obj['info_hash_v2']}&dn=share"
    else:
        assert obj["info_hash_v1"] == obj["info_hash"] == hashlib.sha1(meta.info.raw).hexdigest()
        assert obj["magnet"].startswith(f"magnet:?xt=urn:btih:{obj['info_hash_v1']}&xt=urn:btmh:1220")
    assert obj["files"] == [
        {
            "path": f"share/{rel}",
            "length": len(data),
            "pieces_root": merkle.MerkleTree.from_data(data).root.hex() if data else None,
        }
        for rel, data in (("/".join(p), d) for p, d in _v2_files(made))
    ]
    assert obj["total_size"] == sum(V2_SPEC.values())
    assert obj["num_pieces"] == 1 + 5 + 1 + 1
    shown = run_json("info", str(out))
    for key in ("info_hash", "info_hash_v1", "info_hash_v2", "format", "files", "magnet", "total_size"):
        assert shown[key] == obj[key], key


def test_create_default_format_is_v1(tmp_path: Path) -> None:
    """Without --format, create makes a v1 manifest (no pad files for v1-only clients to trip on)."""
    make_tree(tmp_path / "share", V2_SPEC, seed=5)
    obj = run_json("create", str(tmp_path / "share"), "-o", str(tmp_path / "s.torrent"))
    assert obj["format"] == "v1"
    assert obj["info_hash_v2"] is None
    assert obj["info_hash_v1"] == obj["info_hash"]


def test_create_single_file_v2(tmp_path: Path) -> None:
    """A single file in v2 is a file tree of one entry named like the torrent, with a piece layer."""
    made = make_tree(tmp_path, {"one.bin": 100_000}, seed=9)
    out = tmp_path / "one.torrent"
    obj = run_json("create", str(made["one.bin"]), "--format", "V2", "-o", str(out))
    meta = parse_torrent(out.read_bytes())
    assert meta.info.single_file
    root = merkle.MerkleTree.from_data(made["one.bin"].read_bytes()).root.hex()
    assert obj["files"] == [{"path": "one.bin", "length": 100_000, "pieces_root": root}]
    assert len(meta.piece_layers) == 1


@pytest.mark.parametrize("fmt", ["v3", "both", ""])
def test_create_bad_format(tmp_path: Path, fmt: str) -> None:
    """An unknown --format exits 2 with one line that lists the formats."""
    make_tree(tmp_path, {"x": 10})
    result = run("create", str(tmp_path / "x"), "--format", fmt, "-o", str(tmp_path / "x.torrent"))
    assert_user_error(result, ExitCode.USAGE)
    assert "v1, v2 or hybrid" in result.stderr


def test_info_text_shows_both_hashes(tmp_path: Path) -> None:
    """info on a hybrid prints the v1 hash, the v2 hash and the two-hash magnet link."""
    make_tree(tmp_path / "share", V2_SPEC, seed=5)
    out = tmp_path / "s.torrent"
    obj = run_json("create", str(tmp_path / "share"), "--format", "hybrid", "-o", str(out))
    text = run("info", str(out)).stdout
    assert obj["info_hash_v1"] in text
    assert obj["info_hash_v2"] in text
    assert "hybrid" in text
    assert ".pad" not in text


def test_info_on_btmh_magnet() -> None:
    """info on a v2 magnet link reports the v2 hash and the truncated swarm id."""
    v2 = hashlib.sha256(b"v2 info").hexdigest()
    obj = run_json("info", f"magnet:?xt=urn:btmh:1220{v2}&dn=n")
    assert obj["info_hash_v2"] == v2
    assert obj["info_hash_v1"] is None
    assert obj["info_hash"] == v2[:40]
    assert obj["magnet"] == f"magnet:?xt=urn:btmh:1220{v2}&dn=n"
    assert v2 in run("info", f"magnet:?xt=urn:btmh:1220{v2}").stdout


def test_hash_files_v2_workers_and_progress(tmp_path: Path) -> None:
    """Hashing v2 pieces gives the same result on 1 or 3 workers and reports every byte once."""
    from p2pshare.io.hasher import hash_files_v2

    made = make_tree(tmp_path, V2_SPEC, seed=7)
    paths = [made[rel] for rel in sorted(made, key=lambda r: [c.encode() for c in r.split("/")])]
    lengths = [p.stat().st_size for p in paths]
    seen: list[int] = []
    one = hash_files_v2(paths, lengths, 16384, v1=True, workers=1)
    three = hash_files_v2(paths, lengths, 16384, v1=True, workers=3, progress=seen.append)
    assert one == three
    assert sum(seen) == sum(lengths)
    assert [len(h) for h in one.piece_hashes] == [-(-n // 16384) for n in lengths]


def test_hash_files_v2_short_file_is_a_storage_error(tmp_path: Path) -> None:
    """A file that shrank since it was listed stops v2 hashing with a StorageError naming it."""
    from p2pshare.errors import StorageError
    from p2pshare.io.hasher import hash_files_v2

    made = make_tree(tmp_path, {"f": 20_000}, seed=1)
    with pytest.raises(StorageError, match="shorter than expected"):
        hash_files_v2([made["f"]], [40_000], 16384, workers=2)
    with pytest.raises(ValueError, match="power of two"):
        hash_files_v2([made["f"]], [20_000], 3 * 16384)
