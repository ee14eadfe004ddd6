"""``search`` and ``compare`` with the one-shot methods (DARTS, DSO-NAS) on real SQLite studies."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest

from optuna_enas import RNNCellSpace
from optuna_enas.cli import main
from optuna_enas.cli._oneshot import oneshot_plan
from optuna_enas.cli._oneshot import weight_step_budget
from optuna_enas.cli._parser import build_parser
from optuna_enas.cli._storage import CONFIG_ATTR
from optuna_enas.oneshot._record import METHOD_KEY


pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Three RNN nodes, 8 hidden units, 8x8 minibatches: tiny, as in test_cli.py.
_TINY = ["--n-nodes", "3", "--hidden-size", "8", "--batch-size", "8", "--bptt", "8"]


def test_budget_is_trials_times_train_steps() -> None:
    assert weight_step_budget(30, 1.0) == 30
    assert weight_step_budget(30, 0.5) == 15
    assert weight_step_budget(3, 0.1) == 1  # never zero
    args = build_parser().parse_args(["search", "--trials", "25", "--oneshot-epochs", "4"])
    assert oneshot_plan(25, args) == (25, 7)  # 4 epochs of <= 7 steps: 7+7+7+4


@pytest.mark.parametrize("method", ["darts", "dsonas"])
def test_search_records_one_trial_per_epoch_and_resumes(
    tmp_path: Path, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    argv = ["search", "--storage", url, *_TINY, "--sampler", method, "--oneshot-epochs", "3"]
    assert main([*argv, "--trials", "6"]) == 0
    out = capsys.readouterr().out
    assert "best architecture:" in out and "fixed_arc:" in out
    study = optuna.load_study(study_name=f"enas-rnn-{method}", storage=url)
    trials = study.get_trials()
    assert len(trials) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert {t.system_attrs[METHOD_KEY] for t in trials} == {method}
    assert [t.user_attrs["weight_steps"] for t in trials] == [2, 4, 6]
    space = RNNCellSpace(n_nodes=3)
    for t in trials:
        space.architecture(t.params)  # every recorded architecture is valid in the space
        # The value is the projected score (relaxed supernet, search weights): a sane
        # perplexity, also for DSO-NAS, whose factor scale the discrete cell loses.
        assert t.value is not None and 1.0 < t.value < 1e4
        assert "inherited_value" in t.user_attrs
    config = study.user_attrs[CONFIG_ATTR]
    assert config["sampler"] == method and config["evaluator"]["n_steps"] == 6
    checkpoint = tmp_path / f"s.enas-rnn-{method}.supernet.pt"
    assert checkpoint.is_file()

    # The same command again: the search is complete, nothing is added.
    assert main([*argv, "--trials", "6"]) == 0
    assert len(study.get_trials()) == 3
    # Another budget with the same study is refused (the epochs would not line up).
    assert main([*argv, "--trials", "9"]) == 2
    assert "--study-name" in capsys.readouterr().err


def test_compare_runs_samplers_and_oneshot_methods_at_one_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    out_dir = tmp_path / "cmp"
    argv = ["compare", "--storage", url, *_TINY, "--trials", "4", "--seeds", "0"]
    argv += ["--samplers", "random", "darts", "dsonas", "--oneshot-epochs", "2"]
    assert main([*argv, "--retrain-epochs", "1", "--output-dir", str(out_dir)]) == 0
    stdout = capsys.readouterr().out
    assert "| darts (one-shot) | 1 |" in stdout and "| dsonas (one-shot) | 1 |" in stdout
    assert "(4 shared-weight steps; one-shot methods get the same steps)" in stdout
    rows = {r["sampler"]: r for r in json.loads((out_dir / "results.json").read_text())}
    assert set(rows) == {"random", "darts", "dsonas"}
    for row in rows.values():
        assert math.isfinite(row["rescored"]) and math.isfinite(row["retrained"])
        assert row["final"]
    assert rows["darts"]["n_trials"] == 2 and rows["random"]["n_trials"] == 4
    study = optuna.load_study(study_name="compare-rnn-dsonas-seed0", storage=url)
    attrs = study._storage.get_study_system_attrs(study._study_id)
    assert any(k.startswith("dashboard:plot_data:enas-oneshot-arch:") for k in attrs)


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--sampler", "darts", "--darts-order", "3"], "--darts-order must be 1 or 2"),
        (["--sampler", "dsonas", "--oneshot-epochs", "0"], "--oneshot-epochs must be"),
    ],
)
def test_bad_oneshot_options_name_the_flag(
    tmp_path: Path, extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/b.db"
    assert main(["search", "--storage", url, *_TINY, "--trials", "2", *extra]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "b.db").exists()  # refused before anything was written
