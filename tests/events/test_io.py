"""Tests for the event file readers/writers (spikeloom.events.io).

Real files are read in place through the ``shared_data`` fixture; formats without a real file
(AEDAT 2.0 events, AEDAT 3.1, SHD, ES-ImageNet, CIFAR10-DVS) are tested on bytes built by hand
from the documented layouts (iniVation's AEDAT format pages, the dataset papers). The last
section tests :func:`read_events`, which picks the reader of a file by content and suffix.
"""

from __future__ import annotations

import csv
import importlib
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import spikeloom.errors
from spikeloom.events.core import EVENT_DTYPE, EventArray, make_events
from spikeloom.events.io import (
    ATIS_OVERFLOW_INCREMENT,
    FORMATS,
    EventFileError,
    EventFileWarning,
    SHDFile,
    detect_format,
    load_events,
    read_aedat2,
    read_aedat2_header,
    read_aedat4,
    read_aedat31,
    read_cifar10dvs,
    read_dvs_gesture,
    read_es_imagenet_npz,
    read_events,
    read_gesture_labels,
    read_idx,
    read_ncaltech101_bin,
    read_nmnist_bin,
    read_shd,
    save_events,
    write_aedat2,
    write_aedat31,
    write_es_imagenet_npz,
    write_nmnist_bin,
)

h5py = pytest.importorskip("h5py")


def _plain(ev: np.ndarray) -> np.ndarray:
    return np.asarray(ev).view(np.ndarray)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(_plain(a), _plain(b)))


def _random_events(n: int, size: tuple[int, int, int], seed: int = 0, t_max: int = 10**6):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_max, n))
    return make_events(
        rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n), t, size
    )


