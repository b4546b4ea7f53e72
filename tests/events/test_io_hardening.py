"""Regression tests of the event readers on damaged files (issue 7, "Third-party decoders,
fenced"): every reader ends in events or in an :class:`EventFileError` naming the file."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from spikeloom.events.core import make_events
from spikeloom.events.io import (
    EventFileError,
    load_events,
    read_aedat2,
    read_aedat31,
    read_es_imagenet_npz,
    read_gesture_labels,
    save_events,
    write_aedat2,
    write_aedat31,
    write_es_imagenet_npz,
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


# ------------------------------------------------------------------------------------------
# .npz: load_events and ES-ImageNet
# ------------------------------------------------------------------------------------------


def _npy(arr: np.ndarray, patch: tuple[bytes, bytes] | None = None) -> bytes:
    b = io.BytesIO()
    np.save(b, arr)
    data = b.getvalue()
    if patch is not None:
        assert patch[0] in data[:128]
        data = data.replace(patch[0], patch[1], 1)
    return data


def _own_members() -> dict[str, np.ndarray]:
    ev = _events(5, (34, 34, 2))
    cols = {k: np.ascontiguousarray(ev[k]) for k in ("x", "y", "p", "t")}
    return {
        **cols,
        "sensor_size": np.array([34, 34, 2]),
        "format": np.str_("spikeloom-events"),
        "version": np.int64(1),
    }


def _write_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:  # valid CRCs: the damage is inside the members
        for name, data in members.items():
            z.writestr(name + ".npy", data)


@pytest.mark.parametrize(
    "patch, match",
    [
        ((b"'<u2'", b"'|O' "), "damaged"),  # object dtype: not 'allow_pickle' advice
        ((b"(5,)", b"(5,("), "damaged"),  # tokenize.TokenError inside numpy
        ((b"(5,), }", b"(9**9,)}"), "damaged"),  # not a literal
        ((b"'<u2'", b"'<U9'"), "damaged"),  # header/payload size mismatch
        ((b"(5,)", b"(9999999999999,)"[:4]), "damaged"),
    ],
)
def test_load_events_damaged_npy_header(tmp_path: Path, patch: tuple, match: str) -> None:
    members = {k: _npy(v) for k, v in _own_members().items()}
    members["x"] = _npy(_own_members()["x"], patch)
    f = tmp_path / "own.npz"
    _write_zip(f, members)
    with pytest.raises(EventFileError, match=match) as info:
        load_events(f)
    assert "own.npz" in str(info.value) and "pickle" not in str(info.value)


def test_load_events_huge_npy_shape_is_refused_before_reading(tmp_path: Path) -> None:
    members = {k: _npy(v) for k, v in _own_members().items()}
    members["t"] = _npy(_own_members()["t"], (b"(5,)", b"(9999999999,)"))
    f = tmp_path / "own.npz"
    _write_zip(f, members)
    with pytest.raises(EventFileError, match="x.npy|t.npy"):
        load_events(f)


def _corrupt_deflate(path: Path, member: str) -> None:
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    assert info.compress_type == zipfile.ZIP_DEFLATED
    name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    raw[start : start + 8] = b"\xff" * 8  # invalid deflate block type -> zlib.error
    path.write_bytes(bytes(raw))


def test_load_events_corrupt_deflate_stream(tmp_path: Path) -> None:
    f = tmp_path / "c.npz"
    save_events(f, _events(300, (34, 34, 2)), compress=True)
    _corrupt_deflate(f, "t.npy")
    with pytest.raises(EventFileError, match="c.npz"):
        load_events(f)


def test_load_events_unsupported_compression_and_bad_sensor_size(tmp_path: Path) -> None:
    f = tmp_path / "u.npz"
    save_events(f, _events(30, (34, 34, 2)))
    raw = bytearray(f.read_bytes())
    struct.pack_into("<H", raw, raw.index(b"PK\x01\x02") + 10, 99)  # compression method 99
    f.write_bytes(bytes(raw))
    with pytest.raises(EventFileError):
        load_events(f)
    members = {k: _npy(v) for k, v in _own_members().items()}
    members["sensor_size"] = _npy(np.array([np.inf, 34.0, 2.0]))
    _write_zip(f, members)
    with pytest.raises(EventFileError, match="sensor"):
        load_events(f)


def test_es_imagenet_damaged_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pos = np.c_[rng.integers(0, 256, (400, 2)), rng.integers(1, 9, 400)]
    neg = np.c_[rng.integers(0, 256, (300, 2)), rng.integers(1, 9, 300)]
    f = tmp_path / "es.npz"
    write_es_imagenet_npz(f, pos, neg)
    _corrupt_deflate(f, "neg.npy")
    with pytest.raises(EventFileError, match="es.npz"):
        read_es_imagenet_npz(f)
    _write_zip(f, {"pos": _npy(pos.astype(np.uint8), (b"'|u1'", b"'|O' ")), "neg": _npy(neg)})
    with pytest.raises(EventFileError, match="damaged") as info:
        read_es_imagenet_npz(f)
    assert "pickle" not in str(info.value)
