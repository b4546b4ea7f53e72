"""The run directory: a lock held for the run's life and the checks before a run starts.

* :class:`RunLock` — ``RUN_DIR/.lock`` holds ``host pid``; it is created exclusively, so a
  second ``spikeloom train`` into the same directory is refused while the first one runs. A lock
  left by a dead process of this host is taken over.
* :func:`prepare_run_dir` — a fresh run refuses a directory that already holds run files
  (``--resume`` continues it, ``--overwrite`` deletes its run files first); the directory must
  be writable before any data or model is built; leftover temporary files of killed writers
  are removed.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from ..atomic import clean_stale_temps, host_tag, pid_alive
from ..errors import ConfigError

__all__ = ["RunLock", "prepare_run_dir", "RUN_FILES"]

#: what a run writes into its directory (removed by ``--overwrite``)
RUN_FILES = ("config.yaml", "metrics.jsonl", "final.json", "cost.json", "checkpoints", "plots")
LOCK_NAME = ".lock"


class RunLock:
    """Exclusive lock on a run directory for the life of one run (a context manager)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def _owner(self) -> tuple[str, int] | None:
        try:
            host, pid = self.path.read_text().split()
            return host, int(pid)
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        """Take the lock; raises :class:`ConfigError` when another live run holds it."""
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and owner[0] == host_tag() and not pid_alive(owner[1]):
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                who = f"process {owner[1]} on {owner[0]}" if owner else "another process"
                raise ConfigError(
                    f"{self.path.parent} is in use by {who} (lock file {self.path}); wait for "
                    "that run to end or choose another --out. If no such run exists, delete "
                    "the lock file."
                ) from None
            with os.fdopen(fd, "w") as f:
                f.write(f"{host_tag()} {os.getpid()}\n")
            self.held = True
            return
        raise ConfigError(f"could not take the lock {self.path}")  # pragma: no cover

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def prepare_run_dir(run_dir: Path, lock: RunLock, *, resuming: bool, overwrite: bool) -> None:
    """Create ``run_dir``, take ``lock`` and check the directory can hold this run (see the
    module docstring)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test.{socket.gethostname()}.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"cannot write to the run directory {run_dir}: {e.strerror}; choose "
                          "another --out") from None
    lock.acquire()
    present = [n for n in RUN_FILES if (run_dir / n).exists()]
    if present and not resuming:
        if not overwrite:
            raise ConfigError(
                f"{run_dir} already holds a run ({', '.join(present)}). Continue it with "
                f"`spikeloom train --resume {run_dir}`, start over in it with --overwrite, or "
                "choose another --out."
            )
        for name in present:
            p = run_dir / name
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    for folder in (run_dir, run_dir / "checkpoints"):
        clean_stale_temps(folder, stale_after=0 if resuming else 3600)
