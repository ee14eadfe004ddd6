"""Tests of the SupernetEvaluator schedules (``optuna_enas.training._schedule``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState

from optuna_enas import RNNCellSpace
from optuna_enas import SupernetEvaluator
from optuna_enas.data import Corpus
from optuna_enas.data import load_digits_dataset
from optuna_enas.data import synthetic_corpus
from optuna_enas.spaces._enas import MicroSpace
from optuna_enas.training._schedule import PhasePlan


optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.usefixtures("one_torch_thread")

_RNN_KW: dict[str, Any] = {"hidden_size": 12, "embed_size": 12}


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return synthetic_corpus(n_train_tokens=4000, n_valid_tokens=1500, n_test_tokens=1500)


def _phased(corpus: Corpus, **kwargs: Any) -> SupernetEvaluator:
    options: dict[str, Any] = {
        "supernet_kwargs": _RNN_KW,
        "batch_size": 8,
        "bptt": 10,
        "seed": 0,
        "schedule": "phased",
        "phase_train_trials": 3,
        "phase_score_trials": 4,
    }
    options.update(kwargs)
    return SupernetEvaluator(RNNCellSpace(n_nodes=3), corpus, **options)


def _call(evaluator: SupernetEvaluator, arch: Any) -> float | None:
    """One trial of ``arch``; ``None`` when it ends pruned (a training trial)."""
    try:
        return evaluator(optuna.trial.FixedTrial(arch.to_params()))
    except optuna.TrialPruned:
        return None


def _weights(evaluator: SupernetEvaluator) -> list[torch.Tensor]:
    return [p.detach().clone() for p in evaluator.supernet.parameters()]


def test_phase_plan_cycles() -> None:
    plan = PhasePlan("phased", 2, 3)
    assert [plan.phase(i) for i in range(7)] == [
        "train",
        "train",
        "score",
        "score",
        "score",
        "train",
        "train",
    ]
    assert [plan.starts_scoring(i) for i in range(6)] == [False, False, True, False, False, False]
    assert PhasePlan("interleaved").phase(5) == "interleaved"
    assert PhasePlan("phased", 0, 2).starts_scoring(2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schedule": "alternating"}, "schedule"),
        ({"phase_train_trials": -1}, "phase_train_trials"),
        ({"phase_score_trials": 0}, "phase_score_trials"),
        ({"phase_score_trials": 2.5}, "phase_score_trials"),
        ({"warmup_steps": -3}, "warmup_steps"),
    ],
)
def test_schedule_rejects_bad_arguments(
    corpus: Corpus, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        _phased(corpus, **kwargs)


def test_phased_tags_trials_and_trains_only_in_training_phase(corpus: Corpus) -> None:
    evaluator = _phased(corpus)
    study = optuna.create_study(
        direction=evaluator.direction,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )
    seen: list[tuple[str, int]] = []

    def objective(trial: optuna.Trial) -> float:
        before = evaluator.n_steps
        try:
            return evaluator(trial)
        finally:
            seen.append((trial.user_attrs["enas:phase"], evaluator.n_steps - before))

    study.optimize(objective, n_trials=14)
    phases = [p for p, _ in seen]
    assert phases == (["train"] * 3 + ["score"] * 4) * 2
    assert all(steps == (1 if p == "train" else 0) for p, steps in seen)
    for trial in study.trials:
        if trial.user_attrs["enas:phase"] == "train":
            assert trial.state == TrialState.PRUNED
            assert trial.intermediate_values == {}
            assert np.isfinite(trial.user_attrs["enas:train_loss"])
        else:
            assert trial.state == TrialState.COMPLETE
            assert trial.intermediate_values == {0: trial.value}
    assert evaluator.n_steps == 6


def test_phased_scores_of_one_phase_use_identical_weights_and_batches(corpus: Corpus) -> None:
    evaluator = _phased(corpus, phase_train_trials=2, phase_score_trials=3)
    space = evaluator.space
    rng = np.random.default_rng(1)
    a, b = space.sample_uniform(rng), space.sample_uniform(rng)
    assert [_call(evaluator, a) for _ in range(2)] == [None, None]  # training
    assert evaluator.next_phase == "score"
    frozen = _weights(evaluator)
    first = _call(evaluator, a)
    other = _call(evaluator, b)
    again = _call(evaluator, a)
    assert first is not None and other is not None
    assert first == again  # the same weights and the same validation batches
    assert first != other
    for p, q in zip(frozen, _weights(evaluator), strict=True):
        assert torch.equal(p, q)
    # The next phase trains: the weights move.
    assert evaluator.next_phase == "train"
    assert _call(evaluator, b) is None
    assert any(not torch.equal(p, q) for p, q in zip(frozen, _weights(evaluator), strict=True))


def test_interleaved_scores_of_the_same_architecture_differ(corpus: Corpus) -> None:
    # The contrast: the default schedule trains on every trial.
    evaluator = _phased(corpus, schedule="interleaved")
    arch = evaluator.space.sample_uniform(np.random.default_rng(1))
    values = [_call(evaluator, arch) for _ in range(2)]
    assert values[0] != values[1]
    assert evaluator.next_phase == "interleaved"


def test_warmup_trains_on_uniform_architectures_before_the_first_trial(corpus: Corpus) -> None:
    evaluator = _phased(corpus, warmup_steps=5, phase_train_trials=0, phase_score_trials=2)
    before = _weights(evaluator)
    evaluator.warm_up()
    assert evaluator.n_steps == 5
    after = _weights(evaluator)
    assert any(not torch.equal(p, q) for p, q in zip(before, after, strict=True))
    evaluator.warm_up()  # once only
    arch = evaluator.space.sample_uniform(np.random.default_rng(0))
    assert _call(evaluator, arch) is not None
    assert evaluator.n_steps == 5
    # Lazily at the first call, and from the evaluator's own seeded generator.
    other = _phased(corpus, warmup_steps=5, phase_train_trials=0, phase_score_trials=2)
    state = torch.random.get_rng_state()
    _call(other, arch)
    assert torch.equal(state, torch.random.get_rng_state())
    for p, q in zip(after, _weights(other), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("stop", [1, 4, 5], ids=["mid-train", "first-score", "mid-score"])
def test_phased_resume_mid_phase_is_exact(corpus: Corpus, tmp_path: Path, stop: int) -> None:
    space = RNNCellSpace(n_nodes=3)
    rng = np.random.default_rng(3)
    archs = [space.sample_uniform(rng) for _ in range(11)]

    def run(evaluator: SupernetEvaluator, todo: list[Any]) -> list[float | None]:
        return [_call(evaluator, arch) for arch in todo]

    whole = run(_phased(corpus, warmup_steps=2), archs)
    first = _phased(corpus, warmup_steps=2)
    head = run(first, archs[:stop])
    first.save(tmp_path / "ckpt.pt")
    resumed = SupernetEvaluator.load(tmp_path / "ckpt.pt", corpus)
    assert resumed.schedule == "phased"
    tail = run(resumed, archs[stop:])
    assert head + tail == whole
    assert sum(v is not None for v in whole) == 4 + 1  # 3 train, 4 score, 3 train, 1 score


def test_phased_reports_and_prunes_scoring_trials(corpus: Corpus) -> None:
    evaluator = _phased(corpus, phase_train_trials=1, phase_score_trials=5)
    study = optuna.create_study(
        direction=evaluator.direction,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.ThresholdPruner(upper=0.0),  # prunes every score
    )
    study.optimize(evaluator, n_trials=6)
    scoring = [t for t in study.trials if t.user_attrs["enas:phase"] == "score"]
    assert len(scoring) == 5
    assert all(t.state == TrialState.PRUNED and 0 in t.intermediate_values for t in scoring)


def test_phased_defaults_follow_official_enas(corpus: Corpus) -> None:
    evaluator = _phased(corpus, phase_train_trials=None, phase_score_trials=None)
    task_steps = -(-(4000 // 8 - 1) // 10)  # one epoch of bptt windows
    assert evaluator._plan.train_trials == task_steps
    assert evaluator._plan.score_trials == 1000  # ptb_search.sh: 100 steps * 10 aggregate
    digits = load_digits_dataset(seed=0)
    micro = SupernetEvaluator(
        MicroSpace(n_nodes=2),
        digits,
        supernet_kwargs={"n_filters": 4, "n_layers": 1},
        schedule="phased",
        seed=0,
    )
    assert micro._plan.score_trials == 300  # cifar10_micro_search.sh: 30 * 10


# -- two_stage (issue #23) -----------------------------------------------------------------------
def _two_stage(corpus: Corpus, **kwargs: Any) -> SupernetEvaluator:
    options: dict[str, Any] = {
        "supernet_kwargs": _RNN_KW,
        "batch_size": 8,
        "bptt": 10,
        "seed": 0,
        "schedule": "two_stage",
        "pretrain_steps": 10,
        "train_paths": "uniform",
    }
    options.update(kwargs)
    return SupernetEvaluator(RNNCellSpace(n_nodes=3), corpus, **options)


def test_phase_plan_two_stage_only_scores() -> None:
    plan = PhasePlan("two_stage")
    assert plan.cycle == 1
    assert [plan.phase(i) for i in range(3)] == ["score"] * 3
    assert not plan.starts_scoring(0)


def test_two_stage_pretrains_then_scores_on_frozen_weights_sqlite(
    corpus: Corpus, tmp_path: Path
) -> None:
    evaluator = _two_stage(corpus, warmup_steps=2)
    assert evaluator.schedule == "two_stage" and evaluator.next_phase == "score"
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/s.db",
        direction=evaluator.direction,
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=3),
        pruner=optuna.pruners.NopPruner(),
    )
    study.optimize(evaluator, n_trials=1)
    assert evaluator.n_steps == 12 and evaluator.n_pretrained == 10
    frozen = _weights(evaluator)
    study.optimize(evaluator, n_trials=7)
    assert evaluator.n_steps == 12
    for p, q in zip(frozen, _weights(evaluator), strict=True):
        assert torch.equal(p, q)
    trials = study.trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert all(t.user_attrs["enas:phase"] == "score" for t in trials)
    # every trial: the same validation batches, so a value is a function of the architecture
    for t in trials:
        arch = evaluator.space.architecture(t.params)
        again = evaluator(optuna.trial.FixedTrial(t.params))
        assert again == t.value
        evaluator._frozen_cache.clear()
        assert evaluator(optuna.trial.FixedTrial(arch.to_params())) == t.value
    assert len({t.value for t in trials}) > 1


def test_two_stage_paths_change_the_pretrained_weights(corpus: Corpus) -> None:
    weights = {}
    for mode in ("controller", "uniform", "fair"):
        evaluator = _two_stage(corpus, train_paths=mode)
        evaluator.pretrain()
        weights[mode] = _weights(evaluator)
        assert evaluator.n_steps == 10
    # controller: no trial architecture while pretraining, so uniform draws (SPOS + controller)
    for p, q in zip(weights["controller"], weights["uniform"], strict=True):
        assert torch.equal(p, q)
    assert any(
        not torch.equal(p, q) for p, q in zip(weights["fair"], weights["uniform"], strict=True)
    )


def test_two_stage_resume_mid_pretraining_is_exact(corpus: Corpus, tmp_path: Path) -> None:
    space = RNNCellSpace(n_nodes=3)
    rng = np.random.default_rng(5)
    archs = [space.sample_uniform(rng) for _ in range(5)]
    whole = _two_stage(corpus, train_paths="fair")
    want = [_call(whole, a) for a in archs]
    ckpt = tmp_path / "c.pt"
    first = _two_stage(corpus, train_paths="fair", checkpoint_path=ckpt, checkpoint_every=4)
    first.pretrain()  # saved after steps 4 and 8: the file holds step 8, as after a crash there
    resumed = SupernetEvaluator.load(ckpt, corpus)
    assert resumed.n_pretrained == 8
    got = [_call(resumed, archs[0])]
    assert resumed.n_pretrained == 10
    resumed.save(ckpt)
    again = SupernetEvaluator.load(ckpt, corpus)  # and once more, after scoring began
    got += [_call(again, a) for a in archs[1:]]
    assert got == want