def _nmnist_rows(shared_data: Path, split: str) -> list[dict[str, str]]:
    with open(shared_data / "nmnist" / "manifest.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == split]
    return sorted(rows, key=lambda r: int(r["mnist_index_1based"]))


# ------------------------------------------------------------------------------------------
# N-MNIST
# ------------------------------------------------------------------------------------------


def test_nmnist_tonic_sample(shared_data: Path) -> None:
    ev = read_nmnist_bin(shared_data / "tonic_samples" / "sample_nmnist.bin")
    assert isinstance(ev, EventArray) and ev.sensor_size == (34, 34, 2)
    assert ev.size == 4325 == 21625 // 5
    assert int((ev["p"] == 0).sum()) == 2180 and int((ev["p"] == 1).sum()) == 2145
    assert int(ev["t"].min()) == 654 and int(ev["t"].max()) == 311175
    assert int(ev["x"].max()) <= 33 and int(ev["y"].max()) <= 33


@pytest.mark.parametrize("split", ["Test", "Train"])
def test_nmnist_all_files_decode(shared_data: Path, split: str) -> None:
    rows = _nmnist_rows(shared_data, split)
    assert len(rows) == (100 if split == "Test" else 1000)
    counts = []
    last_t = []
    for r in rows:
        ev = read_nmnist_bin(shared_data / "nmnist" / r["path"])
        assert ev.size * 5 == int(r["bytes"])
        assert int(ev["x"].max()) < 34 and int(ev["y"].max()) < 34
        assert np.all(np.diff(ev["t"]) >= 0), r["path"]
        counts.append(ev.size)
        last_t.append(int(ev["t"][-1]))
    # README: 1,069 .. 7,152 events per sample, last timestamp 296,841 .. 336,040 µs (all 1,100)
    assert 1069 <= min(counts) and max(counts) <= 7152
    assert 296841 <= min(last_t) and max(last_t) <= 336040


def test_nmnist_agrees_with_mnist(shared_data: Path) -> None:
    images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz").astype(np.float64)
    labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    rows = _nmnist_rows(shared_data, "Test")
    acc = np.zeros((len(rows), 28, 28))
    idx = np.zeros(len(rows), dtype=np.int64)
    for k, r in enumerate(rows):
        ev = read_nmnist_bin(shared_data / "nmnist" / r["path"])
        img = np.zeros((34, 34))
        np.add.at(img, (ev["y"].astype(np.int64), ev["x"].astype(np.int64)), 1.0)
        acc[k] = img[3:31, 3:31]  # 28x28 digit inside a 3-pixel border; x = column, y = row
        idx[k] = int(r["mnist_index_1based"]) - 1
        assert int(labels[idx[k]]) == int(r["label"])

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        a = a - a.mean()
        b = b - b.mean()
        return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

    own = np.array([corr(acc[k], images[idx[k]]) for k in range(len(rows))])
    other = np.array([corr(acc[k], images[idx[(k + 1) % len(rows)]]) for k in range(len(rows))])
    transposed = np.array([corr(acc[k].T, images[idx[k]]) for k in range(len(rows))])
    assert own.mean() > 0.6
    assert own.mean() > other.mean() + 0.15
    assert own.mean() > transposed.mean() + 0.15  # x/y not swapped
    assert own.min() > 0.4


def test_nmnist_record_layout_by_hand(tmp_path: Path) -> None:
    # x=5, y=7, ON, t=0x010203; x=33, y=0, OFF, t=0x7FFFFF
    raw = bytes([5, 7, 0x80 | 0x01, 0x02, 0x03, 33, 0, 0x7F, 0xFF, 0xFF])
    f = tmp_path / "a.bin"
    f.write_bytes(raw)
    ev = read_nmnist_bin(f)
    assert ev["x"].tolist() == [5, 33] and ev["y"].tolist() == [7, 0]
    assert ev["p"].tolist() == [1, 0]
    assert ev["t"].tolist() == [0x010203, 2**23 - 1]
    g = tmp_path / "b.bin"
    write_nmnist_bin(g, ev)
    assert g.read_bytes() == raw


def test_nmnist_overflow_marker_convention(tmp_path: Path) -> None:
    # Records with y == 240 mark a timestamp overflow: +2**13 µs from there on; dropped.
    recs = [
        (1, 1, 0x00, 0x00, 100),
        (0, 240, 0x00, 0x00, 0),  # marker
        (2, 2, 0x80, 0x00, 50),
        (0, 240, 0x00, 0x00, 0),  # marker
        (3, 3, 0x00, 0x00, 10),
    ]
    f = tmp_path / "ovf.bin"
    f.write_bytes(bytes(v for r in recs for v in r))
    ev = read_nmnist_bin(f)
    assert ATIS_OVERFLOW_INCREMENT == 8192
    assert ev["x"].tolist() == [1, 2, 3]
    assert ev["t"].tolist() == [100, 50 + 8192, 10 + 2 * 8192]
    assert ev["p"].tolist() == [0, 1, 0]
    # disabled convention: the marker is an (out-of-range) event
    with pytest.raises(EventFileError, match="y=240"):
        read_nmnist_bin(f, overflow_y=None)
    # N-Caltech101 reader shares the format; sensor_size=None infers it
    nc = read_ncaltech101_bin(f, sensor_size=None)
    assert nc.sensor_size == (4, 4, 2) and nc.size == 3


def test_nmnist_writer_encodes_overflow_markers(tmp_path: Path) -> None:
    t = np.array([5, 2**23 - 1, 2**23, 2**23 + 5 * 8192 + 7, 2**25])
    ev = make_events([1, 2, 3, 4, 5], [0, 1, 2, 3, 4], [1, 0, 1, 0, 1], t, (34, 34, 2))
    f = tmp_path / "big.bin"
    with pytest.raises(ValueError, match="23-bit"):
        write_nmnist_bin(f, ev)
    write_nmnist_bin(f, ev, overflow="marker")
    raw = np.frombuffer(f.read_bytes(), np.uint8).reshape(-1, 5)
    n_markers = int((raw[:, 1] == 240).sum())
    assert n_markers == -(-(2**25 - (2**23 - 1)) // 8192)  # ceil
    assert raw.shape[0] == 5 + n_markers
    back = read_nmnist_bin(f)
    assert _same(back, ev)


def test_nmnist_truncated(tmp_path: Path, shared_data: Path) -> None:
    src = shared_data / "tonic_samples" / "sample_nmnist.bin"
    full = read_nmnist_bin(src)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(src.read_bytes()[:1003])
    with pytest.raises(EventFileError) as info:
        read_nmnist_bin(cut)
    msg = str(info.value)
    assert "cut.bin" in msg and "1003" in msg and "truncated record at byte 1000" in msg
    assert info.value.offset == 1000
    with pytest.warns(EventFileWarning, match="200 valid events"):
        part = read_nmnist_bin(cut, strict=False)
    assert _same(part, full[:200])


def test_nmnist_out_of_range_record(tmp_path: Path) -> None:
    f = tmp_path / "bad.bin"
    f.write_bytes(bytes([1, 1, 0, 0, 1, 40, 1, 0, 0, 2, 2, 2, 0, 0, 3]))
    with pytest.raises(EventFileError, match="at byte 5: record 1 has x=40"):
        read_nmnist_bin(f)
    with pytest.warns(EventFileWarning):
        part = read_nmnist_bin(f, strict=False)
    assert part["x"].tolist() == [1]


def test_nmnist_round_trip_real_file(tmp_path: Path, shared_data: Path) -> None:
    src = shared_data / "nmnist" / "Test" / "7" / "00001.bin"
    ev = read_nmnist_bin(src)
    out = write_nmnist_bin(tmp_path / "copy.bin", ev)
    assert out.read_bytes() == src.read_bytes()
    assert list(tmp_path.iterdir()) == [out]  # atomic write leaves no temp file


# ------------------------------------------------------------------------------------------
# MNIST IDX
# ------------------------------------------------------------------------------------------


def test_read_idx_mnist(shared_data: Path) -> None:
    images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,)
    counts = np.bincount(labels, minlength=10).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    train_labels = read_idx(shared_data / "mnist" / "train-labels-idx1-ubyte.gz")
    assert np.bincount(train_labels).tolist()[:3] == [5923, 6742, 5958]


def test_read_idx_synthetic_and_truncated(tmp_path: Path) -> None:
    import gzip

    arr = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    raw = bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 3, 4) + arr.astype(">i4").tobytes()
    f = tmp_path / "a.idx"
    f.write_bytes(raw)
    out = read_idx(f)
    assert out.dtype == np.int32 and np.array_equal(out, arr)
    g = tmp_path / "a.idx.gz"
    g.write_bytes(gzip.compress(raw))
    assert np.array_equal(read_idx(g), arr)
    f.write_bytes(raw[:-3])
    with pytest.raises(EventFileError, match="payload is 45 bytes .* needs 48"):
        read_idx(f)
    g.write_bytes(gzip.compress(raw)[:-10])
    with pytest.raises(EventFileError, match="gzip"):
        read_idx(g)


