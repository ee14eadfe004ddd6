"""The trainer and its settings: OptimConfig, resolve_training, and randomness kept private."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas.data import synthetic_corpus
from optuna_enas.training import OptimConfig
from optuna_enas.training._optim import DEFAULTS
from optuna_enas.training._trainer import Trainer
from optuna_enas.training._trainer import resolve_training
from optuna_enas.training._trainer import train_from_scratch


pytestmark = pytest.mark.usefixtures("one_torch_thread")

_ARGS: dict[str, Any] = {
    "supernet_kwargs": {"hidden_size": 8, "embed_size": 8, "dropout": 0.5},
    "batch_size": 4,
    "bptt": 5,
    "lr": None,
    "grad_clip": None,
    "momentum": None,
    "weight_decay": None,
    "device": "cpu",
}


def test_optim_defaults_cite_enas_and_overrides_apply() -> None:
    assert OptimConfig.for_kind("rnn") == DEFAULTS["rnn"]
    assert DEFAULTS["micro"] == OptimConfig(0.05, 5.0, 0.9, 1e-4)
    cfg = OptimConfig.for_kind("macro", lr=0.1, grad_clip=math.inf)
    assert (cfg.lr, cfg.grad_clip, cfg.momentum) == (0.1, math.inf, 0.9)
    assert cfg.as_dict()["weight_decay"] == 2.5e-4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0.0}, "lr must be a positive float"),
        ({"momentum": 1.0}, r"momentum must be a float in \[0, 1\)"),
        ({"weight_decay": -1.0}, "weight_decay must be a finite float >= 0"),
        ({"grad_clip": math.nan}, "grad_clip must be a positive float"),
    ],
)
def test_optim_config_refuses(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OptimConfig.for_kind("rnn", **kwargs)


def test_optim_config_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        OptimConfig.for_kind("gru")


def test_resolve_training_checks_data_kind_and_generator() -> None:
    corpus = synthetic_corpus(n_train_tokens=400, n_valid_tokens=100, n_test_tokens=100, seed=0)
    with pytest.raises(ValueError, match="data must be ImageData"):
        resolve_training(MicroSpace(n_nodes=1), corpus, **_ARGS)
    with pytest.raises(ValueError, match="supernet_kwargs must not hold 'generator'"):
        resolve_training(
            RNNCellSpace(n_nodes=2), corpus, **{**_ARGS, "supernet_kwargs": {"generator": 1}}
        )
    with pytest.raises(ValueError, match=r"batch_size must be an integer in \[1, 65536\]"):
        resolve_training(RNNCellSpace(n_nodes=2), corpus, **{**_ARGS, "batch_size": 0})


def _trainer(seed: int) -> tuple[Trainer, Any]:
    space = RNNCellSpace(n_nodes=3)
    corpus = synthetic_corpus(n_train_tokens=2000, n_valid_tokens=200, n_test_tokens=200, seed=0)
    setup = resolve_training(space, corpus, **_ARGS)
    arch = space.from_indices([0] * len(space))
    return Trainer(setup, init_seed=seed), arch


def test_steps_never_touch_the_global_torch_rng_and_are_reproducible() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state().clone()
    losses = []
    for _ in range(2):
        trainer, arch = _trainer(seed=5)
        rng = np.random.default_rng(0)
        losses.append([trainer.step(arch, rng) for _ in range(3)])
    assert torch.equal(torch.get_rng_state(), before)
    assert losses[0] == losses[1]
    # Dropout is really drawn from the trainer's generator: another stream, another loss.
    trainer, arch = _trainer(seed=5)
    other = [trainer.step(arch, np.random.default_rng(1)) for _ in range(3)]
    assert other != losses[0]


def test_train_from_scratch_reports_every_epoch() -> None:
    space = RNNCellSpace(n_nodes=2)
    corpus = synthetic_corpus(n_train_tokens=1000, n_valid_tokens=200, n_test_tokens=200, seed=0)
    setup = resolve_training(space, corpus, **_ARGS)
    seen: list[tuple[int, float]] = []
    _, history, score = train_from_scratch(
        setup,
        space.from_indices([0] * len(space)),
        n_epochs=2,
        n_steps_per_epoch=3,
        seed=0,
        callback=lambda e, v: seen.append((e, v)),
    )
    assert [e for e, _ in seen] == [0, 1] and [v for _, v in seen] == history
    assert all(0.3 * corpus.vocab_size < v < 1.5 * corpus.vocab_size for v in history)
    assert math.isfinite(score("test"))


def _linear_trainer() -> Trainer:
    """Plain SGD (no momentum, decay, clip or dropout): one step is linear in the gradient."""
    corpus = synthetic_corpus(n_train_tokens=600, n_valid_tokens=200, n_test_tokens=200)
    args = dict(_ARGS, supernet_kwargs={"hidden_size": 8, "embed_size": 8})
    args.update(lr=0.5, grad_clip=math.inf, momentum=0.0, weight_decay=0.0)
    return Trainer(resolve_training(RNNCellSpace(n_nodes=3), corpus, **args), init_seed=0)


def _delta(trainer: Trainer, before: list[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach() - q for p, q in zip(trainer.model.parameters(), before, strict=True)]


def test_step_paths_of_one_path_is_step_bitwise() -> None:
    space = RNNCellSpace(n_nodes=3)
    arch = space.sample_uniform(np.random.default_rng(0))
    setup = resolve_training(space, synthetic_corpus(n_train_tokens=600), **_ARGS)
    a, b = Trainer(setup, init_seed=1), Trainer(setup, init_seed=1)
    rng_a, rng_b = np.random.default_rng(2), np.random.default_rng(2)
    for _ in range(3):
        assert a.step(arch, rng_a) == b.step_paths([arch], rng_b)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="archs must hold at least one"):
        a.step_paths([], rng_a)


def test_step_paths_averages_the_gradients_of_the_paths_on_one_minibatch() -> None:
    space = RNNCellSpace(n_nodes=3)
    rng = np.random.default_rng(4)
    archs = [space.sample_uniform(rng) for _ in range(3)]
    base = _linear_trainer()
    base.step(archs[0], np.random.default_rng(0))  # a carried hidden state and a moved position
    start = base.task.pos
    before = [p.detach().clone() for p in base.model.parameters()]
    state = base.task.state_dict()
    singles = []
    for arch in archs:
        alone = _linear_trainer()
        alone.model.load_state_dict(base.model.state_dict())
        alone.task.load_state_dict(state)
        alone.step(arch, np.random.default_rng(0))
        singles.append(_delta(alone, before))
        stride = alone.task.pos - start
    multi = _linear_trainer()
    multi.model.load_state_dict(base.model.state_dict())
    multi.task.load_state_dict(state)
    loss = multi.step_paths(archs, np.random.default_rng(0))
    assert math.isfinite(loss)
    assert multi.task.pos == start + stride  # one minibatch consumed, not three
    for got, *parts in zip(_delta(multi, before), *singles, strict=True):
        torch.testing.assert_close(got, sum(parts) / 3, rtol=1e-4, atol=1e-6)
    assert any(float(d.abs().max()) > 0 for d in _delta(multi, before))
