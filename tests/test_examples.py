"""Every example runs end to end with ``--smoke`` (as a subprocess, in a temporary directory)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


_REPO = Path(__file__).resolve().parents[1]
_EXAMPLES = _REPO / "examples"


@pytest.mark.parametrize(
    "script, expected",
    [
        ("quickstart.py", "fixed_arc:"),
        ("rnn_ptb.py", "retrained: valid ppl"),
        ("cnn_micro_digits.py", "retrained: valid accuracy"),
        ("compare_samplers.py", "| tpe |"),
        ("nasrl_pruning.py", "children,"),
        ("own_model_cnn.py", "| random |"),
        ("own_model_text.py", "retrained: test ppl"),
        # Several processes on one storage: slow by the house rule for cross-process tests.
        pytest.param("multi_worker.py", "complete trials from workers", marks=pytest.mark.slow),
    ],
    ids=[
        "quickstart",
        "rnn_ptb",
        "cnn_micro_digits",
        "compare_samplers",
        "nasrl",
        "own_model_cnn",
        "own_model_text",
        "multi_worker",
    ],
)
def test_example_smoke(script: str, expected: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(_EXAMPLES / script), "--smoke"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(_REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert expected in run.stdout


def test_every_example_is_tested() -> None:
    tested = {
        "quickstart.py",
        "rnn_ptb.py",
        "cnn_micro_digits.py",
        "compare_samplers.py",
        "nasrl_pruning.py",
        "own_model_cnn.py",
        "own_model_text.py",
        "multi_worker.py",
    }
    assert {p.name for p in _EXAMPLES.glob("*.py")} == tested


def test_own_model_text_skips_a_missing_corpus(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(_EXAMPLES / "own_model_text.py"), "--smoke"]
        + ["--data", str(tmp_path / "no-ptb-here")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(_REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "skipped" in run.stdout
    assert not (tmp_path / "own_model_text.db").exists()


def test_readme_own_model_snippet_runs(tmp_path: Path) -> None:
    """README "Your own model" runs as printed (fewer trials) and exports plain torch."""
    readme = (_REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Your own model") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    code = match.group(1)
    assert "n_trials=300" in code and "supernet.export(study.best_params)" in code
    code = code.replace("n_trials=300", "n_trials=5")
    code += "\nprint('exported', type(model.inp).__module__, sorted(model.nas_params))\n"
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(_REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (
        "exported torch.nn.modules.linear ['act0', 'act1', 'act2', 'depth', 'width']" in run.stdout
    )
    assert (tmp_path / "own.db").is_file()