# ------------------------------------------------------------------------------------------
# AEDAT 2.0
# ------------------------------------------------------------------------------------------


def test_aedat2_header_only_file(shared_data: Path) -> None:
    path = shared_data / "tonic_samples" / "sample_aedat_header.aedat"
    header = read_aedat2_header(path)
    assert header.version == "2.0"
    assert len(header.lines) == 12 and header.data_offset == 599
    assert header.chip == "eu.seebetter.ini.chips.davis.Davis346red"
    assert header.properties["Timestamps tick"] == "1 us"
    ev = read_aedat2(path)  # camera from the AEChip line
    assert ev.size == 0 and ev.sensor_size == (346, 260, 2)
    assert read_aedat2(path, camera="dvs128").sensor_size == (128, 128, 2)


def test_aedat2_dvs128_byte_layout(tmp_path: Path) -> None:
    # address: bit 0 p, bits 1-7 x, bits 8-14 y, bit 15 external event; big-endian pairs
    def addr(x: int, y: int, p: int, ext: int = 0) -> int:
        return (ext << 15) | (y << 8) | (x << 1) | p

    pairs = [(addr(3, 5, 1), 10), (addr(127, 0, 0), 20), (addr(0, 0, 0, ext=1), 25)]
    pairs.append((addr(0, 127, 1), 30))
    payload = b"".join(struct.pack(">II", a, t) for a, t in pairs)
    f = tmp_path / "dvs.aedat"
    f.write_bytes(b"#!AER-DAT2.0\r\n# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128\r\n" + payload)
    ev = read_aedat2(f)
    assert ev.sensor_size == (128, 128, 2)
    assert ev["x"].tolist() == [3, 127, 0] and ev["y"].tolist() == [5, 0, 127]
    assert ev["p"].tolist() == [1, 0, 1] and ev["t"].tolist() == [10, 20, 30]
    assert read_aedat2(f, keep_special=True).size == 4
    # CIFAR10-DVS mapping (SpikingJelly): x = 127 - y, y = 127 - x, p = 1 - p
    c = read_cifar10dvs(f)
    assert c["x"].tolist() == [122, 127, 0] and c["y"].tolist() == [124, 0, 127]
    assert c["p"].tolist() == [0, 1, 0]
    assert _same(read_cifar10dvs(f, orientation="raw"), ev)
    # writer reproduces the same bytes for the polarity events
    g = tmp_path / "w.aedat"
    write_aedat2(g, ev, header_lines=["# AEChip: ch.unizh.ini.jaer.chip.retina.DVS128"])
    expected = b"".join(struct.pack(">II", a, t) for a, t in pairs if not a & 0x8000)
    assert g.read_bytes().endswith(expected)
    assert _same(read_aedat2(g), ev)


def test_aedat2_davis_layout_and_binary_hash_byte(tmp_path: Path) -> None:
    # DAVIS: y bits 22-30, x bits 12-21, p bit 11; bit 31 APS/IMU, bit 10 special event.
    def addr(x: int, y: int, p: int) -> int:
        return (y << 22) | (x << 12) | (p << 11)

    pairs = [
        (addr(345, 141, 1), 7),  # y=141 -> first byte 0x23 ('#'): must not look like header
        (addr(10, 20, 0) | 0x80000000, 8),  # APS sample
        (addr(0, 0, 0) | 0x400, 9),  # special event
        (addr(0, 259, 0), 11),
    ]
    payload = b"".join(struct.pack(">II", a, t) for a, t in pairs)
    assert payload[0] == 0x23
    f = tmp_path / "davis.aedat"
    f.write_bytes(b"#!AER-DAT2.0\r\n# Timestamps tick: 1 us\r\n" + payload)
    with pytest.raises(EventFileError, match="camera="):
        read_aedat2(f)  # no AEChip line
    ev = read_aedat2(f, camera="davis346")
    assert ev["x"].tolist() == [345, 0] and ev["y"].tolist() == [141, 259]
    assert ev["p"].tolist() == [1, 0] and ev["t"].tolist() == [7, 11]
    g = tmp_path / "w.aedat"
    write_aedat2(g, ev, camera="davis346")
    assert _same(read_aedat2(g), ev)  # AEChip line written by default
    with pytest.raises(EventFileError, match="byte 39: polarity event with x=345, y=141"):
        read_aedat2(f, camera="davis240")


def test_aedat2_round_trip_and_truncation(tmp_path: Path) -> None:
    ev = _random_events(1000, (128, 128, 2), seed=1)
    f = tmp_path / "r.aedat"
    write_aedat2(f, ev)
    back = read_aedat2(f, camera="dvs128")
    assert _same(back, ev)
    raw = f.read_bytes()
    start = len(raw) - 8 * 1000
    cut = tmp_path / "cut.aedat"
    cut.write_bytes(raw[: start + 8 * 10 + 5])
    with pytest.raises(EventFileError, match=f"truncated record at byte {start + 80}"):
        read_aedat2(cut)
    with pytest.warns(EventFileWarning, match="10 valid events"):
        part = read_aedat2(cut, strict=False)
    assert _same(part, ev[:10])


