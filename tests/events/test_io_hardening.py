"""Regression tests of the event readers on damaged files (issue 7, "Third-party decoders,
fenced"): every reader ends in events or in an :class:`EventFileError` naming the file."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from spikeloom.events.core import make_events
from spikeloom.events.io import (
    EventFileError,
    load_events,
    read_aedat2,
    read_aedat4,
    read_aedat31,
    read_es_imagenet_npz,
    read_gesture_labels,
    read_shd,
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


# ------------------------------------------------------------------------------------------
# HDF5: SHD and load_events(.h5)
# ------------------------------------------------------------------------------------------

h5py = pytest.importorskip("h5py")


def _write_shd(path: Path, times: list, units: list, labels: list) -> None:
    with h5py.File(path, "w") as f:
        ft = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
        fu = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (tt, uu) in enumerate(zip(times, units)):
            ft[i] = np.asarray(tt, dtype=np.float32)
            fu[i] = np.asarray(uu, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))


def _isolated(code: str, timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter (a hang or abort there must not take the suite)."""
    try:
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"timed out after {timeout} s (hang): {code}")
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def _zero_first_heap_object_after(path: Path, skip: int) -> int:
    """Zero the header of a global heap object (index 0, size 0: the HDF5 library loops)."""
    raw = bytearray(path.read_bytes())
    gcol = raw.index(b"GCOL")
    p = gcol + 16
    for _ in range(skip):
        size = int.from_bytes(raw[p + 8 : p + 16], "little")
        p += 16 + ((size + 7) & ~7)
    raw[p : p + 16] = bytes(16)
    path.write_bytes(bytes(raw))
    return p



def _read_shd_isolated(f: Path) -> str:
    """Read every sample of an SHD file in a child process; ``EFE <offset> <message>`` on an
    EventFileError (a hang or crash fails the child, not pytest)."""
    return _isolated(
        "from spikeloom.events.io import read_shd, EventFileError\n"
        "try:\n"
        f"    shd = read_shd({str(f)!r}); [shd[i] for i in range(len(shd))]\n"
        "except EventFileError as e:\n"
        "    print('EFE', e.offset, e)\n"
    )

def test_shd_damaged_global_heap_is_an_error_not_a_hang(tmp_path: Path) -> None:
    f = tmp_path / "shd.h5"
    _write_shd(f, [[0.1, 0.2], [0.3]], [[1, 2], [3]], [0, 1])
    offset = _zero_first_heap_object_after(f, 1)
    out = _read_shd_isolated(f)
    assert out.startswith(f"EFE {offset} ") and "shd.h5" in out


def test_load_events_h5_damaged_global_heap_is_an_error_not_a_hang(tmp_path: Path) -> None:
    f = tmp_path / "own.h5"
    save_events(f, _events(20, (34, 34, 2)))
    offset = _zero_first_heap_object_after(f, 1)  # after the 'format' string
    out = _isolated(
        "from spikeloom.events.io import load_events, EventFileError\n"
        "try:\n"
        f"    load_events({str(f)!r})\n"
        "except EventFileError as e:\n"
        "    print('EFE', e.offset, e)\n"
    )
    assert out.startswith(f"EFE {offset} ") and "global heap" in out


def test_shd_structure_is_checked(tmp_path: Path) -> None:
    f = tmp_path / "s.h5"
    with h5py.File(f, "w") as h:  # labels is a group, times a plain 2-D float array
        h.create_dataset("spikes/times", data=np.zeros((2, 3)))
        h.create_dataset("spikes/units", data=np.zeros((2, 3), np.uint16))
        h.create_group("labels/a")
        h.create_group("labels/b")
    with pytest.raises(EventFileError, match="s.h5"):
        read_shd(f)
    with h5py.File(f, "w") as h:
        h["spikes"] = np.zeros(3)  # 'spikes' is a dataset: 'spikes/times' raises in h5py
        h["labels"] = np.zeros(3, np.uint8)
    with pytest.raises(EventFileError, match="s.h5"):
        read_shd(f)


def test_shd_huge_spike_times_are_rejected(tmp_path: Path) -> None:
    f = tmp_path / "big.h5"
    _write_shd(f, [[0.1, 3e30], [0.2]], [[1, 2], [3]], [0, 1])
    shd = read_shd(f)
    assert shd[1][0]["t"].tolist() == [200000]
    with pytest.raises(EventFileError, match="sample 0"):
        shd[0]


