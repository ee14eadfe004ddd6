"""README snippets: the rank_check and one-shot examples define every name they use."""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import pytest


_README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", _README.read_text(encoding="utf-8"), re.S)


def _undefined(code: str) -> set[str]:
    tree = ast.parse(code)
    defined = set(dir(builtins))
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
            defined |= (
                {a.arg for a in node.args.args} if isinstance(node, ast.FunctionDef) else set()
            )
        elif isinstance(node, ast.Name):
            (defined if isinstance(node.ctx, ast.Store) else used).add(node.id)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
    return used - defined


@pytest.mark.parametrize("marker", ["rank_check(evaluator", "DARTS(space"])
def test_readme_snippet_defines_what_it_uses(marker: str) -> None:
    (code,) = [b for b in _blocks() if marker in b]
    assert _undefined(code) == set()
    assert 'FileSystemArtifactStore("artifacts")' not in code  # a folder that must exist