# ------------------------------------------------------------------------------------------
# AEDAT 3.1 and DVS128 Gesture
# ------------------------------------------------------------------------------------------

_HDR31 = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


def _packet(etype: int, size: int, overflow: int, capacity: int, events: bytes) -> bytes:
    number = len(events) // size
    head = struct.pack("<hhiiiiii", etype, 1, size, 4, overflow, capacity, number, number)
    return head + events + bytes((capacity - number) * size)


def _pol(x: int, y: int, p: int, ts: int, valid: int = 1) -> bytes:
    return struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | valid, ts)


def test_aedat31_byte_layout(tmp_path: Path) -> None:
    special = _packet(0, 8, 0, 1, struct.pack("<Ii", 0xDEADBEEF, 3))  # type 0: skipped
    p1 = _packet(1, 8, 0, 4, _pol(3, 4, 1, 100) + _pol(127, 0, 0, 200) + _pol(1, 1, 1, 250, 0))
    p2 = _packet(1, 8, 2, 2, _pol(0, 127, 1, 5))  # ts overflow 2 -> t = 2 << 31 | 5
    f = tmp_path / "g.aedat"
    f.write_bytes(_HDR31 + special + p1 + p2)
    ev = read_aedat31(f)
    assert ev.sensor_size == (128, 128, 2)
    assert ev["x"].tolist() == [3, 127, 0] and ev["y"].tolist() == [4, 0, 127]
    assert ev["p"].tolist() == [1, 0, 1]
    assert ev["t"].tolist() == [100, 200, (2 << 31) | 5]
    assert read_aedat31(f, drop_invalid=False).size == 4
    with pytest.raises(EventFileError, match="x=127, y=0") as info:
        read_aedat31(f, sensor_size=(100, 100, 2))
    assert info.value.offset == len(_HDR31) + 36 + 28 + 8  # 2nd event of the 2nd packet
    # payload_length="number" misreads capacity padding as the next packet header
    with pytest.raises(EventFileError):
        read_aedat31(f, payload_length="number")
    g = tmp_path / "w.aedat"
    write_aedat31(g, ev)
    assert _same(read_aedat31(g), ev)


def test_aedat31_round_trip_and_truncation(tmp_path: Path) -> None:
    ev = _random_events(3000, (128, 128, 2), seed=2, t_max=2**32)  # crosses the 2**31 epoch
    assert (ev["t"] >= 2**31).any() and (ev["t"] < 2**31).any()
    f = tmp_path / "r.aedat"
    write_aedat31(f, ev, packet_events=1000)
    assert _same(read_aedat31(f), ev)

    small = _random_events(2500, (128, 128, 2), seed=3)  # one epoch: packets of 1000/1000/500
    write_aedat31(f, small, packet_events=1000)
    raw = f.read_bytes()
    second = len(_HDR31) + 28 + 8 * 1000  # byte offset of the 2nd packet header
    cut = tmp_path / "cut.aedat"
    cut.write_bytes(raw[: second + 28 + 40])  # inside the 2nd packet's payload
    with pytest.raises(EventFileError, match="packet payload truncated") as info:
        read_aedat31(cut)
    assert info.value.offset == second + 28 and "cut.aedat" in str(info.value)
    with pytest.warns(EventFileWarning, match="1000 valid events"):
        part = read_aedat31(cut, strict=False)
    assert _same(part, small[:1000])
    cut.write_bytes(raw[: second + 10])  # inside a packet header
    with pytest.raises(EventFileError, match="truncated packet header") as info:
        read_aedat31(cut)
    assert info.value.offset == second
    cut.write_bytes(b"#!AER-DAT2.0\r\n")
    with pytest.raises(EventFileError, match="AER-DAT3.1"):
        read_aedat31(cut)


def test_gesture_labels_real_file(shared_data: Path) -> None:
    labels = read_gesture_labels(shared_data / "dvsgesture_labels" / "user01_natural_labels.csv")
    assert labels.shape == (12,)
    assert labels["label"].min() >= 1 and labels["label"].max() <= 11
    assert sorted(set(labels["label"].tolist())) == list(range(1, 12))  # 8 appears twice
    assert np.all(labels["start"] < labels["end"])
    assert np.all(np.diff(labels["start"]) > 0)
    assert labels[0].tolist() == (1, 53036986, 59508469)


def test_gesture_labels_errors(tmp_path: Path) -> None:
    f = tmp_path / "l.csv"
    f.write_text("class,startTime_usec,endTime_usec\n12,1,2\n")
    with pytest.raises(EventFileError, match="line 2: class 12"):
        read_gesture_labels(f)
    f.write_text("class,startTime_usec,endTime_usec\n1,5,5\n")
    with pytest.raises(EventFileError, match="start 5 >= end 5"):
        read_gesture_labels(f)
    f.write_text("a,b,c\n")
    with pytest.raises(EventFileError, match="expected header"):
        read_gesture_labels(f)


