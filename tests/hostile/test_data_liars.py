"""A ``get`` downloading from an honest seeder and one hostile raw peer at once.

Each test asserts the three things of issue 12: the honest transfer completes byte for
byte, the hostile peer (127.0.0.9) and only it is banned or dropped, and the getter's
memory stays under a stated bound.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.procs import processes
from tests.hostile.checks import assert_only_blamed
from tests.hostile.harness import (
    LIAR_HOST,
    MiB,
    RssSampler,
    downloaded_file,
    events_named,
    serving,
    start_getter,
    start_seeder,
)
from tests.hostile.peers import (
    Handler,
    data_server,
    length_bomb,
    mixing_liar,
    silent_have_all,
    wrong_bitfield,
)

#: A getter of a few MiB at rest is ~50-60 MiB of Python; a 2^31 buffer or a queue per block
#: would blow far past this.
GETTER_RSS_BOUND_MIB = 150.0


def _download_beside(
    tmp_path: Path, make: object, *, size: int, piece_size: str, ban: bool, mixed: bool = False
) -> None:
    with processes() as procs:
        shared = start_seeder(procs, tmp_path, size=size, piece_size=piece_size)
        handler: Handler = make(shared)  # type: ignore[operator]
        with serving(LIAR_HOST, handler) as liar:
            getter = start_getter(
                procs, tmp_path, str(shared.torrent), [liar.address, shared.address], timeout=40
            )
            with RssSampler(getter.pid) as mem:
                rc = getter.wait(90)
        assert rc == 0, getter.describe()
        assert downloaded_file(tmp_path, shared) == shared.data
        assert liar.connections >= 1
        assert_only_blamed(getter, LIAR_HOST, [shared.host], ban=ban)
        assert mem.peak < GETTER_RSS_BOUND_MIB, mem.peak
        if mixed:  # the liar hid in pieces the seeder shared: blame had to be worked out per block
            failed = events_named(getter, "piece_failed")
            assert any(len(e["peers"]) > 1 for e in failed), failed


def test_a_liar_mixing_corrupt_blocks_into_shared_pieces_is_the_only_one_banned(tmp_path: Path) -> None:
    """A peer that corrupts one block in each piece an honest seeder shares with it is banned alone."""
    _download_beside(tmp_path, mixing_liar, size=8 * MiB, piece_size="256KiB", ban=True, mixed=True)


def test_a_peer_that_sends_have_all_and_then_nothing_does_not_stall_the_download(tmp_path: Path) -> None:
    """A peer that claims every piece, unchokes and then stays silent costs the download nothing."""
    with processes() as procs:
        shared = start_seeder(procs, tmp_path, size=2 * MiB)
        with serving(LIAR_HOST, silent_have_all(shared)) as liar:
            getter = start_getter(procs, tmp_path, str(shared.torrent), [liar.address, shared.address])
            with RssSampler(getter.pid) as mem:
                rc = getter.wait(90)
        assert rc == 0, getter.describe()
        assert downloaded_file(tmp_path, shared) == shared.data
        assert liar.connections >= 1
        assert_only_blamed(getter, None, [shared.host, LIAR_HOST], ban=False)
        assert mem.peak < GETTER_RSS_BOUND_MIB, mem.peak


def test_a_peer_sending_one_block_per_ten_seconds_does_not_hold_the_download(tmp_path: Path) -> None:
    """The blocks a 1-block-per-10-s peer sits on are fetched from the honest seeder instead."""
    with processes() as procs:
        shared = start_seeder(procs, tmp_path, size=2 * MiB)
        with serving(LIAR_HOST, data_server(shared, block_delay=10.0)) as liar:
            getter = start_getter(procs, tmp_path, str(shared.torrent), [liar.address, shared.address])
            with RssSampler(getter.pid) as mem:
                rc = getter.wait(90)
        assert rc == 0, getter.describe()
        assert downloaded_file(tmp_path, shared) == shared.data
        assert liar.connections >= 1
        assert_only_blamed(getter, None, [shared.host, LIAR_HOST], ban=False)
        assert mem.peak < GETTER_RSS_BOUND_MIB, mem.peak


def test_a_two_gib_length_prefix_drops_only_that_peer(tmp_path: Path) -> None:
    """A message announced as 2^31 bytes long drops its sender before any buffer grows."""
    _download_beside(tmp_path, length_bomb, size=2 * MiB, piece_size="64KiB", ban=False)


def test_a_bitfield_of_the_wrong_length_drops_only_that_peer(tmp_path: Path) -> None:
    """A bitfield longer than the piece count allows drops its sender, and the download goes on."""
    _download_beside(tmp_path, wrong_bitfield, size=2 * MiB, piece_size="64KiB", ban=False)
