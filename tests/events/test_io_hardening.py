"""Regression tests of the event readers on damaged files (issue 7, "Third-party decoders,
fenced"): every reader ends in events or in an :class:`EventFileError` naming the file."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from spikeloom.events.core import make_events
from spikeloom.events.io import (
    EventFileError,
    read_aedat2,
    read_aedat31,
    read_gesture_labels,
    write_aedat2,
    write_aedat31,
)


def _events(n: int, size: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 10**6, n))
    return make_events(
        rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n), t, size
    )


# ------------------------------------------------------------------------------------------
# AEDAT 2 / AEDAT 3.1 / gesture labels
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [True, False])
def test_aedat2_cut_inside_header_is_an_error(tmp_path: Path, strict: bool) -> None:
    f = tmp_path / "a.aedat"
    write_aedat2(f, _events(10, (128, 128, 2)))
    raw = f.read_bytes()
    cut = tmp_path / "cut.aedat"
    for n in (8, 16, 13, 24, 40, 64):  # inside the first line, then inside later lines
        cut.write_bytes(raw[:n])
        with pytest.raises(EventFileError, match="header") as info:
            read_aedat2(cut, camera="dvs128", strict=strict)
        assert "cut.aedat" in str(info.value) and info.value.offset is not None


def test_aedat2_requires_the_aer_dat_header(tmp_path: Path) -> None:
    f = tmp_path / "noheader.dat"
    f.write_bytes(struct.pack(">II", 0x0102, 5) * 3)
    with pytest.raises(EventFileError, match="#!AER-DAT") as info:
        read_aedat2(f, camera="dvs128")
    assert info.value.offset == 0


def test_aedat31_negative_ts_overflow_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "g.aedat"
    write_aedat31(f, _events(50, (128, 128, 2)), packet_events=20)
    raw = bytearray(f.read_bytes())
    first = raw.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    second = first + 28 + 8 * 20
    struct.pack_into("<i", raw, second + 12, -1)  # eventTSOverflow of the 2nd packet
    f.write_bytes(bytes(raw))
    with pytest.raises(EventFileError, match="eventTSOverflow") as info:
        read_aedat31(f)
    assert info.value.offset == second
    with pytest.warns(UserWarning):
        part = read_aedat31(f, strict=False)
    assert part.size == 20 and (part["t"] >= 0).all()


def test_gesture_labels_bad_encoding_and_overflow(tmp_path: Path) -> None:
    f = tmp_path / "l.csv"
    f.write_bytes(b"class,startTime_usec,endTime_usec\n1,\xff\xfe,7\n")
    with pytest.raises(EventFileError, match="UTF-8") as info:
        read_gesture_labels(f)
    assert "l.csv" in str(info.value)
    f.write_text("class,startTime_usec,endTime_usec\n1,5," + "9" * 30 + "\n")
    with pytest.raises(EventFileError, match="line 2"):
        read_gesture_labels(f)
    f.write_text("class,startTime_usec,endTime_usec\n1," + "-" + "9" * 30 + ",5\n")
    with pytest.raises(EventFileError, match="line 2"):
        read_gesture_labels(f)
