"""Benchmark of the ODG conversion (ES-ImageNet method) and of building ES-Digits.

Images: real MNIST test digits (``../shared/data/mnist``, or SPIKELOOM_SHARED_DATA), which are
the only real images in the shared data. Stages timed, one process, one thread:

1. ODG only, on intensity maps already resized to 254x254;
2. ``convert_image`` from the 28x28 uint8 digit (value channel + resize to 254 + ODG);
3. the converter's whole per-image work on an ImageNet-sized file: JPEG decode (PIL) of a
   500x375 RGB JPEG made from the digit (quality 90, encoded in memory beforehand), resize to
   254x190, ODG, then npz compression (no disk write);
4. building all 1,797 ES-Digits samples (cache cleared).

The ImageNet projection (1,281,167 training images on 64 cores) is a plain division: it assumes
linear scaling over cores and ignores disk I/O. MNIST digits are sparse (mostly black), natural
images give more events, so the event-extraction part may be slower on real ImageNet photos.

Run: ``.venv/bin/python benchmarks/bench_odg.py [--n 200]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

DATA = Path(
    os.environ.get("SPIKELOOM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
IMAGENET_TRAIN = 1_281_167
CORES = 64


def _rate(fn, items, repeat: int = 2) -> float:
    """Best-of-``repeat`` items per second of ``fn`` applied to every item."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for it in items:
            fn(it)
        best = min(best, time.perf_counter() - t0)
    return len(items) / best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="number of MNIST digits")
    args = ap.parse_args()
    images_path = DATA / "mnist" / "t10k-images-idx3-ubyte.gz"
    if not images_path.exists():
        print(f"MNIST not found at {images_path}; set SPIKELOOM_SHARED_DATA. Nothing measured.")
        return 0

    import torch
    from PIL import Image

    from spikeloom.convert import npz_bytes
    from spikeloom.datasets import esdigits
    from spikeloom.events.io import read_idx
    from spikeloom.events.odg import (
        convert_image,
        odg,
        resize_longer_side,
        resize_nearest,
        value_channel,
    )

    torch.set_num_threads(1)
    digits = read_idx(images_path)[: args.n]
    v254 = [resize_longer_side(value_channel(d)) for d in digits]
    events = [len(odg(v)) for v in v254]  # odg returns an EventArray (ON + OFF)

    jpegs = []
    for d in digits:
        big = resize_nearest(d, 375, 500, sampling="floor")
        rgb = np.stack([big, (big * 0.7).astype(np.uint8), 255 - big], axis=-1)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
        jpegs.append(buf.getvalue())

    def full(jpeg: bytes) -> None:
        with Image.open(io.BytesIO(jpeg)) as im:
            img = np.asarray(im.convert("RGB"))
        res = convert_image(img, min_events=0)
        npz_bytes(res.npz_arrays())

    def decode(jpeg: bytes) -> None:
        with Image.open(io.BytesIO(jpeg)) as im:
            np.asarray(im.convert("RGB"))

    r_odg = _rate(odg, v254)
    r_conv = _rate(lambda d: convert_image(d, min_events=0), list(digits))
    r_decode = _rate(decode, jpegs)
    r_full = _rate(full, jpegs)

    print(f"ODG benchmark: {args.n} real MNIST test digits, 1 process, 1 thread "
          f"(mean {np.mean(events):.0f} events per 254x254 digit)")
    print(f"  ODG only (254x254 float32 map)           : {r_odg:7.1f} img/s "
          f"({1e3 / r_odg:5.2f} ms/img)")
    print(f"  convert_image from 28x28 uint8           : {r_conv:7.1f} img/s "
          f"({1e3 / r_conv:5.2f} ms/img)")
    print(f"  JPEG decode only (500x375 RGB, PIL)      : {r_decode:7.1f} img/s "
          f"({1e3 / r_decode:5.2f} ms/img)")
    print(f"  decode + resize + ODG + npz (500x375)    : {r_full:7.1f} img/s "
          f"({1e3 / r_full:5.2f} ms/img)")
    print("  (ES-ImageNet tables quote 29.47 ms per sample for the authors' GPU converter)")
    for name, rate in (("ODG only", r_odg), ("with decode+npz", r_full)):
        secs = IMAGENET_TRAIN / (rate * CORES)
        print(f"  projected ImageNet train ({IMAGENET_TRAIN:,} images) on {CORES} cores, {name}: "
              f"{secs / 60:6.1f} min (linear scaling, no disk I/O)")

    times = []
    for _ in range(3):
        esdigits._CACHE.clear()
        t0 = time.perf_counter()
        esdigits.esdigits_frames()
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for split in ("train", "val", "test"):
        esdigits.ESDigits(split)
    t_splits = time.perf_counter() - t0
    print(f"ES-Digits: building all 1,797 samples (size 32, bilinear): best {min(times):.3f} s "
          f"of 3 (load_digits + upscale + ODG + frames); then 3 splits from the cache: "
          f"{t_splits:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
