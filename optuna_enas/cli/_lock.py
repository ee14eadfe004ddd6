"""One writer per supernet checkpoint: an advisory lock with its owner written in it.

Two ``search`` processes on one study would both train their own copy of the supernet and
write the same checkpoint: the later write silently drops the other's training, and each runs
``--trials`` more trials. :class:`CheckpointLock` refuses the second one.

The lock is ``fcntl.flock`` on ``<checkpoint>.lock``. The kernel releases it when its process
ends in any way (Ctrl-C, SIGTERM, SIGKILL, a crash), so a lock left by a dead process is taken
over at once by the next ``search``. The file holds the owner (pid, host, start time, study)
for the message; it is removed when the lock is released. Where ``fcntl`` is missing (Windows)
there is no lock.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from optuna_enas.cli._errors import PROG
from optuna_enas.cli._errors import UsageError


MULTI_WORKER_HINT = (
    "To run several workers on one study, use one shared storage and give each worker its own "
    "supernet (the Python API: examples/multi_worker.py, docs/cli.md 'Several workers'); "
    f"to run searches side by side, give each `{PROG} search` its own --study-name."
)


def lock_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + ".lock")


class CheckpointLock:
    """An exclusive lock on ``checkpoint``, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, checkpoint: Path, *, owner: dict[str, Any]) -> None:
        self.path = lock_path(checkpoint)
        self._checkpoint = checkpoint
        self._owner = owner
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`UsageError` naming its holder."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        for _ in range(10):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_owner(fd)
                os.close(fd)
                raise UsageError(self._held_message(holder)) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed the file as we opened it: take the new one
                os.close(fd)
                continue
            owner = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                **self._owner,
            }
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(owner) + "\n").encode())
            self._fd = fd
            return
        raise UsageError(f"--checkpoint {str(self._checkpoint)!r}: could not take its lock.")

    def release(self) -> None:
        """Remove the lock file and release the lock (no-op when not held)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> CheckpointLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _held_message(self, holder: dict[str, Any]) -> str:
        who = "another process"
        if holder:
            who = (
                f"process {holder.get('pid')} on {holder.get('host')} (study "
                f"{holder.get('study')!r}, since {holder.get('since')})"
            )
        return (
            f"the supernet checkpoint {str(self._checkpoint)!r} is being trained by {who}; "
            "a second writer would overwrite its weights and run the trials twice. Wait for "
            f"it to finish (a crashed run's lock is released with it). {MULTI_WORKER_HINT}"
        )


def _read_owner(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0)
        owner = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}