def test_read_dvs_gesture_slices(tmp_path: Path, shared_data: Path) -> None:
    csv_path = shared_data / "dvsgesture_labels" / "user01_natural_labels.csv"
    labels = read_gesture_labels(csv_path)
    rng = np.random.default_rng(3)
    t = np.sort(
        np.concatenate(
            [
                rng.integers(50_000_000, 180_000_000, 20000),
                labels["start"],  # boundaries: start included ...
                labels["end"],  # ... end excluded
                labels["start"] - 1,
            ]
        )
    )
    ev = make_events(
        rng.integers(0, 128, t.size),
        rng.integers(0, 128, t.size),
        rng.integers(0, 2, t.size),
        t,
        (128, 128, 2),
    )
    aedat = tmp_path / "user01_natural.aedat"
    write_aedat31(aedat, ev)
    samples = read_dvs_gesture(aedat, csv_path)
    assert len(samples) == 12
    assert [lab for _, lab in samples] == (labels["label"] - 1).tolist()
    for (seg, _), (_, start, end) in zip(samples, labels.tolist()):
        expected = int(((t >= start) & (t < end)).sum())
        assert seg.size == expected > 0
        assert int(seg["t"][0]) == start and int(seg["t"][-1]) < end
        assert seg.sensor_size == (128, 128, 2)
    rel = read_dvs_gesture(aedat, csv_path, relative_time=True)
    assert int(rel[0][0]["t"][0]) == 0


# ------------------------------------------------------------------------------------------
# AEDAT 4.0
# ------------------------------------------------------------------------------------------

_AEDAT4 = [
    ("tonic/sample.aedat4", 111954, (320, 240, 2), 0.59),
    ("aestream/davis.aedat4", 117667, (346, 260, 2), 0.13),
]


@pytest.mark.parametrize(("name", "count", "size", "duration_s"), _AEDAT4)
def test_aedat4_real_files(
    shared_data: Path, name: str, count: int, size: tuple, duration_s: float
) -> None:
    ev = read_aedat4(shared_data / "aedat4" / name)
    assert ev.size == count and ev.sensor_size == size
    assert int(ev["x"].max()) < size[0] and int(ev["y"].max()) < size[1]
    assert np.all(np.diff(ev["t"]) >= 0)
    assert abs(ev.duration / 1e6 - duration_s) < 0.01
    assert set(np.unique(ev["p"]).tolist()) == {0, 1}
    if name.startswith("tonic"):
        assert abs(float(ev["p"].mean()) - 0.49) < 0.01  # README: 49 % ON


def test_aedat4_truncated(tmp_path: Path, shared_data: Path) -> None:
    src = shared_data / "aedat4" / "tonic" / "sample.aedat4"
    full = read_aedat4(src)
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(src.read_bytes()[:500_000])
    with pytest.raises(EventFileError) as info:
        read_aedat4(cut)
    assert "cut.aedat4" in str(info.value) and info.value.offset is not None
    assert 0 < info.value.offset < 500_000 and "truncated" in str(info.value)
    with pytest.warns(EventFileWarning):
        part = read_aedat4(cut, strict=False)
    assert 0 < part.size < full.size and _same(part, full[: part.size])
    # cut exactly before the file data table: all packets complete, the table is missing
    raw = src.read_bytes()
    table_at = struct.unpack_from("<q", raw, 14 + 4 + 24 + 12)[0]  # IOHeader field 1
    assert 0 < table_at < len(raw)
    cut.write_bytes(raw[:table_at])
    with pytest.raises(EventFileError, match="data table"):
        read_aedat4(cut)
    with pytest.warns(EventFileWarning):
        assert _same(read_aedat4(cut, strict=False), full)
    cut.write_bytes(b"#!AER-DAT2.0\r\n")
    with pytest.raises(EventFileError, match="expected magic"):
        read_aedat4(cut)


# ------------------------------------------------------------------------------------------
# SHD
# ------------------------------------------------------------------------------------------


def _write_shd(path: Path, times: list, units: list, labels: list) -> None:
    with h5py.File(path, "w") as f:
        ft = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(np.float32))
        fu = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (tt, uu) in enumerate(zip(times, units)):
            ft[i] = np.asarray(tt, dtype=np.float32)
            fu[i] = np.asarray(uu, dtype=np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint8))


def test_shd_synthetic(tmp_path: Path) -> None:
    f = tmp_path / "shd_test.h5"
    times = [[0.0, 0.0015, 0.00049, 0.5], [], [0.25]]
    units = [[0, 699, 13, 13], [], [42]]
    _write_shd(f, times, units, [3, 19, 0])
    shd = read_shd(f)
    assert len(shd) == 3
    ev, label = shd[0]
    assert label == 3 and ev.sensor_size == (700, 1, 1)
    assert ev["x"].tolist() == [0, 699, 13, 13]
    assert ev["y"].tolist() == [0] * 4 and ev["p"].tolist() == [0] * 4
    # float32 seconds -> nearest integer µs (float32(0.00049) = 0.00048999999..., floor gives 489)
    assert ev["t"].tolist() == [0, 1500, 490, 500000]
    assert shd[1][0].size == 0 and shd[-1][1] == 0 and shd[2][0]["t"].tolist() == [250000]
    assert shd.labels.tolist() == [3, 19, 0]
    with pytest.raises(IndexError):
        shd[3]
    clone = pickle.loads(pickle.dumps(shd))  # picklable for DataLoader workers
    assert _same(clone[0][0], ev)
    shd.close()
    assert [lab for _, lab in shd] == [3, 19, 0]  # reopens lazily
    shd.close()


