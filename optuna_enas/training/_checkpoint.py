"""Atomic checkpoints of a state dict, and an optional upload to an Optuna artifact store.

:func:`save_checkpoint` writes to a temporary file in the destination directory, flushes and
``fsync``\\ s it, then renames it over the destination with :func:`os.replace` (atomic on POSIX
and Windows) and ``fsync``\\ s the directory. A crash at any point leaves either the previous
checkpoint or the new one, never a torn file.

:func:`load_checkpoint` uses ``torch.load(weights_only=True)``: tensors, containers and plain
Python values only, so loading an untrusted file cannot run code.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import torch

from optuna_enas._atomic import atomic_write


if TYPE_CHECKING:
    import optuna


_logger = logging.getLogger(__name__)

FORMAT = "optuna-enas-checkpoint"
"""Value of the ``"format"`` key of every checkpoint."""
VERSION = 1
"""Current checkpoint format version."""


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """Atomically write ``state`` to ``path`` (parent directories are created).

    ``state`` may hold tensors, dicts, lists, tuples, strings, numbers, bools and ``None``
    (what ``torch.load(weights_only=True)`` reads back). The keys ``"format"`` and
    ``"version"`` are added.

    Args:
        state: The state to save.
        path: Destination file.

    Returns:
        The destination path.
    """
    if not isinstance(state, Mapping):
        raise ValueError(f"state must be a mapping, but got {type(state).__name__}.")
    for key in ("format", "version"):
        if key in state:
            raise ValueError(f"state must not use the reserved key {key!r}.")
    payload = {"format": FORMAT, "version": VERSION, **state}
    dest = atomic_write(path, lambda f: torch.save(payload, f))
    _logger.debug("Saved checkpoint %s.", dest)
    return dest


def load_checkpoint(
    path: str | Path, *, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: The checkpoint file.
        map_location: Where tensors are loaded (default CPU).

    Returns:
        The saved state, without the ``"format"`` and ``"version"`` keys.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is corrupt, truncated, not a checkpoint of this package, or of a
            newer format version.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: checkpoint file does not exist.")
    try:
        payload = torch.load(src, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a bad file (pickle, zip, EOF, ...).
        raise ValueError(
            f"path={str(path)!r} is not a readable checkpoint ({type(e).__name__}: {e})."
        ) from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"path={str(path)!r} is not an optuna-enas checkpoint.")
    version = payload.get("version")
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise ValueError(
            f"path={str(path)!r} has checkpoint version {version!r}; this optuna-enas reads "
            f"versions 1 to {VERSION}."
        )
    payload.pop("format")
    payload.pop("version")
    return payload


def upload_checkpoint(
    path: str | Path,
    *,
    artifact_store: Any,
    study_or_trial: optuna.Study | optuna.Trial | optuna.trial.FrozenTrial,
    storage: optuna.storages.BaseStorage | None = None,
) -> str:
    """Upload a checkpoint file to an Optuna artifact store and return the artifact id.

    A thin wrapper of :func:`optuna.artifacts.upload_artifact`, which records the artifact in
    the study's (or trial's) system attributes so optuna-dashboard lists it. Download it with
    :func:`optuna.artifacts.download_artifact` and read it with :func:`load_checkpoint`.

    Example:

        .. code-block:: python

            from optuna.artifacts import FileSystemArtifactStore

            store = FileSystemArtifactStore("artifacts")
            evaluator.save("supernet.pt")
            upload_checkpoint("supernet.pt", artifact_store=store, study_or_trial=study)

    Args:
        path: The checkpoint file.
        artifact_store: For example ``optuna.artifacts.FileSystemArtifactStore(dir)``.
        study_or_trial: Where the artifact is recorded.
        storage: Needed only with a ``FrozenTrial``.
    """
    from optuna.artifacts import upload_artifact

    src = Path(path).expanduser()
    if not src.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: checkpoint file does not exist.")
    return upload_artifact(
        artifact_store=artifact_store,
        file_path=str(src),
        study_or_trial=study_or_trial,
        storage=storage,
        mimetype="application/octet-stream",
    )
