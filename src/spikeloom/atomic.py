"""Atomic file writes: write a temporary file beside the target, then ``os.replace`` it.

A reader (or a process killed half-way through the write) therefore sees either the old file
or the complete new one, never a partial file. Used for checkpoints, configs, reports, event
files, cached frames and converted datasets.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], Any],
    *,
    fsync: bool = True,
    make_dirs: bool = True,
    tmp_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Call ``write(fh)`` on a temporary binary file beside ``path``, then rename it to ``path``.

    Args:
        path: destination.
        write: callback writing the content to the open binary file handle.
        fsync: flush the data to disk before the rename (durability across power loss; a
            killed process never leaves a partial file either way).
        make_dirs: create the destination folder if needed (otherwise a missing folder raises
            ``FileNotFoundError`` naming it).
        tmp_path: name of the temporary file (default: a unique ``.<name>.XXXX.tmp`` beside
            ``path``); callers that clean up leftovers of killed runs choose a recognisable one.

    Returns:
        the destination path. On any error the temporary file is removed and the error raised.
    """
    dest = Path(path)
    directory = dest.parent
    if make_dirs:
        directory.mkdir(parents=True, exist_ok=True)
    elif not directory.is_dir():
        raise FileNotFoundError(f"directory {directory} does not exist (writing {dest})")
    if tmp_path is None:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=directory)
        fh = os.fdopen(fd, "wb")
    else:
        tmp = os.fspath(tmp_path)
        fh = open(tmp, "wb")  # noqa: SIM115 - closed below
    try:
        with fh:
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return dest


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, **kwargs: Any) -> Path:
    """Atomically write ``data`` to ``path`` (see :func:`atomic_write` for the options)."""
    return atomic_write(path, lambda fh: fh.write(data), **kwargs)


def atomic_write_text(path: str | os.PathLike[str], text: str, **kwargs: Any) -> Path:
    """Atomically write UTF-8 ``text`` to ``path`` (see :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode("utf-8"), **kwargs)