def test_shd_errors(tmp_path: Path) -> None:
    f = tmp_path / "bad.h5"
    _write_shd(f, [[0.1]], [[700]], [1])
    with pytest.raises(EventFileError, match="unit ids 700..700"):
        read_shd(f)[0]
    g = tmp_path / "nolabels.h5"
    with h5py.File(g, "w") as h:
        h.create_dataset("spikes/times", data=np.zeros(1))
    with pytest.raises(EventFileError, match="missing dataset"):
        read_shd(g)
    cut = tmp_path / "cut.h5"
    _write_shd(cut, [[0.1]], [[1]], [1])
    cut.write_bytes(cut.read_bytes()[:100])
    with pytest.raises(EventFileError, match="HDF5"):
        read_shd(cut)


# ------------------------------------------------------------------------------------------
# ES-ImageNet
# ------------------------------------------------------------------------------------------


def test_es_imagenet_round_trip_and_centring(tmp_path: Path) -> None:
    pos = np.array([[20, 30, 2], [100, 200, 1]], dtype=np.uint8)  # (row, col, t)
    neg = np.array([[17, 239, 1], [50, 60, 8]], dtype=np.uint8)
    f = tmp_path / "class0_1.npz"
    write_es_imagenet_npz(f, pos, neg)
    with np.load(f) as z:
        assert z["pos"].dtype == np.uint8 and np.array_equal(z["pos"], pos)
        assert np.array_equal(z["neg"], neg)
    ev = read_es_imagenet_npz(f)
    assert ev.sensor_size == (256, 256, 2)
    # sorted by step; within a step ON (pos) first
    assert ev["t"].tolist() == [1, 1, 2, 8]
    assert ev["x"].tolist() == [200, 239, 30, 60]  # x = col
    assert ev["y"].tolist() == [100, 17, 20, 50]  # y = row
    assert ev["p"].tolist() == [1, 0, 1, 0]
    c = read_es_imagenet_npz(f, centre=(170, 254))  # dx = (254-170)//2 = 42 on rows
    assert c["y"].tolist() == [142, 59, 62, 92] and c["x"].tolist() == ev["x"].tolist()
    empty = tmp_path / "e.npz"
    write_es_imagenet_npz(empty, np.zeros((0, 3)), neg)
    assert read_es_imagenet_npz(empty).size == 2


def test_es_imagenet_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="t outside 1..8"):
        write_es_imagenet_npz(tmp_path / "x.npz", [[1, 1, 9]], np.zeros((0, 3)))
    f = tmp_path / "bad.npz"
    np.savez_compressed(f, pos=np.zeros((2, 2), np.uint8), neg=np.zeros((0, 3), np.uint8))
    with pytest.raises(EventFileError, match=r"expected \[n, 3\]"):
        read_es_imagenet_npz(f)
    np.savez_compressed(f, foo=np.zeros(1))
    with pytest.raises(EventFileError, match="missing arrays"):
        read_es_imagenet_npz(f)
    good = tmp_path / "good.npz"
    write_es_imagenet_npz(good, [[20, 20, 1]] * 50, [[30, 30, 2]] * 50)
    f.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(EventFileError, match="bad.npz"):
        read_es_imagenet_npz(f)


# ------------------------------------------------------------------------------------------
# own format
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
@pytest.mark.parametrize("compress", [False, True])
def test_save_load_round_trip(tmp_path: Path, suffix: str, compress: bool) -> None:
    ev = _random_events(500, (346, 260, 2), seed=4, t_max=2**40)
    f = tmp_path / f"ev{suffix}"
    save_events(f, ev, compress=compress)
    back = load_events(f)
    assert back.sensor_size == (346, 260, 2) and back.dtype == EVENT_DTYPE
    assert _same(back, ev)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f.name]  # no temp file left
    # overwrite in place
    save_events(f, ev[:3], compress=compress)
    assert load_events(f).size == 3


def test_save_load_errors(tmp_path: Path) -> None:
    ev = _random_events(2000, (34, 34, 2), seed=5)
    f = tmp_path / "ev.npz"
    save_events(f, ev)
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(EventFileError, match="ev.npz"):
        load_events(f)
    g = tmp_path / "other.npz"
    np.savez(g, x=np.zeros(1), y=np.zeros(1), p=np.zeros(1), t=np.zeros(1))
    with pytest.raises(EventFileError, match="format tag"):
        load_events(g)
    with pytest.raises(ValueError, match="suffix"):
        save_events(tmp_path / "ev.txt", ev)
    with pytest.raises(ValueError, match="sensor_size"):
        save_events(tmp_path / "ev.npz", ev.view(np.ndarray))
    h = tmp_path / "ev.h5"
    save_events(h, ev)
    h.write_bytes(h.read_bytes()[:3000])
    with pytest.raises(EventFileError, match="ev.h5"):
        load_events(h)


# ------------------------------------------------------------------------------------------
# read_events: the reader picked by content and suffix
# ------------------------------------------------------------------------------------------


def _same_events(a: EventArray, b: EventArray) -> bool:
    return isinstance(a, EventArray) and a.sensor_size == b.sensor_size and _same(a, b)


