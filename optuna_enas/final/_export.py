"""Export an architecture to a JSON file (with the ENAS ``fixed_arc`` string) and import it."""

from __future__ import annotations

import json
from pathlib import Path

from optuna_enas._atomic import atomic_write_text
from optuna_enas.spaces._enas import space_from_dict
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace


_FORMAT = "optuna-enas-architecture"
_VERSION = 1


def export_architecture(arch: Architecture, space: SearchSpace, path: str | Path) -> Path:
    """Write ``arch`` and its space as JSON (atomically), with the ENAS ``fixed_arc`` string.

    The file holds ``format``, ``version``, ``space`` (:meth:`SearchSpace.to_dict`),
    ``architecture`` (``{"space", "params"}``), ``fixed_arc`` (accepted by the official ENAS
    scripts for the ENAS spaces) and a human-readable ``description``.
    """
    if not isinstance(arch, Architecture):
        raise ValueError(f"arch must be an Architecture, but got {arch!r}.")
    arch = space.architecture(arch.to_params())
    payload = {
        "format": _FORMAT,
        "version": _VERSION,
        "space": space.to_dict(),
        "architecture": json.loads(arch.to_json()),
        "fixed_arc": space.to_fixed_arc(arch),
        "description": space.describe(arch),
    }
    return atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def import_architecture(path: str | Path) -> tuple[Architecture, SearchSpace]:
    """Read a file written by :func:`export_architecture`.

    A hand-written file may give only ``space`` and ``fixed_arc``.

    Returns:
        The architecture and its search space.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not valid JSON, not an architecture file, or inconsistent.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: architecture file does not exist.")
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"path={str(path)!r} is not a JSON architecture file ({e}).") from e
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(f"path={str(path)!r} is not an optuna-enas architecture file.")
    if data.get("version") != _VERSION:
        raise ValueError(
            f"path={str(path)!r} has version {data.get('version')!r}; expected {_VERSION}."
        )
    try:
        space = space_from_dict(data["space"])
        if "architecture" in data:
            arch = Architecture.from_json(json.dumps(data["architecture"]))
            arch = space.architecture(arch.to_params())
            if "fixed_arc" in data and space.to_fixed_arc(arch) != data["fixed_arc"]:
                raise ValueError(
                    f"fixed_arc {data['fixed_arc']!r} disagrees with the params "
                    f"({space.to_fixed_arc(arch)!r})."
                )
        else:
            arch = space.from_fixed_arc(str(data["fixed_arc"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"path={str(path)!r} holds an invalid architecture: {e}") from e
    return arch, space


__all__ = ["export_architecture", "import_architecture"]