def test_shd_unreadable_data_is_an_event_file_error(tmp_path: Path) -> None:
    f = tmp_path / "cut.h5"
    _write_shd(f, [np.linspace(0, 1, 500)] * 3, [np.arange(500) % 700] * 3, [0, 1, 2])
    raw = f.read_bytes()
    found = False
    for n in range(len(raw) - 16, 0, -max(len(raw) // 40, 1)):
        f.write_bytes(raw[:n])
        try:
            shd = read_shd(f)
            [shd[i] for i in range(len(shd))]
            _ = shd.labels
        except EventFileError as exc:
            found = True
            assert "cut.h5" in str(exc)
        finally:
            if "shd" in locals():
                shd.close()
    assert found


def test_load_events_h5_wrong_structure(tmp_path: Path) -> None:
    f = tmp_path / "o.h5"
    save_events(f, _events(20, (34, 34, 2)))
    with h5py.File(f, "r+") as h:
        del h["t"]
        h.create_group("t")
    with pytest.raises(EventFileError, match="'t'"):
        load_events(f)


# ------------------------------------------------------------------------------------------
# AEDAT 4: the `aedat` decoder is fenced
# ------------------------------------------------------------------------------------------

_AEDAT4_SNIPPET = """
import resource, sys, warnings
from spikeloom.events.io import read_aedat4, EventFileError
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
for strict in (True, False):
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            ev = read_aedat4(sys.argv[1], strict=strict)
        print(strict, "ok", ev.size, len(w))
    except EventFileError as e:
        print(strict, "EFE", e.offset, e)
"""


def _aedat4_outcome(path: Path) -> list[str]:
    res = subprocess.run(
        [sys.executable, "-c", _AEDAT4_SNIPPET, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, f"rc={res.returncode}: {res.stdout[-500:]} {res.stderr[-2000:]}"
    return res.stdout.splitlines()


@pytest.mark.parametrize("value", [0xC3, 0x80, 0xEA])
def test_aedat4_corrupt_header_byte_is_an_error_not_an_abort(
    tmp_path: Path, shared_data: Path, value: int
) -> None:
    pytest.importorskip("aedat")
    raw = bytearray((shared_data / "aedat4" / "aestream" / "davis.aedat4").read_bytes())
    assert raw.index(b"<dv") < 267 < raw.index(b"</dv>")  # inside the XML description
    raw[267] = value  # 0xC3 aborted the process (SIGABRT), 0x80 raised a Rust panic
    f = tmp_path / "hdr.aedat4"
    f.write_bytes(bytes(raw))
    lines = _aedat4_outcome(f)
    assert len(lines) == 2 and all(" EFE 267 " in ln and "hdr.aedat4" in ln for ln in lines)


def test_aedat4_corrupt_packet_size_strict_false_gets_only_valid_packets(
    tmp_path: Path, shared_data: Path
) -> None:
    pytest.importorskip("aedat")
    from spikeloom.events.io.aedat4 import _aedat4_layout

    src = shared_data / "aedat4" / "tonic" / "sample.aedat4"
    raw = bytearray(src.read_bytes())
    packets = _aedat4_layout(src, bytes(raw)).packets
    sid, off, size = packets[5]
    raw[off - 4 : off] = (0xFFFFFFF0).to_bytes(4, "little")  # a 4 GiB size for the decoder
    f = tmp_path / "size.aedat4"
    f.write_bytes(bytes(raw))
    strict_line, lenient_line = _aedat4_outcome(f)
    assert strict_line.startswith(f"True EFE {off - 8} ")
    assert lenient_line.startswith("False ok ") and lenient_line.endswith(" 1")  # 1 warning
    assert int(lenient_line.split()[2]) > 0  # the events of the packets before the damage


def test_aedat4_negative_timestamps_from_a_damaged_payload(
    tmp_path: Path, shared_data: Path
) -> None:
    pytest.importorskip("aedat")
    raw = bytearray((shared_data / "aedat4" / "tonic" / "sample.aedat4").read_bytes())
    raw[730206] ^= 1 << 1  # found by test_io_fuzz: the LZ4 payload decodes to t < 0
    f = tmp_path / "neg.aedat4"
    f.write_bytes(bytes(raw))
    with pytest.raises(EventFileError, match="negative timestamp"):
        read_aedat4(f)
    with pytest.warns(UserWarning, match="negative timestamp"):
        part = read_aedat4(f, strict=False)
    assert part.size > 0 and (part["t"] >= 0).all()


def test_read_events_unsupported_zip_version_is_an_event_file_error(tmp_path: Path) -> None:
    from spikeloom.events.io import read_events

    f = tmp_path / "v.npz"
    save_events(f, _events(10, (34, 34, 2)))
    raw = bytearray(f.read_bytes())
    struct.pack_into("<B", raw, raw.index(b"PK\x01\x02") + 6, 245)  # "zip file version 24.5"
    f.write_bytes(bytes(raw))
    with pytest.raises(EventFileError, match="v.npz"):
        read_events(f)


def test_shd_vlen_reference_not_matching_the_heap_is_an_error_not_a_crash(tmp_path: Path) -> None:
    f = tmp_path / "ref.h5"
    _write_shd(f, [[0.1, 0.2], [0.3, 0.4, 0.5]], [[1, 2], [3, 4, 5]], [0, 1])
    with h5py.File(f, "r") as h:
        off = h["spikes/times"].id.get_offset()
    raw = bytearray(f.read_bytes())
    assert struct.unpack_from("<I", raw, off + 16)[0] == 3
    struct.pack_into("<I", raw, off + 16, 0x8303)  # sample 1 claims 33539 spike times
    f.write_bytes(bytes(raw))  # found by test_io_fuzz (seed 8): the HDF5 library segfaulted
    out = _read_shd_isolated(f)
    assert out.startswith(f"EFE {off + 16} ") and "ref.h5" in out


def test_shd_damaged_vlen_datatype_is_not_a_segfault(tmp_path: Path) -> None:
    f = tmp_path / "seg.h5"
    _write_shd(f, [[0.1, 0.2], [0.3]], [[1, 2], [3]], [0, 1])
    raw = bytearray(f.read_bytes())
    msg = bytes.fromhex("1900000010000000" + "1000000002000000")  # vlen of uint16 (units)
    at = raw.index(msg)
    raw[at + 1] = 0x83  # vlen class bits (found by test_io_fuzz, seed 8): HDF5 segfaulted
    f.write_bytes(bytes(raw))
    out = _isolated(
        "from spikeloom.events.io import read_shd, EventFileError\n"
        "try:\n"
        f"    shd = read_shd({str(f)!r}); print([shd[i][0]['x'].tolist() for i in range(2)])\n"
        "except EventFileError as e:\n"
        "    print('EFE', e.offset, e)\n"
    )
    assert out.startswith("EFE ") or out.strip() == "[[1, 2], [3]]"


def _write_shd_gzip(path: Path) -> None:
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        vf, vu = h5py.vlen_dtype(np.float32), h5py.vlen_dtype(np.uint16)
        ft = f.create_dataset("spikes/times", (3,), dtype=vf, compression="gzip", chunks=(2,))
        fu = f.create_dataset("spikes/units", (3,), dtype=vu, compression="gzip", chunks=(2,))
        for i in range(3):
            ft[i] = np.sort(rng.random(20 + i)).astype(np.float32)
            fu[i] = rng.integers(0, 700, 20 + i).astype(np.uint16)
        f.create_dataset("labels", data=np.array([1, 2, 3], np.uint8))


def test_shd_gzip_chunks_read_without_the_library_vlen_path(tmp_path: Path) -> None:
    f = tmp_path / "c.h5"
    _write_shd_gzip(f)
    with h5py.File(f, "r") as h:
        expected = [(h["spikes/units"][i], h["spikes/times"][i]) for i in range(3)]
    shd = read_shd(f)
    for i, (units, times) in enumerate(expected):
        ev, _ = shd[i]
        assert ev["x"].tolist() == units.tolist()
        assert ev["t"].tolist() == np.rint(times.astype(np.float64) * 1e6).astype(int).tolist()
    raw = bytearray(f.read_bytes())
    for at, v in ((7861, 0xCB), (12366, 0x49), (1889, 0x7C)):  # test_io_fuzz seed 2: segfault
        if at < len(raw):
            raw[at] = v
    f.write_bytes(bytes(raw))
    out = _isolated(
        "from spikeloom.events.io import read_shd, EventFileError\n"
        "try:\n"
        f"    shd = read_shd({str(f)!r}); [shd[i] for i in range(len(shd))]; print('ok')\n"
        "except EventFileError as e:\n"
        "    print('EFE', e.offset, e)\n"
    )
    assert out.startswith(("ok", "EFE "))


def test_load_events_h5_format_attribute_of_a_damaged_type(tmp_path: Path) -> None:
    f = tmp_path / "attr.h5"
    save_events(f, _events(20, (34, 34, 2)))
    raw = bytearray(f.read_bytes())
    name = raw.index(b"format\x00\x00")
    vlen_str = raw.index(bytes.fromhex("190101"), name)  # datatype of the 'format' attribute
    raw[vlen_str + 1] = 0x64  # vlen class bits (found by test_io_fuzz, seed 42): segfault
    f.write_bytes(bytes(raw))
    out = _isolated(
        "from spikeloom.events.io import load_events, EventFileError\n"
        "try:\n"
        f"    load_events({str(f)!r}); print('ok')\n"
        "except EventFileError as e:\n"
        "    print('EFE', e.offset, e)\n"
    )
    assert out.startswith("EFE ") and "format tag" in out


def test_aedat31_timestamp_offset_past_the_event_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "o.aedat"
    write_aedat31(f, _events(50, (128, 128, 2)), packet_events=20)
    raw = bytearray(f.read_bytes())
    last = len(raw) - 28 - 8 * 10  # header of the last packet (10 events)
    assert struct.unpack_from("<hhiii", raw, last)[:4] == (1, 1, 8, 4)
    struct.pack_into("<i", raw, last + 8, 7)  # eventTSOffset 7 of an 8-byte event
    f.write_bytes(bytes(raw))  # found by test_io_fuzz (seed 54): IndexError
    with pytest.raises(EventFileError, match="eventTSOffset") as info:
        read_aedat31(f)
    assert info.value.offset == last
    with pytest.warns(UserWarning):
        assert read_aedat31(f, strict=False).size == 40
