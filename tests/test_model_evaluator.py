"""ModelEvaluator / objective_over: a user's own model, DataLoaders and loss under any sampler."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_enas import ENASSampler
from optuna_enas import ModelEvaluator
from optuna_enas import objective_over
from optuna_enas.nn import ElasticBatchNorm2d
from optuna_enas.nn import ElasticConv2d
from optuna_enas.nn import ElasticLinear
from optuna_enas.nn import InputChoice
from optuna_enas.nn import LayerChoice
from optuna_enas.nn import Supernet
from optuna_enas.nn import ValueChoice


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        w = ValueChoice("w", [4, 8])
        self.stem = ElasticConv2d(1, w, ValueChoice("k", [3, 5]))
        self.bn = ElasticBatchNorm2d(w)
        self.op = LayerChoice(
            "op",
            {"conv": ElasticConv2d(w, w, 3), "pool": nn.AvgPool2d(3, 1, 1), "id": nn.Identity()},
        )
        self.skip = InputChoice("skip", 2)
        self.head = ElasticLinear(w, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.bn(self.stem(x)))
        return self.head(self.skip([a, self.op(a)]).mean((2, 3)))


def _data(seed: int = 0) -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 1, 6, 6, generator=g)
    y = (x.mean((1, 2, 3)) > 0).long()
    train = DataLoader(
        TensorDataset(x[:64], y[:64]),
        batch_size=16,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed + 1),
    )
    valid = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16)
    return train, valid


def _evaluator(seed: int = 0, **kw: object) -> ModelEvaluator:
    torch.manual_seed(seed)
    supernet = Supernet(Net(), example_input=torch.zeros(2, 1, 6, 6))
    train, valid = _data(seed)
    kw.setdefault("metric", "accuracy")
    return objective_over(supernet, train, valid, seed=seed, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("sampler_name", ["enas", "random", "tpe"])
def test_any_sampler_searches_the_user_model_on_sqlite(tmp_path: Path, sampler_name: str) -> None:
    ev = _evaluator()
    sampler = {
        "enas": lambda: ENASSampler(ev.space, seed=0),
        "random": lambda: optuna.samplers.RandomSampler(seed=0),
        "tpe": lambda: optuna.samplers.TPESampler(seed=0),
    }[sampler_name]()
    study = optuna.create_study(
        sampler=sampler,
        pruner=optuna.pruners.NopPruner(),
        direction=ev.direction,
        storage=f"sqlite:///{tmp_path / 'nas.db'}",
        study_name="own",
    )
    before = {k: v.clone() for k, v in ev.supernet.state_dict().items()}
    study.optimize(ev, n_trials=8)
    assert ev.direction == "maximize"
    assert ev.n_steps == 8
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 8
    for t in trials:
        assert set(t.params) == set(ev.space.names)
        assert 0.0 <= t.values[0] <= 1.0
        assert t.user_attrs["architecture"]
    after = ev.supernet.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # shared weights trained
    model = ev.supernet.export(study.best_params)
    assert isinstance(model, Net)


def test_resume_is_exact(tmp_path: Path) -> None:
    def run(n: int, resume: Path | None = None, save: Path | None = None) -> list[float]:
        ev = _evaluator(resume_from=resume, checkpoint_path=save)
        study = optuna.create_study(
            sampler=optuna.samplers.RandomSampler(seed=len(str(resume))), direction="maximize"
        )
        for params in PLAN[:n] if resume is None else PLAN[n:]:
            study.enqueue_trial(params)
        study.optimize(ev, n_trials=len(study.trials))
        return [t.value for t in study.trials]  # type: ignore[misc]

    PLAN = [  # noqa: N806
        {"w": w, "k": k, "op": op, "skip": s}
        for w, k, op, s in [
            (8, 3, "conv", 1),
            (4, 5, "pool", 0),
            (8, 5, "conv", 1),
            (4, 3, "id", 1),
            (8, 3, "pool", 1),
            (8, 5, "conv", 0),
            (4, 5, "conv", 1),
            (8, 3, "conv", 1),
            (4, 3, "pool", 1),
            (8, 5, "id", 1),
            (8, 3, "conv", 1),
            (4, 5, "conv", 1),
        ]
    ]
    whole = run(len(PLAN))
    ckpt = tmp_path / "ck.pt"
    first = run(7, save=ckpt)  # 7 steps: the 64-sample loader (4 batches) wraps mid-epoch
    second = run(7, resume=ckpt)
    assert first + second == whole


def test_nonfinite_loss_skips_the_step_and_worst_metric() -> None:
    calls = {"n": 0}

    def loss_fn(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = nn.functional.cross_entropy(out, y)
        return loss * math.nan if calls["n"] == 1 else loss

    ev = _evaluator(loss_fn=loss_fn, metric="loss")
    before = {k: v.detach().clone() for k, v in ev.supernet.named_parameters()}
    study = optuna.create_study(direction=ev.direction)
    study.enqueue_trial({"w": 8, "k": 3, "op": "conv", "skip": 1})
    study.optimize(ev, n_trials=1)
    after = dict(ev.supernet.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before)  # the NaN step was skipped
    assert ev.n_steps == 0
    assert math.isfinite(study.trials[0].value)  # type: ignore[arg-type]

    def bad_metric(out: torch.Tensor, y: torch.Tensor) -> float:
        return math.nan

    ev = _evaluator(metric=bad_metric, direction="minimize")
    study = optuna.create_study(direction="minimize")
    study.optimize(ev, n_trials=1)
    assert study.trials[0].value == math.inf
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE


def test_pruner_sees_the_reports() -> None:
    ev = _evaluator(n_train_steps=3)
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.ThresholdPruner(lower=2.0),  # accuracy < 2: always pruned
    )
    study.optimize(ev, n_trials=2)
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    assert all(list(t.intermediate_values) == [0] for t in study.trials)


def test_two_stage_pretrains_once_then_scores_frozen_weights() -> None:
    ev = _evaluator(schedule="two_stage", train_paths="uniform", pretrain_steps=5)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(ev, n_trials=6)
    assert ev.n_steps == 5
    frozen = {k: v.clone() for k, v in ev.supernet.state_dict().items()}
    study.optimize(ev, n_trials=3)
    assert all(torch.equal(frozen[k], v) for k, v in ev.supernet.state_dict().items())
    assert {t.user_attrs["enas:phase"] for t in study.trials} == {"score"}
    by_arch: dict[str, set[float]] = {}
    for t in study.trials:
        by_arch.setdefault(t.user_attrs["architecture"], set()).add(t.value)  # type: ignore[arg-type]
    assert all(len(v) == 1 for v in by_arch.values())  # one architecture, one score


def test_phased_training_trials_are_pruned_and_fair_paths_step_once() -> None:
    ev = _evaluator(
        schedule="phased", phase_train_trials=2, phase_score_trials=2, train_paths="fair"
    )
    study = optuna.create_study(direction="maximize")
    study.optimize(ev, n_trials=4)
    states = [t.state for t in study.trials]
    assert states[:2] == [optuna.trial.TrialState.PRUNED] * 2
    assert states[2:] == [optuna.trial.TrialState.COMPLETE] * 2
    assert ev.n_steps == 2  # one optimizer step per training trial, m paths accumulated


def test_bn_recalibration_puts_the_statistics_back() -> None:
    ev = _evaluator(bn_recalibration_batches=2)
    arch = ev.space.architecture({"w": 8, "k": 3, "op": "conv", "skip": 1})
    ev.train_step(arch)
    stats = ev.supernet.model.bn.running_mean.clone()
    value = ev.evaluate(arch)
    assert 0.0 <= value <= 1.0
    torch.testing.assert_close(ev.supernet.model.bn.running_mean, stats)


def test_evaluate_many_uses_the_same_batches() -> None:
    ev = _evaluator()
    a = ev.space.architecture({"w": 8, "k": 3, "op": "conv", "skip": 1})
    b = ev.space.architecture({"w": 4, "k": 5, "op": "pool", "skip": 0})
    many = ev.evaluate_many([a, b, a])
    assert many[0] == many[2]


class _CountingBatches:
    """A re-iterable of batches that counts every batch handed out."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.batches = batches
        self.served = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        for batch in self.batches:
            self.served += 1
            yield batch


