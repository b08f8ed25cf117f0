"""Numbers, names and handover text for people: one unit family, one clock, nothing cut mid-number."""

from __future__ import annotations

import shlex

from hypothesis import given
from hypothesis import strategies as st

from p2pshare.cli.handover import others_run, qr_text, shell_quote
from p2pshare.cli.live import RateMeter, fit_parts
from p2pshare.units import MIB, human_elapsed, human_rate, human_size, human_time, middle_ellipsis

MAGNET = "magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=my photos&x.pe=192.168.1.5:6881"


def test_sizes_are_binary_with_a_unit_never_a_bare_count() -> None:
    """Sizes read B, KiB, MiB, GiB, TiB with one decimal above bytes."""
    assert human_size(0) == "0 B"
    assert human_size(1023) == "1023 B"
    assert human_size(1024) == "1.0 KiB"
    assert human_size(209715200) == "200.0 MiB"
    assert human_size(3 * 1024**3) == "3.0 GiB"
    assert human_size(5 * 1024**5) == "5120.0 TiB"


def test_rates_are_always_mib_per_second() -> None:
    """Every rate is in MiB/s, so a live column never changes unit."""
    assert human_rate(0) == "0.00 MiB/s"
    assert human_rate(512 * 1024) == "0.50 MiB/s"
    assert human_rate(132.9 * MIB) == "132.9 MiB/s"
    assert human_rate(2 * 1024 * MIB) == "2048.0 MiB/s"
    assert human_rate(-5) == "0.00 MiB/s"


@given(st.floats(min_value=0, max_value=10**7, allow_nan=False))
def test_every_duration_is_a_clock(seconds: float) -> None:
    """Any duration prints as m:ss or h:mm:ss, never ms or s."""
    text = human_time(seconds)
    parts = text.split(":")
    assert 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts), text
    assert all(len(p) == 2 for p in parts[1:]), text


def test_a_finished_duration_keeps_its_tenths_below_a_minute() -> None:
    """A summary's duration matches size / rate: 0.4 s, not a rounded-up 0:01."""
    assert human_elapsed(0.42) == "0.4 s"
    assert human_elapsed(59.94) == "59.9 s"
    assert human_elapsed(61) == "1:01"


@given(st.text(min_size=0, max_size=200), st.integers(min_value=1, max_value=120))
def test_middle_ellipsis_keeps_start_and_end_within_the_width(text: str, width: int) -> None:
    """A cut name is exactly ``width`` long and keeps its first and last characters."""
    out = middle_ellipsis(text, width)
    if len(text) <= width:
        assert out == text
    else:
        cut = width // 2  # where the ellipsis sits
        head, mark, tail = out[:cut], out[cut], out[cut + 1 :]
        assert len(out) == width and mark == "…"
        assert text.startswith(head) and text.endswith(tail)
        if width >= 3:
            assert head and tail


@given(
    st.lists(st.text(alphabet="0123456789. MiB/s", min_size=1, max_size=20), max_size=8), st.integers(1, 100)
)
def test_fit_parts_drops_whole_parts_never_cuts_one(parts: list[str], width: int) -> None:
    """The joined line fits the width and is made of a prefix of the parts, each whole."""
    line = fit_parts(parts, width)
    assert len(line) <= width
    assert line in ["  ".join(parts[:k]) for k in range(len(parts) + 1)]


def test_rate_meter_shows_a_rate_from_the_second_sample() -> None:
    """Two samples a quarter second apart give the rate at once; old samples leave the window."""
    meter = RateMeter(window=3.0)
    meter.add(0, now=0.0)
    assert meter.rate() == 0.0
    meter.add(25 * MIB, now=0.25)
    assert meter.rate() == 100 * MIB
    for i in range(2, 40):
        meter.add(25 * MIB + (i - 1) * 10 * MIB // 4, now=i * 0.25)
    assert abs(meter.rate() - 10 * MIB) < 1


def test_shell_quote_survives_the_shell() -> None:
    """The quoted magnet is one word to a POSIX shell, ampersands and quotes included."""
    for text in (MAGNET, "it's & more", ""):
        quoted = shell_quote(text)
        assert quoted.startswith("'") and shlex.split(quoted) == [text]


def test_others_run_is_a_complete_command_with_the_bootstrap_nodes() -> None:
    """The handed-over command parses back to get, the magnet, and every --bootstrap given."""
    command = others_run(MAGNET, [("192.168.1.2", 6881), ("fe80::1", 7000)])
    assert shlex.split(command) == [
        "p2pshare",
        "get",
        MAGNET,
        "--bootstrap",
        "192.168.1.2:6881",
        "--bootstrap",
        "[fe80::1]:7000",
    ]
    assert shlex.split(others_run(MAGNET, None)) == ["p2pshare", "get", MAGNET]


def test_qr_code_is_a_square_of_block_characters_that_depends_on_the_data() -> None:
    """--qr draws rows of equal width in block characters; other data, other code."""
    rows = qr_text(MAGNET).rstrip("\n").split("\n")
    assert len(rows) > 10 and len({len(r) for r in rows}) == 1
    assert set("".join(rows)) <= set("█▀▄ ")
    assert qr_text(MAGNET) != qr_text(MAGNET.replace("ab", "cd"))
