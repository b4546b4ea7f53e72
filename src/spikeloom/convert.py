"""``spikeloom convert``: ES-ImageNet-style ODG conversion of an image collection, at scale.

.. code-block:: text

    spikeloom convert SRC_DIR OUT_DIR [--split train|val] [--val-labels FILE] [options]
    spikeloom convert OUT_DIR --idx IMAGES.gz LABELS.gz [--split train|val] [options]
    python -m spikeloom.convert ...                       (same arguments)

Inputs
    * a class-folder tree ``SRC/<class>/<image>`` (ImageNet style); labels are the sorted
      folder names mapped to 0..K-1; images are the files with an image extension
      (``.jpeg .jpg .png .bmp .ppm .pgm .pbm .tif .tiff .webp``, any case), sorted by name,
      decoded with PIL;
    * ``--split val --val-labels FILE``: a flat folder of images and a text file of lines
      ``<file name> <label>`` (e.g. ``ILSVRC2012_val_00000001.JPEG 65``; matched on the name up to
      its first dot);
    * ``--idx IMAGES LABELS``: an IDX image/label pair such as MNIST's ``.gz`` files.

Output (the layout of the released ES-ImageNet, Lin et al. 2021, arXiv:2110.12211)
    * ``OUT/train/class{label}/class{label}_{k}.npz`` with ``k`` the 1-based position of the image
      in its class's sorted listing (discarded images leave gaps), or ``OUT/val/<stem>.npz``;
      each file holds ``pos`` and ``neg``, uint8 ``[n, 3]`` ``(row, col, t)``. The archive has the
      layout of ``numpy.savez_compressed`` (deflated ``.npy`` members) with a fixed member
      timestamp, so identical inputs give byte-identical files;
    * ``OUT/trainlabel.txt`` / ``OUT/vallabel.txt``: one line per kept image,
      ``<path relative to OUT/<split>> <label> <h> <w>``, in listing order (``h, w``: resized).
    For IDX input the "listing" is the file order; val stems are ``<images file name>_<j:08d>``.

Scale-out and robustness
    * ``--workers N`` processes (``multiprocessing.Pool``, ``--chunksize`` jobs per task), tqdm bar;
    * ``--shard i/n``: image ``j`` of the listing belongs to shard ``j mod n``; under ``torchrun``
      the shard is taken from ``RANK``/``WORLD_SIZE`` when ``--shard`` is not given;
    * every ``.npz`` is written to a temporary name beside it and renamed (``os.replace``, see
      :mod:`spikeloom.atomic`), so a killed run leaves no partial output; temporaries of
      killed writers (their process is gone) are removed by the next run;
    * finished images (kept or discarded) are appended to
      ``OUT/.spikeloom_convert/<split>.<shard>.done``; a re-run skips images that are recorded
      there or whose ``.npz`` exists;
    * each shard writes its part of the label file when all its images are done; the shard that
      completes the set assembles ``<split>label.txt`` atomically (``--assemble-only`` does just
      that). Conversion options are stored in ``OUT/.spikeloom_convert/<split>.options.json``; a
      re-run with different options is refused.

Faithfulness options (defaults = the authors' converter): ``--size 254``, ``--threshold 0.18``,
``--min-events 1000``, ``--crop 16 240`` (``--no-crop``), ``--sampling torch`` (see
:func:`spikeloom.events.odg.nearest_indices`). Known differences: listings are sorted (the
authors used ``os.walk`` order); images are decoded with PIL (the authors used OpenCV on PNG
copies of ImageNet; JPEG decoders can differ by one grey level, CMYK JPEGs may convert
differently; EXIF orientation is not applied); 16-bit images are reduced to 8 bits by
``>> 8`` as OpenCV does.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import sys
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_write_bytes, atomic_write_text, clean_stale_temps
from .errors import ConvertError
from .events.odg import ES_IMAGENET, convert_image, resized_shape

__all__ = [
    "ConvertError",
    "ConvertOptions",
    "Job",
    "add_arguments",
    "build_parser",
    "convert_job",
    "main",
    "npz_bytes",
    "plan_folder_jobs",
    "plan_idx_jobs",
    "run",
    "run_conversion",
]

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff",
                    ".webp")
STATE_DIR = ".spikeloom_convert"


@dataclass(frozen=True)
class ConvertOptions:
    """ODG parameters of a conversion (defaults: the authors' ES-ImageNet converter)."""

    size: int = ES_IMAGENET.size
    threshold: float = ES_IMAGENET.threshold
    min_events: int = ES_IMAGENET.min_events
    crop: tuple[int, int] | None = ES_IMAGENET.crop
    sampling: str = "torch"

    def __post_init__(self) -> None:
        if self.size < 3:
            raise ConvertError(f"--size must be >= 3, got {self.size}")
        if self.sampling not in ("torch", "floor", "center"):
            raise ConvertError(f"--sampling must be torch, floor or center, got {self.sampling}")
        if self.crop is None and self.size + 4 > 256:
            raise ConvertError(
                f"without a crop the canvas is {self.size + 4} pixels wide and coordinates do "
                "not fit the uint8 npz format; use --size <= 252 or keep --crop"
            )
        if self.crop is not None and not (0 <= self.crop[0] < self.crop[1] <= 256):
            raise ConvertError(f"--crop LO HI needs 0 <= LO < HI <= 256, got {self.crop}")

    def crop_warning(self) -> str | None:
        """A warning when the crop discards much of the image (e.g. ``--size 28`` with the
        ES-ImageNet crop 16..240 keeps only rows and columns >= 16)."""
        kept = ES_IMAGENET.replace(size=self.size, crop=self.crop).kept_fraction()
        if kept >= 0.8:
            return None
        return (f"--crop {self.crop[0]} {self.crop[1]} keeps only {kept:.0%} of the rows and "
                f"columns of a {self.size}-pixel image (the default crop is made for --size "
                f"{ES_IMAGENET.size}); pass --no-crop to keep every event")


@dataclass(frozen=True)
class Job:
    """One image to convert.

    ``index``: position in the global listing (shard = index mod n); ``rel``: output path
    relative to ``OUT/<split>`` (posix); ``label``: class; ``path``: image file, or ``None`` with
    ``image`` holding the pixels (IDX input).
    """

    index: int
    rel: str
    label: int
    path: str | None = None
    image: np.ndarray | None = None


# --------------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------------


def _list_images(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.name,
    )


def _stem(name: str) -> str:
    return name.split(".", 1)[0]


def plan_folder_jobs(
    src: Path | str, split: str = "train", val_labels: Path | str | None = None
) -> list[Job]:
    """Jobs for an image folder (see the module docstring for the layouts and names)."""
    src = Path(src)
    if not src.is_dir():
        raise ConvertError(f"source folder {src} does not exist")
    jobs: list[Job] = []
    if val_labels is not None:
        if split != "val":
            raise ConvertError("--val-labels only applies to --split val")
        table: dict[str, int] = {}
        for n, line in enumerate(Path(val_labels).read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2 or not parts[1].lstrip("-").isdigit():
                raise ConvertError(
                    f"{val_labels}:{n}: expected '<file name> <label>', got {line!r}"
                )
            table[_stem(parts[0])] = int(parts[1])
        images = _list_images(src)
        missing = [p.name for p in images if _stem(p.name) not in table]
        if missing:
            raise ConvertError(
                f"{len(missing)} images of {src} have no label in {val_labels} "
                f"(first: {missing[0]})"
            )
        for j, p in enumerate(images):
            jobs.append(Job(j, f"{_stem(p.name)}.npz", table[_stem(p.name)], str(p)))
        _check_unique(jobs, src)
        return jobs
    classes = sorted(d.name for d in src.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ConvertError(
            f"{src} has no class sub-folders; for a flat val folder pass --split val "
            "--val-labels FILE"
        )
    j = 0
    for label, name in enumerate(classes):
        for k, p in enumerate(_list_images(src / name), 1):
            if split == "train":
                rel = f"class{label}/class{label}_{k}.npz"
            else:
                rel = f"{_stem(p.name)}.npz"
            jobs.append(Job(j, rel, label, str(p)))
            j += 1
    if not jobs:
        raise ConvertError(f"no images with extensions {IMAGE_EXTENSIONS} under {src}")
    _check_unique(jobs, src)
    return jobs


def _check_unique(jobs: Sequence[Job], src: Path) -> None:
    seen: dict[str, str | None] = {}
    for job in jobs:
        if job.rel in seen:
            raise ConvertError(
                f"two images of {src} map to the same output {job.rel}: {seen[job.rel]} and "
                f"{job.path}; val names must be unique"
            )
        seen[job.rel] = job.path


def _read_idx(path: Path | str) -> np.ndarray:
    from .events.io import read_idx

    return read_idx(path)


def plan_idx_jobs(images: Path | str, labels: Path | str, split: str = "train") -> list[Job]:
    """Jobs for an IDX pair (``[N, H, W]`` uint8 images, ``[N]`` labels)."""
    imgs, labs = _read_idx(images), _read_idx(labels)
    if imgs.ndim not in (3, 4) or labs.ndim != 1 or len(imgs) != len(labs):
        raise ConvertError(
            f"IDX images {imgs.shape} and labels {labs.shape} do not match: expected [N, H, W] "
            "and [N]"
        )
    if imgs.dtype != np.uint8:
        raise ConvertError(f"IDX images must be uint8, got {imgs.dtype}")
    prefix = Path(images).name
    prefix = prefix[:-3] if prefix.endswith(".gz") else prefix
    counters: dict[int, int] = {}
    jobs = []
    for j in range(len(imgs)):
        label = int(labs[j])
        if split == "train":
            counters[label] = counters.get(label, 0) + 1
            rel = f"class{label}/class{label}_{counters[label]}.npz"
        else:
            rel = f"{prefix}_{j + 1:08d}.npz"
        jobs.append(Job(j, rel, label, None, imgs[j]))
    return jobs


# --------------------------------------------------------------------------------------------
# one image
# --------------------------------------------------------------------------------------------


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``.npz`` bytes: deflated ``<name>.npy`` members (as ``savez_compressed``), fixed date."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _load_image(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("L", "RGB"):
            return np.asarray(im)
        if im.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey: keep the high byte
            return (np.asarray(im).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)
        return np.asarray(im.convert("RGB"))


def _source_shape(job: Job) -> tuple[int, int]:
    if job.image is not None:
        return int(job.image.shape[0]), int(job.image.shape[1])
    from PIL import Image

    with Image.open(job.path) as im:  # header only
        w, h = im.size
    return h, w


@dataclass(frozen=True)
class Record:
    """Outcome of one job: ``status`` is ``kept``, ``discarded`` or ``error``."""

    rel: str
    status: str
    h: int = 0
    w: int = 0
    events: int = 0
    message: str = ""

    def line(self) -> str:
        return f"{self.rel} {self.status} {self.h} {self.w} {self.events}\n"


def convert_job(job: Job, out_split: Path | str, options: ConvertOptions) -> Record:
    """Convert one image and write its ``.npz`` atomically; never raises for a bad image."""
    try:
        img = job.image if job.image is not None else _load_image(job.path)
        res = convert_image(
            img, size=options.size, threshold=options.threshold, min_events=options.min_events,
            crop=options.crop, sampling=options.sampling,  # type: ignore[arg-type]
        )
        if res is None:
            h, w = resized_shape(img.shape[0], img.shape[1], options.size)
            return Record(job.rel, "discarded", h, w, 0)
        final = Path(out_split) / job.rel
        final.parent.mkdir(parents=True, exist_ok=True)
        # no fsync: a killed run never leaves a partial file (rename after write), and the
        # next run removes the temporaries of killed writers (spikeloom.atomic)
        atomic_write_bytes(final, npz_bytes(res.npz_arrays()), fsync=False, make_dirs=False)
        return Record(job.rel, "kept", res.h, res.w, res.num_events)
    except Exception as exc:  # reported by the caller, the job stays undone
        return Record(job.rel, "error", message=f"{job.path or job.rel}: {exc!r}")


_WORKER: dict[str, object] = {}


def _worker_init(out_split: str, options: ConvertOptions) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER["out"] = out_split
    _WORKER["options"] = options


def _worker_run(job: Job) -> tuple[int, Record]:
    return job.index, convert_job(job, _WORKER["out"], _WORKER["options"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# state files
# --------------------------------------------------------------------------------------------


def _read_records(state: Path, split: str) -> dict[str, Record]:
    """Records from every ``<split>.*.done`` file (any shard layout); partial lines ignored."""
    out: dict[str, Record] = {}
    for f in sorted(state.glob(f"{split}.*.done")):
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) != 5 or parts[1] not in ("kept", "discarded"):
                continue
            try:
                out[parts[0]] = Record(parts[0], parts[1], int(parts[2]), int(parts[3]),
                                       int(parts[4]))
            except ValueError:
                continue
    return out


def _open_done_file(path: Path):
    """Append handle; first cut a partial last line left by a killed run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
    return open(path, "a", buffering=1)


def _check_options(state: Path, split: str, options: ConvertOptions) -> None:
    path = state / f"{split}.options.json"
    wanted = asdict(options)
    wanted["crop"] = list(options.crop) if options.crop is not None else None
    if path.exists():
        stored = json.loads(path.read_text())
        if stored != wanted:
            raise ConvertError(
                f"{path.parent.parent} holds a {split} conversion made with options {stored}; "
                f"this run asks for {wanted}. Use another output folder (or delete it)."
            )
    else:
        atomic_write_text(path, json.dumps(wanted, sort_keys=True) + "\n")


def _scan_outputs(out_split: Path, jobs: Sequence[Job]) -> set[str]:
    """Existing outputs among ``jobs``; removes temporaries of these jobs whose writer died."""
    by_dir: dict[str, set[str]] = {}
    for job in jobs:
        d, _, name = job.rel.rpartition("/")
        by_dir.setdefault(d, set()).add(name)
    existing: set[str] = set()
    for d, names in by_dir.items():
        folder = out_split / d if d else out_split
        if not folder.is_dir():
            continue
        temporaries = False
        with os.scandir(folder) as it:
            for entry in it:
                n = entry.name
                if n in names:
                    existing.add(f"{d}/{n}" if d else n)
                elif n.startswith(".") and n.endswith(".tmp"):
                    temporaries = True
        if temporaries:  # a second scan only where leftovers may be
            clean_stale_temps(folder, targets=names)
    return existing


def _assemble(out: Path, split: str, n_shards: int) -> bool:
    """Write ``<split>label.txt`` from the part files when all ``n_shards`` exist."""
    state = out / STATE_DIR
    parts = [state / f"{split}label.part{i}of{n_shards}" for i in range(n_shards)]
    if not all(p.exists() for p in parts):
        return False
    lines: list[tuple[int, str]] = []
    for p in parts:
        for line in p.read_text().splitlines():
            j, _, rest = line.partition(" ")
            lines.append((int(j), rest))
    lines.sort()
    atomic_write_text(out / f"{split}label.txt", "".join(f"{rest}\n" for _, rest in lines))
    return True


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------


def _convert_all(
    todo: Sequence[Job], out_split: Path, options: ConvertOptions, workers: int, chunksize: int
) -> Iterator[Record]:
    """Records of the converted jobs, in completion order (a process pool when ``workers > 1``)."""
    if workers <= 1 or len(todo) <= 1:
        for job in todo:
            yield convert_job(job, out_split, options)
        return
    pool = mp.get_context().Pool(
        min(workers, len(todo)), initializer=_worker_init, initargs=(str(out_split), options)
    )
    try:
        for _, rec in pool.imap_unordered(_worker_run, todo, chunksize=max(1, chunksize)):
            yield rec
    finally:
        pool.terminate()
        pool.join()


def run_conversion(
    jobs: Sequence[Job],
    out: Path | str,
    split: str = "train",
    options: ConvertOptions | None = None,
    *,
    shard: tuple[int, int] = (0, 1),
    workers: int = 1,
    chunksize: int = 16,
    progress: bool = True,
) -> dict[str, object]:
    """Convert the jobs of one shard into ``out`` (resumable) and assemble the label file.

    Returns a summary dict: ``converted``, ``skipped`` (already done), ``kept``,
    ``discarded`` (whole shard), ``errors`` (list of messages), ``assembled`` (bool).
    """
    from tqdm import tqdm

    options = options or ConvertOptions()
    out = Path(out)
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ConvertError(f"shard must be i/n with 0 <= i < n, got {i}/{n}")
    if split not in ("train", "val"):
        raise ConvertError(f"split must be train or val, got {split!r}")
    state = out / STATE_DIR
    out_split = out / split
    out_split.mkdir(parents=True, exist_ok=True)
    _check_options(state, split, options)
    if (why := options.crop_warning()) is not None:
        warnings.warn(why, UserWarning, stacklevel=2)
    if i == 0:
        _write_meta(out, split, jobs, options)

    mine = [job for job in jobs if job.index % n == i]
    records = _read_records(state, split)
    existing = _scan_outputs(out_split, mine)
    clean_stale_temps(state, targets={f"{split}label.part{i}of{n}", f"{split}.options.json"})
    clean_stale_temps(out, targets={f"{split}label.txt"})
    todo: list[Job] = []
    errors: list[str] = []
    with _open_done_file(state / f"{split}.shard{i}of{n}.done") as done_file:
        for job in mine:
            rec = records.get(job.rel)
            if job.rel in existing:
                if rec is None or rec.status != "kept":  # written, killed before recorded
                    h, w = resized_shape(*_source_shape(job), options.size)
                    records[job.rel] = rec = Record(job.rel, "kept", h, w, -1)
                    done_file.write(rec.line())
            elif rec is None or rec.status != "discarded":  # new, or its npz went missing
                todo.append(job)
        bar = tqdm(total=len(mine), initial=len(mine) - len(todo), unit="img",
                   desc=f"convert {split} shard {i}/{n}", disable=not progress)
        results = _convert_all(todo, out_split, options, workers, chunksize)
        try:
            for rec in results:
                if rec.status == "error":
                    errors.append(rec.message)
                else:
                    records[rec.rel] = rec
                    done_file.write(rec.line())
                bar.update(1)
        finally:
            results.close()  # stops the worker pool at once, also after an error
            bar.close()

    kept, summary = _summary(mine, todo, errors, records)
    if errors:
        return summary
    part = "".join(
        f"{job.index} {job.rel} {job.label} {records[job.rel].h} {records[job.rel].w}\n"
        for job in kept
    )
    atomic_write_text(state / f"{split}label.part{i}of{n}", part)
    summary["assembled"] = _assemble(out, split, n)
    return summary


def _summary(mine: Sequence[Job], todo: Sequence[Job], errors: list[str],
             records: dict[str, Record]) -> tuple[list[Job], dict[str, object]]:
    """The kept jobs of this shard and the summary of :func:`run_conversion`."""
    status = {rel: rec.status for rel, rec in records.items()}
    kept = [job for job in mine if status.get(job.rel) == "kept"]
    return kept, {
        "converted": len(todo) - len(errors),
        "skipped": len(mine) - len(todo),
        "kept": len(kept),
        "discarded": sum(1 for job in mine if status.get(job.rel) == "discarded"),
        "errors": errors,
        "assembled": False,
    }


META_NAME = "meta.json"


def _write_meta(out: Path, split: str, jobs: Sequence[Job], options: ConvertOptions) -> None:
    """``OUT/meta.json``: what a reader needs to build frames without scanning the files
    (sensor size, time steps, classes; one entry per split for the classes)."""
    path = out / META_NAME
    meta = json.loads(path.read_text()) if path.exists() else {}
    labels = sorted({int(job.label) for job in jobs})
    meta.update({
        "format": "spikeloom-convert/1",
        "sensor_size": [options.size + ES_IMAGENET.pad] * 2 + [2],  # canvas coordinates
        "T": ES_IMAGENET.steps,
        "size": options.size, "crop": list(options.crop) if options.crop else None,
        "threshold": options.threshold, "min_events": options.min_events,
    })
    meta.setdefault("splits", {})[split] = {"num_classes": labels[-1] + 1 if labels else 0,
                                            "images": len(jobs)}
    atomic_write_text(path, json.dumps(meta, indent=2) + "\n")


def _parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        rank = int(os.environ.get("RANK", "0") or 0)
        return (rank, world) if world > 1 else (0, 1)
    try:
        a, b = text.split("/")
        i, n = int(a), int(b)
    except ValueError:
        raise ConvertError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ConvertError(f"--shard i/n needs 0 <= i < n, got {text}")
    return i, n


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of ``spikeloom convert`` to ``p`` (a parser or a CLI sub-parser)."""
    g = ES_IMAGENET
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="SRC_DIR OUT_DIR, or only OUT_DIR with --idx")
    p.add_argument("--idx", nargs=2, metavar=("IMAGES", "LABELS"),
                   help="IDX image and label files (e.g. MNIST .gz) instead of SRC_DIR")
    p.add_argument("--split", choices=("train", "val"), default="train",
                   help="output layout: train/classK/classK_k.npz or val/<stem>.npz")
    p.add_argument("--val-labels", metavar="FILE",
                   help="for --split val: lines '<file name> <label>' for a flat image folder")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="worker processes (default: all cores)")
    p.add_argument("--chunksize", type=int, default=16, help="images per worker task")
    p.add_argument("--shard", metavar="i/n",
                   help="convert only images j with j mod n == i (default: RANK/WORLD_SIZE)")
    p.add_argument("--size", type=int, default=g.size, help=f"longer side ({g.size})")
    p.add_argument("--threshold", type=float, default=g.threshold,
                   help=f"event threshold ({g.threshold})")
    p.add_argument("--min-events", type=int, default=g.min_events,
                   help=f"discard images with fewer events ({g.min_events})")
    p.add_argument("--crop", nargs=2, type=int, metavar=("LO", "HI"), default=g.crop,
                   help="keep events with LO < row, col < HI (16 240)")
    p.add_argument("--no-crop", action="store_true", help="keep all events (size <= 252)")
    p.add_argument("--sampling", choices=("torch", "floor", "center"), default="torch",
                   help="nearest-neighbour index rule (torch = the authors' F.interpolate)")
    p.add_argument("--assemble-only", action="store_true",
                   help="only (re)build the label file from finished shards")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """Stand-alone argument parser of ``spikeloom convert`` (``python -m spikeloom.convert``)."""
    p = argparse.ArgumentParser(
        prog="spikeloom convert",
        description="Convert images to ES-ImageNet-style ODG event files "
        "(Lin et al. 2021, arXiv:2110.12211).",
    )
    add_arguments(p)
    return p


def _plan(args: argparse.Namespace) -> tuple[list[Job], ConvertOptions]:
    options = ConvertOptions(
        size=args.size, threshold=args.threshold, min_events=args.min_events,
        crop=None if args.no_crop else (int(args.crop[0]), int(args.crop[1])),
        sampling=args.sampling,
    )
    if args.idx:
        if args.val_labels:
            raise ConvertError("--val-labels is for image folders; IDX files carry labels")
        return plan_idx_jobs(args.idx[0], args.idx[1], args.split), options
    return plan_folder_jobs(args.paths[0], args.split, args.val_labels), options


def _report(summary: dict[str, object], shard: tuple[int, int], min_events: int) -> int:
    i, n = shard
    errors = summary["errors"]
    print(
        f"shard {i}/{n}: {summary['converted']} converted, {summary['skipped']} already done; "
        f"{summary['kept']} kept, {summary['discarded']} discarded (< {min_events} "
        f"events); label file {'assembled' if summary['assembled'] else 'waits for other shards'}"
        if not errors else f"shard {i}/{n}: {len(errors)} images failed (label file not written):"
    )
    for msg in errors[:20]:  # type: ignore[index]
        print(f"  {msg}", file=sys.stderr)
    return 1 if errors else 0


def run(args: argparse.Namespace) -> int:
    """Run ``spikeloom convert`` with parsed arguments (see :func:`add_arguments`).

    Returns the exit status: 0 done, 1 some images failed (or ``--assemble-only`` found shard
    parts missing), 2 a usage or input problem (printed as one line on stderr).
    """
    try:
        want = 1 if (args.idx or args.assemble_only) else 2
        if len(args.paths) != want:
            raise ConvertError(
                "expected OUT_DIR only (with --idx or --assemble-only)" if want == 1
                else "expected SRC_DIR OUT_DIR"
            )
        out = Path(args.paths[-1])
        shard = _parse_shard(args.shard)
        if args.assemble_only:
            ok = _assemble(out, args.split, shard[1])
            print(f"{args.split}label.txt " + ("assembled" if ok else "not assembled: shard "
                                              "parts missing"))
            return 0 if ok else 1
        jobs, options = _plan(args)
        summary = run_conversion(
            jobs, out, args.split, options, shard=shard, workers=args.workers,
            chunksize=args.chunksize, progress=not args.no_progress,
        )
    except ConvertError as exc:
        print(f"spikeloom convert: error: {exc}", file=sys.stderr)
        return 2
    return _report(summary, shard, options.min_events)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``spikeloom convert`` / ``python -m spikeloom.convert``; exit status."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