def test_evaluate_many_reads_the_validation_loader_once_and_matches_evaluate() -> None:
    torch.manual_seed(0)
    supernet = Supernet(Net(), example_input=torch.zeros(2, 1, 6, 6))
    train, _ = _data(0)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(48, 1, 6, 6, generator=g)
    batches = [(x[i : i + 16], (x[i : i + 16].mean((1, 2, 3)) > 0).long()) for i in (0, 16, 32)]
    valid = _CountingBatches(batches)
    ev = objective_over(supernet, train, valid, seed=0, metric="accuracy", n_eval_batches=2)
    archs = [
        ev.space.architecture({"w": 8, "k": 3, "op": "conv", "skip": 1}),
        ev.space.architecture({"w": 4, "k": 5, "op": "pool", "skip": 0}),
        ev.space.architecture({"w": 8, "k": 5, "op": "id", "skip": 1}),
    ]
    many = ev.evaluate_many(archs)
    assert valid.served == 2  # two batches for three architectures, not six
    # The same numbers as evaluate() on the first two batches, one architecture at a time.
    for arch, value in zip(archs, many, strict=True):
        valid2 = _CountingBatches(batches)
        ev2 = objective_over(
            ev.supernet, train, valid2, seed=0, metric="accuracy", n_eval_batches=2
        )
        assert ev2.evaluate(arch) == value
    with pytest.raises(ValueError, match="op"):
        ev.evaluate_many([{"w": 8, "k": 3, "op": "nope", "skip": 1}])
    assert valid.served == 2  # bad input is refused before any batch is read


