"""The public surface: each package's ``__init__.pyi`` lists its names once (optuna_enas/_lazy.py).

The stubs are what mypy reads and what the packages export at run time; docs/api.md lists the
same names. These tests hold the three together, and check that a stub holding anything else
is refused at import with the file and the line.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.study import StudyDirection

import optuna_enas
from optuna_enas import sampler
from optuna_enas._lazy import StubError
from optuna_enas._lazy import read_stub


_PACKAGE_DIR = Path(optuna_enas.__file__).parent
_API_MD = _PACKAGE_DIR.parent / "docs" / "api.md"


def _stubs() -> dict[str, Path]:
    """``{package: its __init__.pyi}`` for every package of optuna_enas."""
    stubs = {}
    for init in sorted(_PACKAGE_DIR.rglob("__init__.py")):
        package = ".".join(init.parent.relative_to(_PACKAGE_DIR.parent).parts)
        stubs[package] = init.with_suffix(".pyi")
    return stubs


def _public(package: str) -> set[str]:
    exports, declared = read_stub(_stubs()[package])
    return set(exports) | set(declared)


def test_weighted_sum_reward_is_at_the_root_and_torch_free() -> None:
    assert optuna_enas.weighted_sum_reward is sampler.weighted_sum_reward
    assert "weighted_sum_reward" in dir(optuna_enas)
    reward = optuna_enas.weighted_sum_reward([1.0, 0.5])
    directions = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    assert reward((3.0, 4.0), directions) == 1.0 * 3.0 - 0.5 * 4.0
    code = (
        "import sys, optuna_enas; optuna_enas.weighted_sum_reward; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_package_has_a_stub_and_a_bare_init() -> None:
    stubs = _stubs()
    assert {"optuna_enas", "optuna_enas.spaces", "optuna_enas.cli"} <= set(stubs)
    for package, stub in stubs.items():
        assert stub.is_file(), f"{package} has no __init__.pyi"
        init = stub.with_suffix(".py").read_text()
        assert "_lazy.exports_from_stub(__name__, __file__)" in init, package
        assert "TYPE_CHECKING" not in init and "_EXPORTS" not in init, package


@pytest.mark.parametrize("package", sorted(_stubs()))
def test_every_stub_name_resolves_to_its_module(package: str) -> None:
    exports, declared = read_stub(_stubs()[package])
    module = importlib.import_module(package)
    for name, source in exports.items():
        assert getattr(module, name) is getattr(importlib.import_module(source), name)
    for name in declared:
        assert name in vars(module)


@pytest.mark.parametrize("package", sorted(_stubs()))
def test_dir_and_all_are_the_stub(package: str) -> None:
    module = importlib.import_module(package)
    public = _public(package)
    assert module.__all__ == sorted(public)

    def listed() -> set[str]:
        names = {n for n in dir(module) if not n.startswith("_") or n in public}
        return {n for n in names if f"{package}.{n}" not in sys.modules}  # not submodules

    assert listed() == public
    for name in public:
        getattr(module, name)
    assert listed() == public  # still, with every name loaded


def test_the_root_reexports_public_names_and_packages_export_their_own_modules() -> None:
    stubs = _stubs()
    for package, stub in stubs.items():
        exports, _ = read_stub(stub)
        for name, source in exports.items():
            if package == "optuna_enas":
                assert source in stubs and name in _public(source), (name, source)
            else:
                prefix, _, rest = source.rpartition(".")
                assert prefix == package and rest.startswith("_"), (package, name, source)


def _api_md_sections() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in _API_MD.read_text().splitlines():
        heading = re.fullmatch(r"## `([\w.]+)`", line)
        if heading:
            current = sections.setdefault(heading.group(1), [])
        elif current is not None and (row := re.match(r"\| `(\w+)` \|", line)):
            current.append(row.group(1))
    return sections


def test_docs_api_md_lists_exactly_the_public_names() -> None:
    sections = _api_md_sections()
    distributed = importlib.import_module("optuna_enas.training.distributed")
    expected = {package: _public(package) for package in _stubs()}
    expected["optuna_enas.training.distributed"] = set(distributed.__all__)
    assert set(sections) == set(expected)
    for package, names in sections.items():
        assert len(names) == len(set(names)), f"{package}: a name listed twice"
        assert set(names) == expected[package], package


# -- a stub that holds anything else is refused -------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("import os", "holds only"),
        ("x = 1", "holds only"),
        ("def f() -> None: ...", "holds only"),
        ("from os.path import join", "re-export form"),
        ("from os.path import join as path_join", "re-export form"),
        ("from os.path import *", "re-export form"),
        ("from . import _mod as _mod", "only absolute"),
        ("from __future__ import annotations", "only absolute"),
        ("from os.path import join as join\nfrom os.path import join as join", "listed twice"),
        ("from os.path import (", "not valid Python"),
    ],
)
def test_an_unexpected_statement_in_a_stub_is_an_error(
    tmp_path: Path, line: str, message: str
) -> None:
    stub = tmp_path / "__init__.pyi"
    stub.write_text(f'"""Docstring."""\n\nfrom os.path import sep as sep\n{line}\n')
    with pytest.raises(StubError, match=message) as info:
        read_stub(stub)
    assert str(info.value).startswith(f"{stub}:")
    assert isinstance(info.value, ImportError)


def _fake_package(tmp_path: Path, init: str, stub: str) -> str:
    package = tmp_path / "fake_enas_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(init))
    (package / "__init__.pyi").write_text(textwrap.dedent(stub))
    (package / "_mod.py").write_text("def f() -> int:\n    return 1\n\nimported = True\n")
    return "fake_enas_pkg"


@pytest.fixture
def syspath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [n for n in sys.modules if n.startswith("fake_enas_pkg")]:
        del sys.modules[name]


_INIT = """
    from optuna_enas import _lazy

    __version__ = "1.0"

    __getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
"""


def test_a_package_exports_its_stub_lazily(syspath: Path) -> None:
    stub = """
        __version__: str

        from fake_enas_pkg._mod import f as f
    """
    name = _fake_package(syspath, _INIT, stub)
    package = importlib.import_module(name)
    assert package.__all__ == ["__version__", "f"]
    assert f"{name}._mod" not in sys.modules  # nothing imported until a name is used
    assert "f" in dir(package)
    assert package.f() == 1
    assert f"{name}._mod" in sys.modules
    with pytest.raises(AttributeError, match="'nothing'"):
        package.nothing  # noqa: B018


def test_a_declared_name_the_init_does_not_assign_is_an_error(syspath: Path) -> None:
    name = _fake_package(syspath, _INIT, "release: str\n")
    with pytest.raises(StubError, match="does not assign release"):
        importlib.import_module(name)


def test_a_listed_name_its_module_lacks_is_an_error(syspath: Path) -> None:
    name = _fake_package(syspath, _INIT, "from fake_enas_pkg._mod import g as g\n")
    package = importlib.import_module(name)
    with pytest.raises(StubError, match="lists 'g' from 'fake_enas_pkg._mod'"):
        package.g  # noqa: B018


def test_a_missing_stub_is_an_error(syspath: Path) -> None:
    name = _fake_package(syspath, _INIT, "")
    (syspath / name / "__init__.pyi").unlink()
    with pytest.raises(StubError, match="cannot be read"):
        importlib.import_module(name)
