"""Tests of the supernet and standalone evaluators (``optuna_enas.training._evaluator``)."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import FixedTrial
from optuna.trial import TrialState

from optuna_enas import Architecture
from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import SearchSpace
from optuna_enas.data import Corpus
from optuna_enas.data import ImageData
from optuna_enas.data import load_digits_dataset
from optuna_enas.data import synthetic_corpus
from optuna_enas.training._evaluator import StandaloneEvaluator
from optuna_enas.training._evaluator import SupernetEvaluator


optuna.logging.set_verbosity(optuna.logging.WARNING)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


_RNN_KW: dict[str, Any] = {"hidden_size": 16, "embed_size": 16}
_MACRO_KW: dict[str, Any] = {"n_filters": 4}
_MICRO_KW: dict[str, Any] = {"n_filters": 4, "n_layers": 1}
_NOP = optuna.pruners.NopPruner()


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return synthetic_corpus(n_train_tokens=6000, n_valid_tokens=1500, n_test_tokens=1500)


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_digits_dataset(seed=0)


@pytest.fixture
def rnn_space() -> RNNCellSpace:
    return RNNCellSpace(n_nodes=3)


def _rnn(corpus: Corpus, **kwargs: Any) -> SupernetEvaluator:
    options: dict[str, Any] = {"supernet_kwargs": _RNN_KW, "batch_size": 8, "bptt": 10, "seed": 0}
    options.update(kwargs)
    return SupernetEvaluator(RNNCellSpace(n_nodes=3), corpus, **options)


def _macro(digits: ImageData, **kwargs: Any) -> SupernetEvaluator:
    options: dict[str, Any] = {"supernet_kwargs": _MACRO_KW, "batch_size": 16, "seed": 0}
    options.update(kwargs)
    return SupernetEvaluator(MacroSpace(n_layers=2), digits, **options)


def _archs(space: SearchSpace, n: int, seed: int = 0) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    return [space.sample_uniform(rng) for _ in range(n)]


def _uniform_cell(space: RNNCellSpace, activation: str) -> Architecture:
    params: dict[str, Any] = {}
    for d in space.decisions:
        params[d.name] = activation if d.kind == "op" else 0
    return space.architecture(params)


# -- construction ------------------------------------------------------------------------------
def test_supernet_evaluator_direction_follows_space(corpus: Corpus, digits: ImageData) -> None:
    rnn = _rnn(corpus)
    assert (rnn.metric, rnn.direction) == ("ppl", "minimize")
    macro = _macro(digits)
    assert (macro.metric, macro.direction) == ("accuracy", "maximize")
    micro = SupernetEvaluator(MicroSpace(n_nodes=2), digits, supernet_kwargs=_MICRO_KW, seed=0)
    assert micro.direction == "maximize"
    assert rnn.device == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_train_steps": -1}, "n_train_steps"),
        ({"n_train_steps": math.inf}, "n_train_steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"bptt": 0}, "bptt"),
        ({"lr": 0.0}, "lr"),
        ({"grad_clip": -1.0}, "grad_clip"),
        ({"momentum": 1.0}, "momentum"),
        ({"n_eval_batches": 0}, "n_eval_batches"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"seed": -3}, "seed"),
        ({"device": "warp-drive"}, "device"),
        ({"supernet_kwargs": {"vocab_size": 3}}, "vocab_size"),
        ({"supernet_kwargs": {"generator": None}}, "generator"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_supernet_evaluator_invalid_arguments_raise(
    corpus: Corpus, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        _rnn(corpus, **kwargs)


def test_supernet_evaluator_rejects_mismatched_space_and_data(
    corpus: Corpus, digits: ImageData
) -> None:
    with pytest.raises(ValueError, match="Corpus"):
        SupernetEvaluator(RNNCellSpace(n_nodes=2), digits)
    with pytest.raises(ValueError, match="ImageData"):
        SupernetEvaluator(MacroSpace(n_layers=2), corpus)
    from optuna_enas import Decision

    with pytest.raises(ValueError, match="RNNCellSpace, MacroSpace or MicroSpace"):
        SupernetEvaluator(SearchSpace([Decision("x", (1, 2))]), corpus)


def test_supernet_evaluator_default_data_is_synthetic_corpus() -> None:
    evaluator = SupernetEvaluator(RNNCellSpace(n_nodes=2), supernet_kwargs=_RNN_KW, seed=0)
    assert isinstance(evaluator.data, Corpus)
    assert evaluator.data.name.startswith("synthetic")


# -- the objective under several samplers ------------------------------------------------------
def test_supernet_evaluator_random_sampler_in_memory(corpus: Corpus) -> None:
    evaluator = _rnn(corpus)
    study = optuna.create_study(
        direction=evaluator.direction, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.optimize(evaluator, n_trials=12)
    values = [float(t.value) for t in study.trials if t.value is not None]
    assert len(values) == 12
    # Perplexities near an untrained model's (about the vocabulary size): not a loss (~ln V),
    # not diverged; and shared training already brings some below an untrained model's.
    v_size = corpus.vocab_size
    assert all(0.3 * v_size < v < 1.5 * v_size for v in values)
    assert min(values) < 0.8 * v_size
    assert evaluator.n_calls == 12 and evaluator.n_steps == 12
    assert all("architecture" in t.user_attrs for t in study.trials)
    assert all(t.intermediate_values == {0: t.value} for t in study.trials)


def test_supernet_evaluator_tpe_sampler_sqlite(digits: ImageData, tmp_path: Path) -> None:
    evaluator = _macro(digits)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path}/s.db",
        direction=evaluator.direction,
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=3),
        pruner=_NOP,
    )
    study.optimize(evaluator, n_trials=8)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    # Accuracies on one validation minibatch of 16 images: multiples of 1/16 in [0, 1]. (After
    # 8 steps they are at chance level; learning is checked below on the full split.)
    assert all(
        t.value is not None and 0.0 <= t.value <= 1.0 and (t.value * 16) % 1 == 0
        for t in study.trials
    )


def test_supernet_evaluator_macro_learns_digits_beyond_chance(digits: ImageData) -> None:
    """150 shared-weight steps on one architecture: full-split accuracy well above chance."""
    evaluator = _macro(digits)
    arch = _archs(evaluator.space, 1)[0]
    before = evaluator.evaluate(arch, split="valid", full=True)
    evaluator.train_steps(arch, 150)
    after = evaluator.evaluate(arch, split="valid", full=True)
    # Chance is 0.1 (10 classes); 0.25 on ~360 images is 9 standard deviations above it.
    assert before < 0.2 and after > 0.25


def test_supernet_evaluator_enas_sampler(corpus: Corpus) -> None:
    sampler_module = pytest.importorskip("optuna_enas.sampler._sampler")
    evaluator = _rnn(corpus)
    sampler = sampler_module.ENASSampler(evaluator.space, seed=0)
    study = optuna.create_study(direction=evaluator.direction, sampler=sampler, pruner=_NOP)
    study.optimize(evaluator, n_trials=10)
    assert len(study.trials) == 10
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_supernet_evaluator_micro_space_runs(digits: ImageData) -> None:
    evaluator = SupernetEvaluator(
        MicroSpace(n_nodes=2), digits, supernet_kwargs=_MICRO_KW, batch_size=16, seed=0
    )
    study = optuna.create_study(direction=evaluator.direction, pruner=_NOP)
    study.optimize(evaluator, n_trials=3)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_supernet_evaluator_n_jobs_2_is_serialized(corpus: Corpus) -> None:
    evaluator = _rnn(corpus)
    study = optuna.create_study(direction=evaluator.direction, pruner=_NOP)
    study.optimize(evaluator, n_trials=8, n_jobs=2)
    assert evaluator.n_calls == 8 and evaluator.n_steps == 8
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert isinstance(evaluator._lock, type(threading.RLock()))


# -- training schedule -------------------------------------------------------------------------
def test_supernet_evaluator_fractional_steps_accumulate_exactly(
    corpus: Corpus, rnn_space: RNNCellSpace
) -> None:
    evaluator = _rnn(corpus, n_train_steps=0.2)
    steps = []
    for arch in _archs(rnn_space, 15):
        evaluator(FixedTrial(arch.to_params()))
        steps.append(evaluator.n_steps)
    assert steps == [0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3]


def test_supernet_evaluator_reports_after_each_step(corpus: Corpus) -> None:
    evaluator = _rnn(corpus, n_train_steps=2.5)
    study = optuna.create_study(direction=evaluator.direction, pruner=_NOP)
    study.optimize(evaluator, n_trials=4)
    counts = [len(t.intermediate_values) for t in study.trials]
    assert counts == [2, 3, 2, 3]
    assert evaluator.n_steps == 10
    for t in study.trials:
        assert t.value == t.intermediate_values[max(t.intermediate_values)]


def test_supernet_evaluator_zero_steps_only_evaluates(corpus: Corpus) -> None:
    evaluator = _rnn(corpus, n_train_steps=0)
    before = {k: v.clone() for k, v in evaluator.supernet.state_dict().items()}
    study = optuna.create_study(direction=evaluator.direction, pruner=_NOP)
    study.optimize(evaluator, n_trials=2)
    assert evaluator.n_steps == 0
    assert all(torch.equal(before[k], v) for k, v in evaluator.supernet.state_dict().items())
    assert all(t.intermediate_values.keys() == {0} for t in study.trials)


def test_supernet_evaluator_training_improves_the_metric(corpus: Corpus) -> None:
    evaluator = _rnn(corpus, lr=5.0)
    arch = _uniform_cell(evaluator.space, "tanh")  # type: ignore[arg-type]
    before = evaluator.evaluate(arch, full=True)
    evaluator.train_steps(arch, 60)
    after = evaluator.evaluate(arch, full=True)
    assert after < 0.7 * before


def test_supernet_evaluator_skips_non_finite_steps(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    evaluator = _rnn(corpus)
    before = {k: v.clone() for k, v in evaluator.supernet.state_dict().items()}

    def nan_loss(model: Any, arch: Architecture, rng: Any) -> torch.Tensor:
        return torch.tensor(math.nan, requires_grad=True)

    monkeypatch.setattr(evaluator._trainer.task, "train_loss", nan_loss)
    losses = evaluator.train_steps(_archs(evaluator.space, 1)[0], 2)
    assert all(math.isnan(x) for x in losses)
    assert evaluator.n_steps == 0
    assert all(torch.equal(before[k], v) for k, v in evaluator.supernet.state_dict().items())


def test_supernet_evaluator_evaluate_has_no_side_effects(corpus: Corpus) -> None:
    evaluator = _rnn(corpus)
    arch = _archs(evaluator.space, 1)[0]
    evaluator.train_steps(arch, 3)
    state = evaluator.state_dict()
    full = evaluator.evaluate(arch, split="valid", full=True)
    assert evaluator.evaluate(arch.to_params(), split="valid", full=True) == full
    test_ppl = evaluator.evaluate(arch, split="test")
    assert 0.3 * corpus.vocab_size < test_ppl < 1.5 * corpus.vocab_size  # a ppl, not a loss
    _assert_same_state(state, evaluator.state_dict())
    with pytest.raises(ValueError, match="split"):
        evaluator.evaluate(arch, split="dev")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="space"):
        evaluator.evaluate(Architecture(space="macro", params=()))


@pytest.mark.parametrize(
    ("kwargs", "n_batches", "full"),
    [({}, 2, False), ({"bfloat16_matmul": True, "dropout": 0.3}, 1, False), ({}, None, True)],
    ids=["two-batches", "bf16-dropout", "full"],
)
def test_supernet_evaluator_evaluate_many_equals_evaluate_loop(
    corpus: Corpus, kwargs: dict[str, Any], n_batches: int | None, full: bool
) -> None:
    evaluator = _rnn(corpus, supernet_kwargs={**_RNN_KW, **kwargs}, bptt=12)
    archs = _archs(evaluator.space, 7, seed=3)
    archs.append(archs[0])  # a repeated architecture scores the same
    evaluator.train_steps(archs[1], 4)
    state = evaluator.state_dict()
    one_by_one = [evaluator.evaluate(a, n_batches=n_batches, full=full) for a in archs]
    many = evaluator.evaluate_many(
        [a.to_params() if k % 2 else a for k, a in enumerate(archs)],
        n_batches=n_batches,
        full=full,
    )
    assert len(many) == len(archs)
    np.testing.assert_allclose(many, one_by_one, rtol=1e-5)
    assert many[-1] == many[0]
    assert len(set(np.round(many, 6))) > 3  # the architectures do score differently
    _assert_same_state(state, evaluator.state_dict())
    assert evaluator.evaluate_many([]) == []


def test_supernet_evaluator_evaluate_many_groups_the_decoder(
    corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A logits budget of two architectures: the decoder runs in groups, same values.
    from optuna_enas.training import _tasks

    evaluator = _rnn(corpus)
    archs = _archs(evaluator.space, 5, seed=4)
    whole = evaluator.evaluate_many(archs, split="test", n_batches=2)
    per_arch = 8 * 10 * corpus.vocab_size * 4  # batch x bptt x vocabulary float32 logits
    monkeypatch.setattr(_tasks, "SCORE_MANY_LOGITS_BYTES", 2 * per_arch)
    grouped = evaluator.evaluate_many(archs, split="test", n_batches=2)
    np.testing.assert_allclose(grouped, whole, rtol=1e-6)
    loop = [evaluator.evaluate(a, split="test", n_batches=2) for a in archs]
    np.testing.assert_allclose(grouped, loop, rtol=1e-5)


def test_supernet_evaluator_evaluate_many_cnn_and_bad_input(
    corpus: Corpus, digits: ImageData
) -> None:
    macro = _macro(digits)
    archs = _archs(macro.space, 3)
    assert macro.evaluate_many(archs) == [macro.evaluate(a) for a in archs]
    rnn = _rnn(corpus)
    arch = _archs(rnn.space, 1)[0]
    with pytest.raises(ValueError, match="archs"):
        rnn.evaluate_many(arch)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="archs"):
        rnn.evaluate_many(arch.to_params())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="split"):
        rnn.evaluate_many([arch], split="dev")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_batches"):
        rnn.evaluate_many([arch], n_batches=0)


# -- reproducibility, checkpoints, resume ------------------------------------------------------
def test_supernet_evaluator_same_seed_same_values_global_rng_untouched(corpus: Corpus) -> None:
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # type: ignore[index]
    runs = []
    for _ in range(2):
        evaluator = _rnn(corpus, supernet_kwargs={**_RNN_KW, "dropout": 0.3})
        runs.append([evaluator(FixedTrial(a.to_params())) for a in _archs(evaluator.space, 5)])
    assert runs[0] == runs[1]
    other = _rnn(corpus, seed=1)
    assert [other(FixedTrial(a.to_params())) for a in _archs(other.space, 5)] != runs[0]
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)  # type: ignore[index]


def _assert_same_state(a: Any, b: Any) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _assert_same_state(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_state(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("kind", ["rnn", "macro"])
def test_supernet_evaluator_save_load_round_trip(
    corpus: Corpus, digits: ImageData, tmp_path: Path, kind: str
) -> None:
    if kind == "rnn":
        evaluator = _rnn(corpus, n_train_steps=1.5)
    else:
        evaluator = _macro(digits, n_train_steps=1.5)
    study = optuna.create_study(direction=evaluator.direction, pruner=_NOP)
    study.optimize(evaluator, n_trials=3)
    path = evaluator.save(tmp_path / "ck.pt")
    data = corpus if kind == "rnn" else digits
    loaded = SupernetEvaluator.load(path, data)
    state, again = evaluator.state_dict(), loaded.state_dict()
    _assert_same_state(state, again)
    assert again["n_calls"] == 3 and again["credit"] == [1, 2]
    assert again["task"]["pos"] > 0
    if kind == "rnn":
        assert again["task"]["hidden"] is not None
    else:
        assert again["task"]["perm"] is not None
        assert again["optimizer"]["state"]  # the momentum buffers survive


@pytest.mark.parametrize("kind", ["rnn", "macro"])
def test_supernet_evaluator_resume_gives_identical_next_values(
    corpus: Corpus, digits: ImageData, tmp_path: Path, kind: str
) -> None:
    def make(**kwargs: Any) -> SupernetEvaluator:
        if kind == "rnn":
            kw = {"supernet_kwargs": {**_RNN_KW, "dropout": 0.2}, "n_train_steps": 1.5}
            return _rnn(corpus, **kw, **kwargs)
        return _macro(digits, n_train_steps=1.5, **kwargs)

    archs = _archs(make().space, 9, seed=3)
    path = tmp_path / "ck.pt"
    stopped = make(checkpoint_path=path, checkpoint_every=3)
    for arch in archs[:5]:  # the last periodic checkpoint is after call 3 ...
        stopped(FixedTrial(arch.to_params()))
    del stopped  # ... then the process "dies" after call 5.
    resumed = make(resume_from=path)
    assert resumed.n_calls == 3
    uninterrupted = make()
    expected = [uninterrupted(FixedTrial(a.to_params())) for a in archs]
    got = [resumed(FixedTrial(a.to_params())) for a in archs[3:]]
    assert got == expected[3:]
    loaded = SupernetEvaluator.load(path, corpus if kind == "rnn" else digits)
    assert [loaded(FixedTrial(a.to_params())) for a in archs[3:]] == expected[3:]


def test_supernet_evaluator_resume_mismatch_raises(corpus: Corpus, tmp_path: Path) -> None:
    path = _rnn(corpus).save(tmp_path / "ck.pt")
    with pytest.raises(ValueError, match="batch_size"):
        _rnn(corpus, batch_size=4, resume_from=path)
    with pytest.raises(ValueError, match="supernet_kwargs"):
        _rnn(corpus, supernet_kwargs={"hidden_size": 8, "embed_size": 8}, resume_from=path)
    other = synthetic_corpus(seed=5, n_train_tokens=6000, n_valid_tokens=1500)
    with pytest.raises(ValueError, match="other data"):
        _rnn(other, resume_from=path)
    with pytest.raises(ValueError, match="search space"):
        SupernetEvaluator(
            RNNCellSpace(n_nodes=4),
            corpus,
            supernet_kwargs=_RNN_KW,
            batch_size=8,
            bptt=10,
            resume_from=path,
        )
    # Optimizer knobs may change on resume.
    resumed = _rnn(corpus, lr=1.0, resume_from=path)
    assert resumed.optimizer.param_groups[0]["lr"] == 1.0


def test_supernet_evaluator_load_corrupt_checkpoint_raises(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"ck\.pt"):
        SupernetEvaluator.load(path)
    from optuna_enas.training._checkpoint import save_checkpoint

    save_checkpoint({"kind": "something else"}, path)
    with pytest.raises(ValueError, match="not a SupernetEvaluator checkpoint"):
        SupernetEvaluator.load(path)


def test_supernet_evaluator_periodic_checkpoint(corpus: Corpus, tmp_path: Path) -> None:
    path = tmp_path / "run" / "ck.pt"
    evaluator = _rnn(corpus, checkpoint_path=path, checkpoint_every=2)
    study = optuna.create_study(direction=evaluator.direction, pruner=_NOP)
    study.optimize(evaluator, n_trials=1)
    assert not path.exists()
    study.optimize(evaluator, n_trials=4)
    assert SupernetEvaluator.load(path, corpus).n_calls == 4
    with pytest.raises(ValueError, match="path must be given"):
        _rnn(corpus).save()


# -- pruning -----------------------------------------------------------------------------------
class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_supernet_evaluator_raises_trial_pruned(corpus: Corpus) -> None:
    evaluator = _rnn(corpus, n_train_steps=3)
    study = optuna.create_study(direction=evaluator.direction, pruner=_AlwaysPrune())
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        evaluator(trial)
    assert evaluator.n_steps == 1  # stopped after the first step's report
    assert evaluator.n_calls == 1


def test_supernet_evaluator_median_pruner_stops_bad_children(corpus: Corpus) -> None:
    evaluator = _rnn(corpus, n_train_steps=3)
    study = optuna.create_study(
        direction=evaluator.direction,
        sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )
    study.optimize(evaluator, n_trials=20)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert pruned and complete
    for t in pruned:
        # MedianPruner: the trial's best value so far is worse than the median of the earlier
        # completed trials at the same step.
        step = max(t.intermediate_values)
        earlier = [u.intermediate_values[step] for u in complete if u.number < t.number]
        assert min(t.intermediate_values.values()) > float(np.median(earlier))


def test_standalone_evaluator_median_pruner_stops_bad_children(digits: ImageData) -> None:
    evaluator = StandaloneEvaluator(
        MacroSpace(n_layers=2, ops=("conv3x3", "avgpool", "maxpool")),
        digits,
        supernet_kwargs=_MACRO_KW,
        n_epochs=3,
        n_steps_per_epoch=4,
        batch_size=32,
        seed=0,
    )
    assert evaluator.direction == "maximize" and evaluator.metric == "accuracy"
    study = optuna.create_study(
        direction=evaluator.direction,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    study.optimize(evaluator, n_trials=8)
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    for t in study.trials:
        if t.state == TrialState.COMPLETE:
            assert sorted(t.intermediate_values) == [0, 1, 2]
        else:
            assert len(t.intermediate_values) < 3


def test_standalone_evaluator_is_seeded_by_trial_number(corpus: Corpus) -> None:
    evaluator = StandaloneEvaluator(
        RNNCellSpace(n_nodes=2),
        corpus,
        supernet_kwargs=_RNN_KW,
        n_epochs=1,
        n_steps_per_epoch=3,
        batch_size=8,
        bptt=10,
        seed=0,
    )
    params = _archs(evaluator.space, 1)[0].to_params()
    a = evaluator(FixedTrial(params, number=4))
    b = evaluator(FixedTrial(params, number=4))
    c = evaluator(FixedTrial(params, number=5))
    assert a == b and a != c
    with pytest.raises(ValueError, match="n_epochs"):
        StandaloneEvaluator(RNNCellSpace(n_nodes=2), corpus, n_epochs=0)


# -- does the supernet rank architectures? -----------------------------------------------------
@pytest.mark.slow
def test_trained_supernet_ranks_tanh_cell_above_identity_cell() -> None:
    # ENAS's premise: shared weights trained on random architectures rank them. An all-identity
    # cell is a linear RNN whose hidden state is a running average of token embeddings; an
    # all-tanh cell can model the grammar's agreement and bracketing.
    corpus = synthetic_corpus()
    space = RNNCellSpace(n_nodes=4)
    evaluator = SupernetEvaluator(
        space, corpus, supernet_kwargs={"hidden_size": 32, "embed_size": 32}, seed=0
    )
    study = optuna.create_study(
        direction=evaluator.direction,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=_NOP,
    )
    study.optimize(evaluator, n_trials=300)
    tanh = evaluator.evaluate(_uniform_cell(space, "tanh"), full=True)
    identity = evaluator.evaluate(_uniform_cell(space, "identity"), full=True)
    assert tanh < 0.8 * identity


# -- train_paths (issue #23) ---------------------------------------------------------------------
def _edges_changed(evaluator: SupernetEvaluator, before: list[torch.Tensor]) -> int:
    edges = evaluator.supernet.get_submodule("w_edges")
    after = [p.detach() for p in edges.parameters()]
    return sum(not torch.equal(p, q) for p, q in zip(before, after, strict=True))


def _edges(evaluator: SupernetEvaluator) -> list[torch.Tensor]:
    edges = evaluator.supernet.get_submodule("w_edges")
    return [p.detach().clone() for p in edges.parameters()]


def test_train_paths_controller_is_enas_step_on_the_trial_arch(corpus: Corpus) -> None:
    from optuna_enas.training._trainer import Trainer

    arch = RNNCellSpace(n_nodes=3).sample_uniform(np.random.default_rng(0))
    evaluator = _rnn(corpus, train_paths="controller")
    got = [evaluator(FixedTrial(arch.to_params())) for _ in range(3)]
    # By hand: ENAS's shared step on the trial's architecture, then its score.
    rng = np.random.default_rng(0)
    trainer = Trainer(evaluator._setup, init_seed=int(rng.integers(2**31 - 1)))
    want = []
    for _ in range(3):
        trainer.step(arch, rng)
        want.append(trainer.evaluate_next(arch, 1))
    assert got == want
    assert got == [_rnn(corpus)(FixedTrial(arch.to_params())) for _ in range(1)] + got[1:]


def test_train_paths_decide_which_weights_train(corpus: Corpus) -> None:
    arch = RNNCellSpace(n_nodes=3).sample_uniform(np.random.default_rng(0))
    n_edges = 3  # node 1 reads node 0; node 2 reads node 0 or 1
    changed = {}
    values = {}
    for mode in ("controller", "uniform", "fair", "mixture"):
        evaluator = _rnn(corpus, train_paths=mode, mixture=0.0)
        assert evaluator.train_paths == mode
        before = _edges(evaluator)
        values[mode] = [evaluator(FixedTrial(arch.to_params())) for _ in range(8)]
        changed[mode] = _edges_changed(evaluator, before)
        assert evaluator.n_steps == 8
    assert changed["controller"] == 2  # only the trial architecture's two edges
    assert changed["uniform"] == n_edges == changed["fair"] == changed["mixture"]
    assert values["controller"] != values["uniform"] != values["fair"]
    assert values["mixture"] == values["uniform"] or values["mixture"] != values["controller"]


def test_train_paths_fair_trains_every_edge_in_one_step(corpus: Corpus) -> None:
    evaluator = _rnn(corpus, train_paths="fair")
    before = _edges(evaluator)
    (loss,) = evaluator.train_shared(1)
    assert math.isfinite(loss)
    assert _edges_changed(evaluator, before) == 3
    assert evaluator.n_steps == 1
    controller = _rnn(corpus)
    before = _edges(controller)
    controller.train_shared(1)  # no trial architecture: one uniform path
    assert _edges_changed(controller, before) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train_paths": "spos"}, "train_paths must be one of .*'spos'"),
        ({"train_paths": "fair", "mixture": -0.1}, r"mixture must be a float in \[0, 1\]"),
        ({"pretrain_steps": -1}, "pretrain_steps must be an integer >= 0, but got -1"),
        ({"schedule": "two-stage"}, "schedule must be one of .*'two-stage'"),
    ],
)
def test_train_paths_options_reject_bad_values(
    corpus: Corpus, kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        _rnn(corpus, **kwargs)


def test_train_paths_resume_on_sqlite_is_exact(corpus: Corpus, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/s.db"

    def study(name: str) -> optuna.Study:
        return optuna.create_study(
            storage=storage,
            study_name=name,
            load_if_exists=True,
            sampler=optuna.samplers.RandomSampler(seed=1),
            direction="minimize",
            pruner=_NOP,
        )

    whole = _rnn(corpus, train_paths="fair")
    study("whole").optimize(whole, n_trials=6)
    first = _rnn(corpus, train_paths="fair", checkpoint_path=tmp_path / "c.pt", checkpoint_every=3)
    study("split").optimize(first, n_trials=3)
    resumed = SupernetEvaluator.load(tmp_path / "c.pt", corpus)
    assert resumed.train_paths == "fair"
    split = study("split")
    split.sampler = optuna.samplers.RandomSampler(seed=1)
    params = [t.params for t in study("whole").trials]
    for p in params[3:]:
        split.enqueue_trial(p)
    split.optimize(resumed, n_trials=3)
    assert [t.value for t in study("whole").trials] == [t.value for t in split.trials]