_REAL_SAMPLES = [
    ("tonic_samples/sample_nmnist.bin", "atis", read_nmnist_bin),
    ("nmnist/Test/0/00004.bin", "atis", read_nmnist_bin),
    ("aedat4/tonic/sample.aedat4", "aedat4", read_aedat4),
    ("aedat4/aestream/davis.aedat4", "aedat4", read_aedat4),
    ("tonic_samples/sample_aedat_header.aedat", "aedat2", read_aedat2),
]


@pytest.mark.parametrize(("name", "fmt", "reader"), _REAL_SAMPLES)
def test_read_events_real_samples(shared_data: Path, name: str, fmt: str, reader) -> None:
    path = shared_data / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    assert detect_format(path) == fmt
    got = read_events(path)
    assert _same_events(got, reader(path))
    assert _same_events(read_events(str(path), format=fmt), got)


def test_read_events_all_nmnist_test_files(shared_data: Path) -> None:
    files = sorted((shared_data / "nmnist" / "Test").glob("*/*.bin"))
    assert len(files) == 100
    for f in files:
        assert _same_events(read_events(f), read_nmnist_bin(f))


def test_read_events_atis_sensor_by_content(tmp_path: Path) -> None:
    caltech = _random_events(300, (240, 180, 2), seed=11)
    f = tmp_path / "image_0001.bin"
    write_nmnist_bin(f, caltech)
    got = read_events(f)
    assert got.sensor_size == (240, 180, 2) and _same_events(got, read_ncaltech101_bin(f))
    small = tmp_path / "small.bin"
    write_nmnist_bin(small, _random_events(50, (34, 34, 2), seed=12))
    assert read_events(small).sensor_size == (34, 34, 2)
    assert _same_events(read_events(small), read_nmnist_bin(small))
    # overflow markers (y = 240) do not count as events when choosing the sensor
    long = tmp_path / "long.bin"
    write_nmnist_bin(long, _random_events(60, (34, 34, 2), seed=16, t_max=2**25), overflow="marker")
    assert (np.frombuffer(long.read_bytes(), np.uint8).reshape(-1, 5)[:, 1] == 240).any()
    assert _same_events(read_events(long), read_nmnist_bin(long))
    # keyword arguments go to the reader
    assert (
        read_events(small, sensor_size=None).sensor_size
        == read_nmnist_bin(small, sensor_size=None).sensor_size
    )
    cut = tmp_path / "cut.bin"
    cut.write_bytes(f.read_bytes()[:-2])
    with pytest.raises(EventFileError, match="truncated"):
        read_events(cut)
    with pytest.warns(EventFileWarning):
        part = read_events(cut, strict=False)
    assert part.size == 299 and _same(part, caltech[:299])
    # no suffix: the format cannot be told, but can be named
    bare = tmp_path / "recording"
    bare.write_bytes(small.read_bytes())
    with pytest.raises(EventFileError, match="cannot tell"):
        read_events(bare)
    assert _same_events(read_events(bare, format="nmnist"), read_nmnist_bin(small))


def test_read_events_aedat_resolved_by_header(tmp_path: Path) -> None:
    ev = _random_events(400, (128, 128, 2), seed=13)
    a2 = tmp_path / "cifar.aedat"
    a31 = tmp_path / "gesture.aedat"
    write_aedat2(a2, ev, camera="dvs128")
    write_aedat31(a31, ev)
    assert detect_format(a2) == "aedat2" and detect_format(a31) == "aedat31"
    assert _same_events(read_events(a2), read_aedat2(a2))
    assert _same_events(read_events(a31), read_aedat31(a31))
    assert _same(read_events(a31), ev)
    # CIFAR10-DVS style: read_events gives the raw address fields, not the dataset remap
    raw = read_cifar10dvs(a2, orientation="raw")
    assert _same_events(read_events(a2), raw) and _same(raw, ev)
    assert not _same(read_events(a2), read_cifar10dvs(a2))
    # a header without an AEChip line: the reader asks for camera=, which read_events passes on
    plain = tmp_path / "plain.aedat"
    write_aedat2(plain, ev, header_lines=["# made by a MATLAB script"])
    with pytest.raises(EventFileError, match="camera="):
        read_events(plain)
    assert _same_events(read_events(plain, camera="dvs128"), raw)
    # content wins over the suffix
    dat = tmp_path / "gesture.dat"
    dat.write_bytes(a31.read_bytes())
    assert detect_format(dat) == "aedat31"
    # neither header: the .aedat suffix alone is ambiguous
    junk = tmp_path / "junk.aedat"
    junk.write_bytes(b"\x00\x01" * 40)
    with pytest.raises(EventFileError, match="aedat2, aedat31") as info:
        read_events(junk)
    assert "read_aedat2(" in str(info.value) and "read_aedat31(" in str(info.value)


