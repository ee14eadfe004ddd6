"""PEP 562 lazy exports, each package's public names listed once: in its ``__init__.pyi``.

``import optuna_enas`` must not import torch: the spaces (and the CLI's argument parsing) work
without it, and torch takes about a second to import. So a package's ``__init__.py`` imports
none of its modules; it ends with ::

    __getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)

and its public names are the lines of the stub ``__init__.pyi`` next to it. mypy and IDEs read
that file as the package's interface; at run time :func:`exports_from_stub` reads the same file
with :mod:`ast` into a table ``{name: module}``. A name's module is imported on the first
access of the name, ``dir()`` and ``__all__`` list the names without importing anything.

A stub holds only

- its docstring;
- ``from M import N as N``: the public name ``N`` is ``M.N`` (the redundant ``as N`` is how a
  stub re-exports a name for mypy and pyright);
- ``N: T`` for a name that ``__init__.py`` itself assigns before the call (``__version__``).

Anything else (a plain import, a definition, ``from M import N`` without ``as N``, a relative
import, a name listed twice) is a :class:`StubError` naming the file and the line, raised at
the package's import: the stub and the run time cannot drift apart.
"""

from __future__ import annotations

import ast
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any


class StubError(ImportError):
    """A package's ``__init__.pyi`` holds something other than the lines listed above."""


def read_stub(path: str | os.PathLike[str]) -> tuple[dict[str, str], list[str]]:
    """``({name: module}, declared names)`` of the stub at ``path`` (see the module docstring)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as e:
        raise StubError(f"{path}: the package's list of public names cannot be read ({e})") from e
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        raise StubError(f"{path}:{e.lineno}: not valid Python: {e.msg}") from e
    exports: dict[str, str] = {}
    declared: list[str] = []

    def new_name(name: str, line: int) -> str:
        if name in exports or name in declared:
            raise StubError(f"{path}:{line}: {name!r} is listed twice")
        return name

    for i, node in enumerate(tree.body):
        where = f"{path}:{node.lineno}"
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            if isinstance(node.value.value, str):
                continue  # the docstring
        if isinstance(node, ast.ImportFrom):
            if node.level or node.module is None or node.module == "__future__":
                raise StubError(
                    f"{where}: only absolute 'from M import N as N' lines list public names, "
                    f"but got {ast.unparse(node)!r}"
                )
            for alias in node.names:
                if alias.asname != alias.name:
                    raise StubError(
                        f"{where}: write 'from {node.module} import {alias.name} as "
                        f"{alias.name}' (the re-export form), but got {ast.unparse(node)!r}"
                    )
                exports[new_name(alias.name, node.lineno)] = node.module
        elif (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.value is None
        ):
            declared.append(new_name(node.target.id, node.lineno))
        else:
            raise StubError(
                f"{where}: a package stub holds only its docstring, 'from M import N as N' "
                f"lines and 'N: T' declarations, but got {ast.unparse(node)!r}"
            )
    return exports, declared


def exports_from_stub(
    package: str, init_file: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` of ``package`` from the ``__init__.pyi`` beside
    ``init_file`` (its ``__init__.py``): each listed name is imported on first access."""
    stub = os.path.splitext(init_file)[0] + ".pyi"
    exports, declared = read_stub(stub)
    namespace = sys.modules[package].__dict__
    missing = [name for name in declared if name not in namespace]
    if missing:
        raise StubError(f"{stub}: {init_file} does not assign {', '.join(missing)}")

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = importlib.import_module(module)
        try:
            value = getattr(imported, name)
        except AttributeError:
            raise StubError(
                f"{stub} lists {name!r} from {module!r}, which has no such name"
            ) from None
        namespace[name] = value  # later look-ups skip this hook
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__, sorted([*exports, *declared])
