"""The event file format registry and :func:`read_events`, which picks the reader of a file.

Each format module registers itself with :func:`register_format`: its name, the file suffixes
it uses, an optional content sniffer (magic bytes, or the members of a zip / HDF5 file), the
reader :func:`read_events` calls and a hint naming the specific public reader. Formats are
told apart by content first, then by suffix:

1. every sniffer sees the file's first bytes; when exactly one format claims the file (or
   several do but only one of them uses the file's suffix), that format is used;
2. otherwise, when exactly one format uses the suffix, that one is used (its reader then
   reports precisely what is wrong with the file);
3. otherwise :class:`~spikeloom.errors.EventFileError` lists the known formats.

So the ambiguous ``.aedat`` suffix is resolved by the ``#!AER-DAT2.0`` / ``#!AER-DAT3.1``
first line, ``.npz`` by the arrays inside (ES-ImageNet ``pos``/``neg`` or spikeloom's
``format`` tag) and ``.h5`` by its datasets (SHD ``spikes/times`` or spikeloom's ``format``
attribute). The ATIS ``.bin`` format of N-MNIST and N-Caltech101 has no magic bytes and is
taken by suffix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...errors import EventFileError
from ...registry import Registry
from ._common import PathLike

__all__ = ["FORMATS", "detect_format", "read_events", "register_format"]

Sniffer = Callable[[Path, bytes], bool]
"""``sniff(path, head) -> bool``: does the file (first bytes ``head``) look like the format?"""

FORMATS: Registry[Callable[..., Any]] = Registry("event file format")
"""Known event file formats: name -> the reader :func:`read_events` calls. Metadata per entry
(``FORMATS.entry(name).meta``): ``suffixes`` (lower case, with the dot), ``sniff``
(:data:`Sniffer` or ``None``), ``magic`` (what the sniffer looks for, for messages),
``description`` and ``hint`` (how to call the specific reader)."""

_HEAD_BYTES = 64


def register_format(
    name: str,
    reader: Callable[..., Any],
    *,
    suffixes: Sequence[str],
    description: str,
    hint: str,
    magic: bytes | None = None,
    sniff: Sniffer | None = None,
    magic_text: str | None = None,
    aliases: tuple[str, ...] = (),
) -> None:
    """Add a format to :data:`FORMATS` (called by each format module when it is imported).

    Args:
        name: canonical format name (``"aedat2"``, ...), also accepted by
            ``read_events(path, format=name)``.
        reader: ``reader(path, **kwargs)`` returning what the file holds.
        suffixes: file suffixes, e.g. ``(".aedat",)``.
        description: one line for messages (e.g. ``"AEDAT 2.0 (jAER)"``).
        hint: how to call the specific reader (e.g. ``"read_aedat2(path, camera=...)"``).
        magic: leading bytes that identify the file; builds the sniffer when ``sniff`` is None.
        sniff: a content test ``sniff(path, head)`` (for formats inside zip or HDF5 files).
        magic_text: how the content test is shown in messages (default: ``magic``).
        aliases: other accepted names.
    """
    if sniff is None and magic is not None:

        def sniff(path: Path, head: bytes, _magic: bytes = magic) -> bool:
            return head.startswith(_magic)

    if magic_text is None and magic is not None:
        magic_text = magic.decode("latin-1").strip()
    FORMATS.register(
        name,
        reader,
        aliases=aliases,
        suffixes=tuple(s.lower() for s in suffixes),
        sniff=sniff,
        magic=magic_text,
        description=description,
        hint=hint,
    )


def _known_formats() -> str:
    """One line per registered format: name, suffixes, content test and specific reader."""
    lines = []
    for name in FORMATS.names():
        meta = FORMATS.entry(name).meta
        content = f"content {meta['magic']}" if meta["magic"] else "no magic bytes"
        lines.append(
            f"  {name}: {meta['description']}; suffixes {', '.join(meta['suffixes'])}; "
            f"{content}; specific reader: {meta['hint']}"
        )
    return "\n".join(lines)


def _unknown(path: Path, head: bytes, why: str) -> EventFileError:
    return EventFileError(
        path,
        None,
        f"cannot tell the event file format ({why}; suffix {path.suffix or '(none)'!r}, first "
        f"bytes {head[:16]!r}). Known formats:\n{_known_formats()}\n"
        f"Call the specific reader, or read_events(path, format=<name>) with a name above.",
    )


def detect_format(path: PathLike) -> str:
    """The name of the format of ``path`` in :data:`FORMATS` (content first, then suffix).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        EventFileError: the format cannot be told; the message lists the known formats.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"event file {p} does not exist")
    with open(p, "rb") as fh:
        head = fh.read(_HEAD_BYTES)
    suffix = p.suffix.lower()
    entries = [FORMATS.entry(n) for n in FORMATS.names()]
    claimed = [e for e in entries if e.meta["sniff"] is not None and e.meta["sniff"](p, head)]
    if len(claimed) > 1:
        claimed = [e for e in claimed if suffix in e.meta["suffixes"]]
    if len(claimed) == 1:
        return claimed[0].name
    if claimed:
        names = ", ".join(e.name for e in claimed)
        raise _unknown(p, head, f"the content matches several formats: {names}")
    by_suffix = [e for e in entries if suffix in e.meta["suffixes"]]
    if len(by_suffix) == 1:
        return by_suffix[0].name
    if by_suffix:
        names = ", ".join(e.name for e in by_suffix)
        raise _unknown(
            p, head, f"the suffix fits {names} but the content fits none of them (damaged?)"
        )
    raise _unknown(p, head, "neither the content nor the suffix is known")


def read_events(path: PathLike, *, format: str | None = None, **kwargs: Any) -> Any:
    """Read an event file of any known format, picking the reader by content and suffix.

    Returns **what the file holds**, decoded by the plain reader of its format with its
    defaults; no dataset convention is applied (no CIFAR10-DVS axis remap, no ES-ImageNet
    centring, no DVS128 Gesture label slicing: call :func:`read_cifar10dvs`,
    ``read_es_imagenet_npz(path, centre=...)`` or :func:`read_dvs_gesture` for those).

    ====================  =====================  ===================================
    format                suffixes               reader
    ====================  =====================  ===================================
    ``atis``              ``.bin``               ``read_nmnist_bin`` (34×34) if every
                                                 event fits, else
                                                 ``read_ncaltech101_bin`` (240×180)
    ``aedat2``            ``.aedat``, ``.dat``   :func:`read_aedat2`
    ``aedat31``           ``.aedat``             :func:`read_aedat31`
    ``aedat4``            ``.aedat4``            :func:`read_aedat4`
    ``es_imagenet``       ``.npz``               :func:`read_es_imagenet_npz`
    ``spikeloom``         ``.npz``, ``.h5``      :func:`load_events`
    ``shd``               ``.h5``, ``.hdf5``     :func:`read_shd` (an :class:`SHDFile`)
    ====================  =====================  ===================================

    Args:
        path: the file.
        format: a name (or alias) of :data:`FORMATS` to skip the detection.
        **kwargs: passed to the reader (e.g. ``strict=False``, ``camera="dvs128"``).

    Returns:
        An :class:`~spikeloom.events.core.EventArray` ``[N]``, or for SHD (one file, many
        samples) an :class:`SHDFile`.

    Raises:
        EventFileError: the format cannot be told (the message lists the known formats with
            their suffixes and specific readers), or the file is damaged.
        UnknownNameError: ``format`` is not a known name.
    """
    name = detect_format(path) if format is None else format
    return FORMATS.get(name)(path, **kwargs)