def test_read_events_npz_and_h5(tmp_path: Path) -> None:
    ev = _random_events(300, (346, 260, 2), seed=14)
    for suffix, fmt in ((".npz", "spikeloom"), (".h5", "spikeloom"), (".hdf5", "spikeloom")):
        f = tmp_path / f"own{suffix}"
        save_events(f, ev)
        assert detect_format(f) == fmt
        assert _same_events(read_events(f), load_events(f)) and _same(read_events(f), ev)
    rng = np.random.default_rng(15)
    pos = np.column_stack([rng.integers(17, 200, (40, 2)), rng.integers(1, 9, 40)])
    neg = np.column_stack([rng.integers(17, 200, (30, 2)), rng.integers(1, 9, 30)])
    es = tmp_path / "n01440764_10026.npz"
    write_es_imagenet_npz(es, pos, neg)
    assert detect_format(es) == "es_imagenet"
    got = read_events(es)
    # what the file holds: no centring
    assert _same_events(got, read_es_imagenet_npz(es))
    assert not _same(got, read_es_imagenet_npz(es, centre=(230, 240)))
    shd = tmp_path / "shd_train.h5"
    _write_shd(shd, [[0.1, 0.2], [0.3]], [[5, 6], [7]], [4, 9])
    assert detect_format(shd) == "shd"
    opened = read_events(shd)
    assert isinstance(opened, SHDFile) and len(opened) == 2
    reference = read_shd(shd)
    for (a, la), (b, lb) in zip(opened, reference):
        assert la == lb and _same_events(a, b)
    opened.close()
    reference.close()
    # a zip or HDF5 file of neither format
    other = tmp_path / "other.npz"
    np.savez(other, frames=np.zeros(3))
    with pytest.raises(EventFileError, match="es_imagenet, spikeloom"):
        read_events(other)
    other_h5 = tmp_path / "other.h5"
    with h5py.File(other_h5, "w") as h:
        h.create_dataset("data", data=np.zeros(3))
    with pytest.raises(EventFileError, match="shd, spikeloom"):
        read_events(other_h5)


def test_read_events_unknown_file_lists_formats(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("not events\n")
    with pytest.raises(EventFileError) as info:
        read_events(f)
    msg = str(info.value)
    assert "notes.txt" in msg and "cannot tell the event file format" in msg
    for name in ("atis", "aedat2", "aedat31", "aedat4", "es_imagenet", "shd", "spikeloom"):
        assert f"  {name}: " in msg
    for suffix in (".bin", ".aedat", ".aedat4", ".npz", ".h5"):
        assert suffix in msg
    for reader in ("read_nmnist_bin(", "read_aedat4(", "load_events(", "read_shd("):
        assert reader in msg
    assert "read_events(path, format=" in msg
    assert isinstance(info.value, ValueError)
    with pytest.raises(spikeloom.errors.UnknownNameError, match="aedat4"):
        read_events(f, format="mp4")
    with pytest.raises(FileNotFoundError):
        read_events(tmp_path / "missing.bin")


def test_format_registry_metadata() -> None:
    assert set(FORMATS.names()) == {
        "aedat2", "aedat31", "aedat4", "atis", "es_imagenet", "shd", "spikeloom"
    }  # fmt: skip
    for name in FORMATS:
        meta = FORMATS.entry(name).meta
        assert meta["suffixes"] and all(s.startswith(".") for s in meta["suffixes"])
        assert meta["description"] and meta["hint"]
        assert callable(FORMATS.get(name))
    assert FORMATS.entry("nmnist").name == "atis" and FORMATS.entry("N-Caltech101").name == "atis"
    assert FORMATS.entry("aedat4").meta["sniff"](Path("x"), b"#!AER-DAT4.0\r\n")
    assert FORMATS.entry("atis").meta["sniff"] is None


def test_io_package_exports() -> None:
    import spikeloom.events as events
    import spikeloom.events.io as io

    assert io.EventFileError is spikeloom.errors.EventFileError
    assert io.EventFileWarning is spikeloom.errors.EventFileWarning
    assert events.read_events is read_events and "read_events" in events.__all__
    for name in io.__all__:
        assert hasattr(io, name), name
    assert not hasattr(io, "_atomic_write")


def test_dataset_readers_live_with_their_datasets() -> None:
    """The readers applying dataset conventions are the dataset modules' functions,
    importable from spikeloom.events and spikeloom.events.io (README names)."""
    import spikeloom.events as events
    import spikeloom.events.io as io
    from spikeloom.datasets import cifar10dvs, dvsgesture

    assert events.read_cifar10dvs is io.read_cifar10dvs is cifar10dvs.read_cifar10dvs
    assert events.read_dvs_gesture is io.read_dvs_gesture is dvsgesture.read_dvs_gesture
    assert read_cifar10dvs is cifar10dvs.read_cifar10dvs
    assert {"read_cifar10dvs", "read_dvs_gesture"} <= set(events.__all__) & set(io.__all__)
    for module in ("aedat2", "aedat31"):
        sub = importlib.import_module(f"spikeloom.events.io.{module}")
        assert not hasattr(sub, "read_cifar10dvs") and not hasattr(sub, "read_dvs_gesture")
    with pytest.raises(AttributeError):
        io.read_nothing  # noqa: B018
    with pytest.raises(AttributeError):
        events.read_nothing  # noqa: B018


def test_aedat4_without_the_aedat_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aedat", None)  # import aedat now raises ImportError
    f = tmp_path / "x.aedat4"
    f.write_bytes(b"#!AER-DAT4.0\r\n")
    with pytest.raises(ImportError, match="pip install aedat"):
        read_aedat4(f)
    with pytest.raises(ImportError, match="pip install aedat"):
        read_events(f)
