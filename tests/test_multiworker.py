"""Several ENASSampler worker processes on one study: nothing lost, everything consumed.

Each worker is a separate process (``tests/_workers.py toy``) with its own seed, running the
instant relu-count objective over ``RNNCellSpace(n_nodes=4)``; at the end it waits until the
study holds every trial of every worker, calls ``sampler.sync(study)`` and writes the sorted
numbers of the trials its controller consumed.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import _workers
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState


optuna.logging.set_verbosity(optuna.logging.WARNING)

# relu-count over RNNCellSpace(n_nodes=4): 4 activations, each relu with probability 1/4 under
# random search, so a trial scores Binomial(4, 1/4): mean 1, standard deviation 0.87. The mean
# of 100 such trials has standard deviation 0.087, a difference of two such means 0.12.


def _run_workers(
    storage: dict[str, Any],
    *,
    n_workers: int,
    n_trials: int,
    tmp_path: Path,
    timeout: float,
    rule: str = "reinforce",
) -> tuple[optuna.Study, list[dict[str, Any]]]:
    name = f"multiworker-{uuid.uuid4().hex[:8]}"
    if "journal" in storage:
        parent_storage: optuna.storages.BaseStorage | str = _workers.make_storage(storage)
    else:
        parent_storage = storage["url"]
    study = optuna.create_study(study_name=name, storage=parent_storage, direction="maximize")
    n_total = n_workers * n_trials
    workers = [
        _workers.Worker(
            "toy",
            {
                "storage": storage,
                "study": name,
                "worker": w,
                "n_trials": n_trials,
                "n_total": n_total,
                "out": str(tmp_path / f"worker{w}.json"),
                "barrier_timeout": timeout,
                "rule": rule,
            },
            log=tmp_path / f"worker{w}.log",
        )
        for w in range(n_workers)
    ]
    _workers.run_all(workers, timeout=timeout)
    reports = [json.loads((tmp_path / f"worker{w}.json").read_text()) for w in range(n_workers)]
    return study, reports


def _assert_nothing_lost(study: optuna.Study, reports: list[dict[str, Any]], n_total: int) -> None:
    trials = study.get_trials(deepcopy=False)
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(n_total)), "a trial number is missing or repeated"
    assert len({t._trial_id for t in trials}) == n_total
    states = {t.state for t in trials}
    assert states == {TrialState.COMPLETE}, states
    # Every trial was sampled by exactly one sampler and recorded its policy.
    assert all("enas:sample" in t.system_attrs for t in trials)
    for report in reports:
        assert report["n_finished_at_barrier"] == n_total
        assert report["history"] == list(range(n_total)), (
            f"worker {report['worker']} consumed {len(report['history'])} trials "
            f"({len(set(report['history']))} distinct) instead of each of the {n_total} once"
        )
        # It learned from the other workers' trials, with importance weights.
        assert report["n_off_policy"] > 0


@pytest.mark.postgres
def test_four_workers_on_postgres_lose_nothing_and_all_learn_everything(
    postgres_url: str, tmp_path: Path
) -> None:
    n_workers, n_trials = 4, 100
    study, reports = _run_workers(
        {"url": postgres_url},
        n_workers=n_workers,
        n_trials=n_trials,
        tmp_path=tmp_path,
        timeout=240.0,
    )
    n_total = n_workers * n_trials
    _assert_nothing_lost(study, reports, n_total)
    values = np.array([t.value for t in sorted(study.trials, key=lambda t: t.number)])
    first, last = float(values[:100].mean()), float(values[-100:].mean())
    # Random search: last - first ~ N(0, 0.12), last ~ N(1, 0.087). A 0.75 gain is 6 sigma,
    # a last-100 mean of 2 is 11 sigma; the four controllers reach about 3.9 of 4.
    assert last > first + 0.75, (first, last)
    assert last > 2.0, last


@pytest.mark.parametrize("rule", ["reinforce", "elite"])
def test_journal_file_storage_workers_lose_nothing_and_all_learn_everything(
    rule: str, tmp_path: Path
) -> None:
    n_workers, n_trials = 3, 40
    study, reports = _run_workers(
        {"journal": str(tmp_path / "journal.log")},
        n_workers=n_workers,
        n_trials=n_trials,
        tmp_path=tmp_path,
        timeout=180.0,
        rule=rule,
    )
    n_total = n_workers * n_trials
    _assert_nothing_lost(study, reports, n_total)
    values = np.array([t.value for t in sorted(study.trials, key=lambda t: t.number)])
    first, last = float(values[:40].mean()), float(values[-40:].mean())
    # 40-trial means under random search: mean 1, standard deviation 0.14, difference 0.19.
    if rule == "reinforce":
        assert last > first + 0.6, (first, last)
    else:
        # The elite rule never asks for an architecture twice, so its later trials cannot all
        # score 4 (6 of the 1536 cells do) and its first 40 are already good: no gain test.
        assert last > 2.0, (first, last)
