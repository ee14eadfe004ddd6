"""The ``"elite"`` rule inside a weight-sharing search: every schedule, resume, derive.

Correctness only (tiny supernet, a few dozen trials); the quality of the rule inside a
weight-sharing search is measured by ``benchmarks/pays_off.py ws``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState

from optuna_enas import RNNCellSpace
from optuna_enas import derive
from optuna_enas.data import Corpus
from optuna_enas.data import synthetic_corpus
from optuna_enas.final._derive import derive_study
from optuna_enas.sampler import ControllerConfig
from optuna_enas.sampler import EliteConfig
from optuna_enas.sampler import ENASSampler
from optuna_enas.training._evaluator import SupernetEvaluator


optuna.logging.set_verbosity(optuna.logging.WARNING)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = ControllerConfig(lstm_size=16)
SCHEDULES = ("interleaved", "phased", "two_stage")
_PLAN: dict[str, dict[str, Any]] = {
    "interleaved": {},
    "phased": {"phase_train_trials": 2, "phase_score_trials": 6},
    "two_stage": {"pretrain_steps": 5},
}


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return synthetic_corpus(n_train_tokens=4000, n_valid_tokens=1500, n_test_tokens=1500)


def _evaluator(corpus: Corpus, schedule: str) -> SupernetEvaluator:
    return SupernetEvaluator(
        RNNCellSpace(n_nodes=3),  # 128 architectures
        corpus,
        supernet_kwargs={"hidden_size": 12, "embed_size": 12},
        batch_size=8,
        bptt=10,
        seed=0,
        schedule=schedule,  # type: ignore[arg-type]
        **_PLAN[schedule],
    )


def _sampler(evaluator: SupernetEvaluator) -> ENASSampler:
    return ENASSampler(evaluator.space, seed=0, config=SMALL, rule=EliteConfig(n_startup_trials=4))


def _study(url: str | None, name: str, sampler: ENASSampler, direction: Any) -> optuna.Study:
    return optuna.create_study(
        storage=url,
        study_name=name,
        load_if_exists=True,
        sampler=sampler,
        direction=direction,
        pruner=optuna.pruners.NopPruner(),
    )


def _scored(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.user_attrs.get("enas:phase") != "train"]


def _key(trial: optuna.trial.FrozenTrial) -> tuple[Any, ...]:
    return tuple(sorted(trial.params.items()))


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_elite_in_each_schedule_scores_distinct_architectures_and_resumes(
    corpus: Corpus, schedule: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/ws.db"
    whole_eval = _evaluator(corpus, schedule)
    whole = _sampler(whole_eval)
    s_whole = _study(url, "whole", whole, whole_eval.direction)
    s_whole.optimize(whole_eval, n_trials=16)

    # The same search in two sessions: a new sampler on the same storage replays the first.
    split_eval = _evaluator(corpus, schedule)
    _study(url, "split", _sampler(split_eval), split_eval.direction).optimize(
        split_eval, n_trials=9
    )
    resumed = _sampler(split_eval)
    s_split = _study(url, "split", resumed, split_eval.direction)
    s_split.optimize(split_eval, n_trials=7)

    assert [t.params for t in s_split.trials] == [t.params for t in s_whole.trials]
    assert [t.value for t in s_split.trials] == [t.value for t in s_whole.trials]
    a = resumed.controller.state_dict()
    b = whole.controller.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.n_updates == whole.n_updates > 0
    assert [h["trial"] for h in resumed.history] == [h["trial"] for h in whole.history]

    scored = _scored(s_whole)
    assert all(t.state == TrialState.COMPLETE for t in scored)
    keys = [_key(t) for t in scored]
    assert len(set(keys)) == len(keys)  # no architecture scored twice
    assert [h["trial"] for h in whole.history] == [t.number for t in scored]
    training = [t for t in s_whole.trials if t not in scored]
    if schedule == "phased":
        # 16 trials = 2 cycles of 2 training + 6 scoring trials.
        assert len(training) == 4 and len(scored) == 12
        assert all(t.state == TrialState.PRUNED for t in training)
        assert all(t.user_attrs["enas:train_loss"] > 0 for t in training)  # they trained
        assert whole_eval.n_steps == 4
    else:
        assert training == []
    if schedule == "two_stage":
        assert whole_eval.n_steps == 5  # pretrained, then frozen
    if schedule == "interleaved":
        assert whole_eval.n_steps == 16


def test_derive_from_an_elite_sampler_rescores_what_it_learned(corpus: Corpus) -> None:
    evaluator = _evaluator(corpus, "interleaved")
    sampler = _sampler(evaluator)
    study = _study(None, "search", sampler, evaluator.direction)
    study.optimize(evaluator, n_trials=30)
    n_learned = len(sampler.history)

    best = derive(study, sampler, evaluator, n_samples=40, top_k=3, seed=0)

    assert len(best) == 3
    values = [d.value for d in best]
    assert values == sorted(values)  # perplexity: lower first
    full = evaluator.evaluate(best[0].architecture, split="valid", full=True)
    assert best[0].value == full
    # The refit concentrates the policy on the elite: its draws are mostly trials it has
    # already scored (derive then re-scores them on the full validation set).
    searched = {_key(t) for t in study.trials}
    drawn = sampler.sample_architectures(40, seed=0)
    assert sum(tuple(sorted(a.to_params().items())) in searched for a in drawn) >= 20
    # The candidates start with the elite itself: the best finished trials, best first.
    finished = [t for t in study.trials if t.value is not None]
    ranked = sorted(finished, key=lambda t: (t.value, t.number))
    kept = len(sampler._learner.best_actions())  # type: ignore[union-attr]
    assert 1 <= kept <= 25
    assert [_key_of(a) for a in drawn[:kept]] == [_key(t) for t in ranked[:kept]]
    assert len({_key_of(a) for a in drawn[:kept]}) == kept  # distinct
    # The derive scores live in their own study and never reach the sampler.
    target = derive_study(study, create=False)
    assert target is not None and len(target.trials) >= 3
    assert len(study.trials) == 30
    sampler.sync(study)
    assert len(sampler.history) == n_learned


def _key_of(arch: object) -> tuple:  # type: ignore[type-arg]
    return tuple(sorted(arch.to_params().items()))  # type: ignore[attr-defined]
