"""Recording one-shot epochs as Optuna trials, and the study figure of alpha/lambda over epochs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optuna_enas import MacroSpace
from optuna_enas import RNNCellSpace
from optuna_enas.dashboard import DashboardCallback
from optuna_enas.dashboard import save_study_figures
from optuna_enas.dashboard._figures import oneshot_history
from optuna_enas.dashboard._figures import plot_arch_weights
from optuna_enas.oneshot._record import METHOD_KEY
from optuna_enas.oneshot._record import TABLES_KEY
from optuna_enas.oneshot._record import compact_json
from optuna_enas.oneshot._record import method_trials
from optuna_enas.oneshot._record import record_epoch
from optuna_enas.spaces._search_space import Architecture


optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = RNNCellSpace(n_nodes=3)


def _arch(acts: tuple[str, str, str] = ("tanh", "relu", "identity")) -> Architecture:
    return SPACE.architecture(
        {
            "node0_act": acts[0],
            "node1_in": 0,
            "node1_act": acts[1],
            "node2_in": 1,
            "node2_act": acts[2],
        }
    )


def _record(study: optuna.Study, epoch: int, value: float, method: str = "darts") -> None:
    tables = {"node1": [[0.1 * epoch, 1.0 - 0.1 * epoch]], "node2": [[0.5, 0.5], [0.25, 0.75]]}
    record_epoch(
        study,
        SPACE,
        _arch(),
        value=value,
        method=method,
        user_attrs={
            "epoch": epoch,
            "entropy": 1.0 - 0.1 * epoch,
            "sparsity": 0.0,
            "param_free_share": 1 / 3,
            TABLES_KEY: compact_json(tables),
        },
    )


def test_record_epoch_writes_a_complete_trial_with_the_space_distributions(
    sqlite_url: str,
) -> None:
    study = optuna.create_study(storage=sqlite_url, direction="minimize")
    _record(study, 0, 123.0)
    _record(study, 1, math.nan)  # a diverged supernet: FAIL, no value
    loaded = optuna.load_study(study_name=study.study_name, storage=sqlite_url)
    first, second = loaded.trials
    assert first.state == TrialState.COMPLETE and first.value == 123.0
    assert first.params == _arch().to_params()
    assert first.distributions == SPACE.distributions()
    assert first.system_attrs[METHOD_KEY] == "darts"
    assert first.user_attrs["architecture"] == SPACE.describe(_arch())
    assert first.user_attrs["epoch"] == 0
    assert second.state == TrialState.FAIL and second.value is None
    assert loaded.best_trial.number == 0
    with pytest.raises(ValueError, match="belongs to space 'macro'"):
        record_epoch(
            study,
            SPACE,
            MacroSpace(n_layers=1).architecture({"layer0_op": "conv3x3"}),
            value=1.0,
            method="darts",
            user_attrs={},
        )


def test_method_trials_filter_and_compact_json() -> None:
    study = optuna.create_study(direction="minimize")
    _record(study, 0, 5.0, "darts")
    _record(study, 0, 6.0, "dsonas")
    study.add_trial(optuna.trial.create_trial(value=1.0))  # not one-shot
    assert [t.number for t in method_trials(study)] == [0, 1]
    assert [t.number for t in method_trials(study, "dsonas")] == [1]
    text = compact_json({"a": [[0.123456789, 1e-9]], "b": math.inf})
    assert text == '{"a":[[0.1235,1e-09]],"b":null}'
    assert json.loads(text)["a"][0][0] == 0.1235


def test_record_epoch_draws_the_dag_on_the_dashboard(tmp_path: Path) -> None:
    study = optuna.create_study(direction="minimize")
    callback = DashboardCallback(SPACE, tmp_path / "store", figures_every=None)
    trial = record_epoch(
        study,
        SPACE,
        _arch(),
        value=50.0,
        method="dsonas",
        user_attrs={},
        dashboard=callback,
    )
    attrs = study._storage.get_study_system_attrs(study._study_id)
    keys = [k for k in attrs if k.startswith(f"dashboard:artifacts:{trial._trial_id}:")]
    assert len(keys) == 1
    svg = (tmp_path / "store" / json.loads(attrs[keys[0]])["artifact_id"]).read_text()
    assert svg.startswith("<svg") or "<svg" in svg[:200]
    assert study.metric_names == ["valid ppl"]


def test_arch_weight_figure_has_a_line_per_entry_and_the_summaries() -> None:
    study = optuna.create_study(direction="minimize")
    for epoch in range(3):
        _record(study, epoch, 100.0 - epoch)
    rows = oneshot_history(study)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert rows[1]["tables"]["node1"] == [[0.1, 0.9]]
    fig = plot_arch_weights(study)
    entries = [t for t in fig.data if t.legendgroup in ("node1", "node2")]
    assert len(entries) == 2 + 4  # node1: 1x2 entries, node2: 2x2
    node1_first = next(t for t in entries if t.hovertemplate.startswith("node1[0][0]"))
    assert list(node1_first.y) == pytest.approx([0.0, 0.1, 0.2])
    names = [t.name for t in fig.data]
    assert {"entropy", "sparsity", "param_free_share"} <= set(names)
    with pytest.raises(ValueError, match="no trials recorded by a one-shot searcher"):
        plot_arch_weights(optuna.create_study())
    with pytest.raises(ValueError, match="method 'dsonas'"):
        plot_arch_weights(study, method="dsonas")


def test_save_study_figures_adds_the_oneshot_figure() -> None:
    study = optuna.create_study(direction="minimize")
    _record(study, 0, 10.0)
    assert save_study_figures(study) == ["enas-best-so-far", "enas-oneshot-arch"]
