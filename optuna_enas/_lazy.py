"""PEP 562 lazy exports: a package names its public objects without importing their modules.

``import optuna_enas`` must not import torch: the spaces (and the CLI's argument parsing) work
without it, and torch takes about a second to import. A package lists ``{name: module}`` and
installs the two hooks below; each module is imported on first access of one of its names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` that import ``exports[name]`` on first use."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals_ = importlib.import_module(package).__dict__
        globals_[name] = value  # later look-ups skip this hook
        return value

    def __dir__() -> list[str]:
        return sorted(set(importlib.import_module(package).__dict__) | set(exports))

    return __getattr__, __dir__
