"""Atomic, durable file writes: a crash leaves either the old file or the new one, never a mix.

The content goes to a temporary file in the destination's directory, is flushed and
``fsync``-ed, renamed over the destination with :func:`os.replace` (atomic on POSIX and
Windows), and the directory is ``fsync``-ed so the rename survives a power loss.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Create or replace ``path`` with what ``write(f)`` writes to a binary file.

    Parent directories are created. Returns the destination path.
    """
    dest = Path(path).expanduser()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(dest.parent)
    return dest


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write` of ``text`` in UTF-8."""
    data = text.encode("utf-8")

    def write(f: BinaryIO) -> None:
        f.write(data)

    return atomic_write(path, write)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename durable; directories cannot be opened on Windows, hence the suppress.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = ["atomic_write", "atomic_write_text"]
