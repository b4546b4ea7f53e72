"""Atomic file writes: write a temporary file beside the target, then ``os.replace`` it.

A reader (or a process killed half-way through the write) therefore sees either the old file
or the complete new one, never a partial file. Used for checkpoints, configs, reports, event
files, cached frames and converted datasets.

There is one temporary-name scheme, ``.<target>.<host>.<pid>.<random>.tmp`` in the target's
folder, so that a leftover of a killed writer can be told from an in-flight write of a live
process: :func:`clean_stale_temps` removes temporaries whose writer (same host) no longer runs,
and those of other hosts (or with unrecognised names) once they are older than ``stale_after``
seconds.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from collections.abc import Callable, Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "temp_path",
    "parse_temp_name",
    "TempName",
    "clean_stale_temps",
    "host_tag",
    "pid_alive",
]

_TMP_RE = re.compile(r"^\.(?P<target>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]+\.tmp$")


def host_tag() -> str:
    """This machine's name reduced to ``[A-Za-z0-9-]`` (part of every temporary name)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname() or "host")[:40] or "host"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def temp_path(dest: str | os.PathLike[str]) -> Path:
    """A fresh temporary name for ``dest``: ``.<name>.<host>.<pid>.<random>.tmp`` beside it."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.{host_tag()}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@dataclass(frozen=True)
class TempName:
    """The parts of a temporary name made by :func:`temp_path`."""

    target: str
    host: str
    pid: int


def parse_temp_name(name: str) -> TempName | None:
    """Split a temporary file name into target, host and pid (``None`` if not one of ours)."""
    m = _TMP_RE.match(name)
    if m is None:
        return None
    return TempName(m.group("target"), m.group("host"), int(m.group("pid")))


def clean_stale_temps(
    folder: str | os.PathLike[str],
    *,
    targets: Container[str] | None = None,
    stale_after: float = 3600.0,
) -> int:
    """Remove abandoned temporary files in ``folder``; return how many were removed.

    Args:
        folder: the folder to scan (not recursive).
        targets: only consider temporaries of these target file names (default: all).
        stale_after: age in seconds after which a temporary of another host, or one whose name
            is not ours, counts as abandoned. Temporaries of this host are abandoned exactly
            when their writer process is gone.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    me = host_tag()
    now = time.time()
    removed = 0
    with os.scandir(folder) as it:
        entries = [e for e in it if e.name.startswith(".") and e.name.endswith(".tmp")]
    for e in entries:
        info = parse_temp_name(e.name)
        if targets is not None and (info is None or info.target not in targets):
            continue
        try:
            age = now - e.stat().st_mtime
        except FileNotFoundError:
            continue  # its writer just renamed it
        if info is not None and info.host == me:
            stale = not pid_alive(info.pid)
        else:
            stale = age > stale_after
        if stale:
            try:
                os.unlink(e.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], Any],
    *,
    fsync: bool = True,
    make_dirs: bool = True,
) -> Path:
    """Call ``write(fh)`` on a temporary binary file beside ``path``, then rename it to ``path``.

    Args:
        path: destination.
        write: callback writing the content to the open binary file handle.
        fsync: flush the data to disk before the rename (durability across power loss; a
            killed process never leaves a partial file either way).
        make_dirs: create the destination folder if needed (otherwise a missing folder raises
            ``FileNotFoundError`` naming it).

    Returns:
        the destination path. On any error the temporary file is removed and the error raised.
    """
    dest = Path(path)
    directory = dest.parent
    if make_dirs:
        directory.mkdir(parents=True, exist_ok=True)
    elif not directory.is_dir():
        raise FileNotFoundError(f"directory {directory} does not exist (writing {dest})")
    tmp = temp_path(dest)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
    try:
        with os.fdopen(fd, "wb") as fh:
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