def test_a_failing_metric_leaves_the_supernet_in_train_mode() -> None:
    def failing(out: torch.Tensor, y: torch.Tensor) -> float:
        raise RuntimeError("boom")

    ev = _evaluator(metric=failing, direction="maximize")
    arch = ev.space.architecture({"w": 8, "k": 3, "op": "conv", "skip": 1})
    assert ev.evaluate(arch) == -math.inf
    assert ev.supernet.training
    assert all(m.training for m in ev.supernet.modules())


def test_bad_arguments_are_named() -> None:
    sn = Supernet(Net())
    train, valid = _data()
    with pytest.raises(ValueError, match="supernet must be an optuna_enas.nn.Supernet"):
        ModelEvaluator(Net(), train, valid)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction is required with a callable metric"):
        ModelEvaluator(sn, train, valid, metric=lambda o, y: 0.0)
    with pytest.raises(ValueError, match="metric must be 'loss', 'accuracy'"):
        ModelEvaluator(sn, train, valid, metric="f1")
    with pytest.raises(ValueError, match="train_data must be an iterable"):
        ModelEvaluator(sn, 3, valid)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schedule must be one of"):
        ModelEvaluator(sn, train, valid, schedule="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="train_paths must be one of"):
        ModelEvaluator(sn, train, valid, train_paths="all")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_eval_batches must be an integer in"):
        ModelEvaluator(sn, train, valid, n_eval_batches=10**9)
    ev = ModelEvaluator(sn, [torch.zeros(2, 1, 6, 6)], valid)
    with pytest.raises(ValueError, match="a batch must be an \\(inputs, target\\) pair"):
        ev.train_step(sn.space.architecture({"w": 8, "k": 3, "op": "conv", "skip": 1}))
    ev = ModelEvaluator(sn, [], valid)
    with pytest.raises(ValueError, match="train_data yields no batch"):
        ev.train_step(sn.space.architecture({"w": 8, "k": 3, "op": "conv", "skip": 1}))


def test_checkpoint_of_another_space_is_refused(tmp_path: Path) -> None:
    ev = _evaluator()
    ev.save(tmp_path / "a.pt")

    class Other(Net):
        def __init__(self) -> None:
            super().__init__()
            self.extra = LayerChoice("extra", [nn.Identity(), nn.Identity()])

    sn = Supernet(Other())
    train, valid = _data()
    with pytest.raises(ValueError, match="holds another search space"):
        ModelEvaluator(sn, train, valid, resume_from=tmp_path / "a.pt")
