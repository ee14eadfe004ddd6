"""``optuna-enas search/compare --model MODULE:FACTORY --data MODULE:FACTORY`` end to end.

Real subprocesses on SQLite with the tiny user module ``tests/_nn_cli_model.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

from optuna_enas.cli import main


_REPO = Path(__file__).resolve().parents[1]
_MODULE = Path(__file__).with_name("_nn_cli_model.py")


def _cli(args: list[str], cwd: Path, *, pythonpath: str = "") -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(_REPO), pythonpath) if p)
    return subprocess.run(
        [sys.executable, "-m", "optuna_enas", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_search_model_runs_resumes_and_exports_plain_torch(tmp_path: Path) -> None:
    base = ["search", "--model", f"{_MODULE}:make_model", "--storage", "sqlite:///m.db"]
    base += ["--data", f"{_MODULE}:make_evaluator_kwargs"]
    run = _cli([*base, "--trials", "5"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "study: model-make_model-enas" in run.stdout
    assert "best trial:" in run.stdout and "accuracy" in run.stdout
    study = optuna.load_study(
        study_name="model-make_model-enas", storage="sqlite:///" + str(tmp_path / "m.db")
    )
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE  # metric "accuracy" from --data
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 5
    assert set(trials[0].params) == {"width", "depth", "act0", "act1"}
    ckpt = tmp_path / "m.model-make_model-enas.supernet.pt"
    assert ckpt.is_file()

    run = _cli([*base, "--trials", "7"], tmp_path)  # resume: 2 more trials, same supernet
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"resuming at 5 trials, supernet from {ckpt}" in run.stderr
    assert len(study.get_trials()) == 7

    export = tmp_path / "m.model-make_model-enas.supernet.best"
    params = json.loads((export / "params.json").read_text())
    assert params == study.best_params
    sys.path.insert(0, str(_MODULE.parent))  # the user's module, as where it was written
    try:
        model = torch.load(export / "model.pt", weights_only=False)
    finally:
        sys.path.remove(str(_MODULE.parent))
    assert not any(type(m).__module__.startswith("optuna_enas") for m in model.modules())
    assert model(torch.zeros(2, 6)).shape == (2, 3)
    assert model.inp.out_features == params["width"]

    run = _cli([*base, "--trials", "7", "--train-steps", "2"], tmp_path)  # other options
    assert run.returncode == 2 and "--train-steps" in run.stderr and "1.0" in run.stderr


def test_search_model_takes_a_dotted_module_and_a_supernet_and_loaders(tmp_path: Path) -> None:
    run = _cli(
        [
            "search",
            "--model",
            "_nn_cli_model:make_supernet",
            "--data",
            "_nn_cli_model:make_loaders",
        ]
        + ["--sampler", "random", "--trials", "3", "--storage", "sqlite:///d.db"],
        tmp_path,
        pythonpath=str(_MODULE.parent),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    study = optuna.load_study(
        study_name="model-make_supernet-random", storage=f"sqlite:///{tmp_path / 'd.db'}"
    )
    assert study.direction == optuna.study.StudyDirection.MINIMIZE  # default metric: the loss
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 3


@pytest.mark.parametrize(
    "model, data, extra, message",
    [
        ("make_model", None, [], "--model needs --data MODULE:FACTORY"),
        ("no_colon", "make_loaders", [], "must be MODULE:FACTORY"),
        ("missing", "make_loaders", [], "has no 'missing'"),
        ("make_nothing", "make_loaders", [], "returned a int"),
        ("make_model", "make_nothing", [], "(train_loader, valid_loader)"),
        ("make_model", "make_bad_kwargs", [], "'seed' is set on the command line (--seed)"),
        ("make_model", "make_loaders", ["--sampler", "darts"], "--sampler 'darts' with --model"),
        ("make_model", "make_loaders", ["--n-nodes", "3"], "--n-nodes applies to the built-in"),
    ],
    ids=[
        "no-data",
        "no-colon",
        "missing",
        "not-module",
        "bad-data",
        "cli-owned",
        "darts",
        "nodes",
    ],
)
def test_search_model_bad_input_is_one_line_exit_2(
    model: str,
    data: str | None,
    extra: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = "x.py" if model == "no_colon" else f"{_MODULE}:{model}"
    args = ["search", "--model", spec, "--storage", f"sqlite:///{tmp_path / 'b.db'}", *extra]
    if data is not None:
        args += ["--data", f"{_MODULE}:{data}"]
    assert main(args) == 2  # in process: the same code path as the command, faster
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b.db").exists()  # refused before anything is written


def test_compare_model_runs_each_sampler_and_writes_a_table(tmp_path: Path) -> None:
    run = _cli(
        ["compare", "--model", f"{_MODULE}:make_model", "--data", f"{_MODULE}:make_loaders"]
        + ["--samplers", "enas", "random", "--seeds", "0", "--trials", "3"]
        + ["--storage", "sqlite:///c.db", "--output-dir", "out"],
        tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| enas | 1 |" in run.stdout and "| random | 1 |" in run.stdout
    rows = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["sampler"], r["seed"]) for r in rows] == [("enas", 0), ("random", 0)]
    assert all(r["rescored"] > 0 for r in rows)  # a cross-entropy on 10 validation batches
    names = {
        s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 'c.db'}")
    }
    assert names == {
        "compare-model-make_model-enas-seed0",
        "compare-model-make_model-random-seed0",
    }
