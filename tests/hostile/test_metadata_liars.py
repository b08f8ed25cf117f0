"""A ``get`` by info hash alone, whose manifest (BEP 9 metadata) a hostile peer tries to hijack.

The liar (127.0.0.9) is dialled first and answers at once; the honest seeder sits behind a
proxy (127.0.0.4) that waits half a second, so the liar's claims are always heard first.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from p2pshare.errors import ExitCode
from tests.e2e.procs import processes
from tests.hostile.checks import assert_only_blamed
from tests.hostile.harness import (
    LIAR_HOST,
    PROXY_HOST,
    MiB,
    RssSampler,
    delayed_proxy,
    downloaded_file,
    events_named,
    serving,
    start_getter,
    start_seeder,
    unsafe_info,
)
from tests.hostile.peers import metadata_liar

GETTER_RSS_BOUND_MIB = 150.0  #: an 8 MiB claim must not become an 8 MiB buffer per peer, or any


def _get_by_hash_beside(tmp_path: Path, claimed: int, served: bytes | None) -> None:
    with processes() as procs:
        shared = start_seeder(procs, tmp_path, size=1 * MiB)
        info_hash = shared.info.info_hash.value
        seeder = (shared.host, shared.port)
        with (
            serving(LIAR_HOST, metadata_liar(info_hash, claimed, served)) as liar,
            delayed_proxy(PROXY_HOST, seeder, 0.5) as honest,
        ):
            getter = start_getter(procs, tmp_path, info_hash.hex(), [liar.address, honest], timeout=30)
            with RssSampler(getter.pid) as mem:
                rc = getter.wait(60)
        assert rc == 0, getter.describe()
        assert downloaded_file(tmp_path, shared) == shared.data
        assert liar.connections >= 1
        assert_only_blamed(getter, LIAR_HOST, [PROXY_HOST], ban=False)
        assert mem.peak < GETTER_RSS_BOUND_MIB, mem.peak


def test_a_peer_claiming_an_8_mib_manifest_it_never_sends_cannot_stop_a_magnet(tmp_path: Path) -> None:
    """A metadata_size claim of 8 MiB from a peer that never sends does not cut off the honest peers."""
    _get_by_hash_beside(tmp_path, 8 * MiB, None)


def test_a_peer_serving_a_manifest_of_another_size_that_fails_the_hash_is_the_only_one_dropped(
    tmp_path: Path,
) -> None:
    """Metadata of a wrong size that fails the hash gets its sender dropped, then the true size wins."""
    _get_by_hash_beside(tmp_path, 20_000, os.urandom(20_000))


def test_an_unsafe_manifest_that_matches_the_hash_stops_get_at_once(tmp_path: Path) -> None:
    """When the hash names a manifest with a traversal path, `get` stops at once with its own exit code."""
    raw = unsafe_info()
    info_hash = hashlib.sha1(raw).digest()
    with processes() as procs, serving(LIAR_HOST, metadata_liar(info_hash, len(raw), raw)) as liar:
        began = time.monotonic()
        getter = start_getter(procs, tmp_path, info_hash.hex(), [liar.address], timeout=30)
        with RssSampler(getter.pid) as mem:
            rc = getter.wait(90)
        took = time.monotonic() - began
    assert rc == ExitCode.UNSAFE_MANIFEST, getter.describe()
    assert took < 15, took  # the timeout was 30 s: it stopped on the manifest, not on the clock
    errors = events_named(getter, "error")
    assert errors and errors[-1]["code"] == ExitCode.UNSAFE_MANIFEST
    assert "unsafe" in errors[-1]["message"] and ".." in errors[-1]["message"]
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path.parent / "escaped.txt").exists()
    assert mem.peak < GETTER_RSS_BOUND_MIB, mem.peak
