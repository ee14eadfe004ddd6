"""Tests of deriving, retraining and exporting architectures (``optuna_enas.final._derive``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from optuna_enas import Architecture
from optuna_enas import ENASSampler
from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import SearchSpace
from optuna_enas import derive
from optuna_enas import export_architecture
from optuna_enas import import_architecture
from optuna_enas import retrain
from optuna_enas.data import Corpus
from optuna_enas.data import ImageData
from optuna_enas.data import load_corpus
from optuna_enas.data import load_digits_dataset
from optuna_enas.data import synthetic_corpus
from optuna_enas.final._derive import DERIVE_TAG
from optuna_enas.final._derive import MAX_SAMPLES
from optuna_enas.final._derive import derive_study
from optuna_enas.training._evaluator import SupernetEvaluator


optuna.logging.set_verbosity(optuna.logging.WARNING)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


_RNN_KW: dict[str, Any] = {"hidden_size": 16, "embed_size": 16}


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return synthetic_corpus(n_train_tokens=6000, n_valid_tokens=1500, n_test_tokens=1500)


@pytest.fixture(scope="module")
def trained(corpus: Corpus) -> SupernetEvaluator:
    evaluator = SupernetEvaluator(
        RNNCellSpace(n_nodes=3), corpus, supernet_kwargs=_RNN_KW, batch_size=8, bptt=10, seed=0
    )
    rng = np.random.default_rng(0)
    for _ in range(20):
        evaluator.train_steps(evaluator.space.sample_uniform(rng))
    return evaluator


def _archs(space: SearchSpace, n: int, seed: int = 0) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    return [space.sample_uniform(rng) for _ in range(n)]


# -- derive ------------------------------------------------------------------------------------
@pytest.mark.parametrize("storage", ["memory", "sqlite"])
def test_derive_scores_on_full_valid_and_records_trials(
    trained: SupernetEvaluator, tmp_path: Path, storage: str
) -> None:
    url = None if storage == "memory" else f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(storage=url, direction=trained.direction)
    archs = _archs(trained.space, 6)
    before = trained.state_dict()["n_steps"]
    best = derive(study, archs, trained, n_samples=6, top_k=2)
    assert len(best) == 2 and [b.rank for b in best] == [0, 1]
    scores = {a: trained.evaluate(a, split="valid", full=True) for a in archs}
    assert best[0].value == min(scores.values())
    assert best[0].value <= best[1].value
    assert best[0].value == scores[best[0].architecture]
    assert study.get_trials() == []  # the search study is left alone: best_trial keeps its meaning
    apart = derive_study(study, create=False)
    assert apart is not None and apart.study_name == study.study_name + "-derive"
    assert apart.direction == study.direction
    assert all(b.study_name == apart.study_name for b in best)
    trials = apart.get_trials()
    assert len(trials) == len(set(archs))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert all(t.user_attrs["enas:tag"] == DERIVE_TAG for t in trials)
    for b in best:
        assert b.trial_number is not None
        t = trials[b.trial_number]
        assert t.value == b.value and t.params == b.architecture.to_params()
        assert t.user_attrs["enas:derive_rank"] == b.rank
    assert trained.state_dict()["n_steps"] == before  # scoring does not train


def test_derive_from_callable_and_sampler_object(trained: SupernetEvaluator) -> None:
    rng = np.random.default_rng(1)
    calls = []

    def sample() -> Architecture:
        calls.append(1)
        return trained.space.sample_uniform(rng)

    assert len(derive(None, sample, trained, n_samples=5, top_k=3)) == 3
    assert len(calls) == 5

    class FakeSampler:
        def sample_architectures(self, n: int, *, seed: int | None = None) -> list[Architecture]:
            return _archs(trained.space, n, seed=seed or 0)

    a = derive(None, FakeSampler(), trained, n_samples=4, seed=7)
    b = derive(None, FakeSampler(), trained, n_samples=4, seed=7)
    assert a == b


def test_derive_with_enas_sampler(trained: SupernetEvaluator) -> None:
    sampler_module = pytest.importorskip("optuna_enas.sampler._sampler")
    sampler = sampler_module.ENASSampler(trained.space, seed=0)
    study = optuna.create_study(direction=trained.direction, sampler=sampler)
    best = derive(study, sampler, trained, n_samples=8, top_k=1, seed=0)
    assert best[0].trial_number is not None
    assert study.get_trials() == [] and best[0].study_name is not None


def test_derive_n_samples_is_bounded(trained: SupernetEvaluator) -> None:
    with pytest.raises(ValueError, match=rf"n_samples.*\[1, {MAX_SAMPLES}\].*100000000"):
        derive(None, _archs(trained.space, 2), trained, n_samples=100_000_000)


def test_derive_top_k_larger_than_distinct_archs(trained: SupernetEvaluator) -> None:
    arch = _archs(trained.space, 1)[0]
    best = derive(None, [arch, arch, arch], trained, n_samples=3, top_k=5)
    assert len(best) == 1 and best[0].architecture == arch


def test_derive_maximizing_metric_sorts_descending(tmp_path: Path) -> None:
    digits = load_digits_dataset()
    evaluator = SupernetEvaluator(
        MacroSpace(n_layers=2), digits, supernet_kwargs={"n_filters": 4}, batch_size=32, seed=0
    )
    evaluator.train_steps(_archs(evaluator.space, 1)[0], 5)
    best = derive(None, _archs(evaluator.space, 4), evaluator, n_samples=4, top_k=4)
    values = [b.value for b in best]
    assert values == sorted(values, reverse=True)


def test_derive_invalid_inputs_raise(trained: SupernetEvaluator) -> None:
    with pytest.raises(ValueError, match="study.direction"):
        derive(optuna.create_study(direction="maximize"), _archs(trained.space, 2), trained)
    with pytest.raises(ValueError, match="sampler_or_architectures"):
        derive(None, 42, trained)
    with pytest.raises(ValueError, match="Architecture objects"):
        derive(None, ["not an arch"], trained)
    with pytest.raises(ValueError, match="no architectures"):
        derive(None, [], trained)
    with pytest.raises(ValueError, match="n_samples"):
        derive(None, _archs(trained.space, 2), trained, n_samples=0)
    with pytest.raises(ValueError, match="top_k"):
        derive(None, _archs(trained.space, 2), trained, top_k=0)
    with pytest.raises(ValueError, match="space"):
        derive(None, _archs(MacroSpace(n_layers=2), 2), trained)


# -- retrain -----------------------------------------------------------------------------------
def test_retrain_rnn_reports_test_perplexity(corpus: Corpus) -> None:
    space = RNNCellSpace(n_nodes=3)
    arch = _archs(space, 1)[0]
    kwargs: dict[str, Any] = {
        "n_epochs": 2,
        "n_steps_per_epoch": 10,
        "supernet_kwargs": _RNN_KW,
        "batch_size": 8,
        "bptt": 10,
        "seed": 3,
    }
    result = retrain(arch, space, corpus, **kwargs)
    assert result.metric == "ppl" and len(result.history) == 2
    assert result.valid_value == result.history[-1]
    assert 1.0 < result.test_value < corpus.vocab_size
    assert result.history[1] < result.history[0]
    again = retrain(arch, space, corpus, **kwargs)
    assert again.test_value == result.test_value


def test_retrain_cnn_reports_test_accuracy() -> None:
    digits: ImageData = load_digits_dataset()
    space = MacroSpace(n_layers=2)
    arch = _archs(space, 1)[0]
    result = retrain(
        arch, space, digits, n_epochs=2, supernet_kwargs={"n_filters": 8}, batch_size=32, seed=0
    )
    assert result.metric == "accuracy"
    assert 0.3 < result.test_value <= 1.0  # chance is 0.1


def test_retrain_invalid_arguments_raise(corpus: Corpus) -> None:
    space = RNNCellSpace(n_nodes=2)
    arch = _archs(space, 1)[0]
    with pytest.raises(ValueError, match="n_epochs"):
        retrain(arch, space, corpus, n_epochs=0)
    with pytest.raises(ValueError, match="Architecture"):
        retrain(arch.to_params(), space, corpus)  # type: ignore[arg-type]


# -- export / import ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "space",
    [RNNCellSpace(n_nodes=4), MacroSpace(n_layers=3), MicroSpace(n_nodes=2)],
    ids=["rnn", "macro", "micro"],
)
def test_export_import_round_trip(space: SearchSpace, tmp_path: Path) -> None:
    arch = _archs(space, 1, seed=4)[0]
    path = export_architecture(arch, space, tmp_path / "out" / "arch.json")
    data = json.loads(path.read_text())
    assert data["fixed_arc"] == space.to_fixed_arc(arch)
    assert data["description"] == space.describe(arch)
    loaded, loaded_space = import_architecture(path)
    assert loaded == arch and loaded_space == space


def test_import_architecture_from_fixed_arc_only(tmp_path: Path) -> None:
    space = RNNCellSpace(n_nodes=3)
    arch = _archs(space, 1)[0]
    path = tmp_path / "arch.json"
    payload = {
        "format": "optuna-enas-architecture",
        "version": 1,
        "space": space.to_dict(),
        "fixed_arc": space.to_fixed_arc(arch),
    }
    path.write_text(json.dumps(payload))
    assert import_architecture(path) == (arch, space)


def test_import_architecture_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.json"):
        import_architecture(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        import_architecture(bad)
    bad.write_text(json.dumps({"format": "something"}))
    with pytest.raises(ValueError, match="not an optuna-enas architecture"):
        import_architecture(bad)
    space = RNNCellSpace(n_nodes=3)
    arch = _archs(space, 1)[0]
    path = export_architecture(arch, space, tmp_path / "a.json")
    data = json.loads(path.read_text())
    data["fixed_arc"] = "0 0 0 0 3"
    if data["fixed_arc"] == space.to_fixed_arc(arch):
        data["fixed_arc"] = "1 0 1 0 1"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="disagrees"):
        import_architecture(path)
    with pytest.raises(ValueError, match="Architecture"):
        export_architecture(arch.to_params(), space, tmp_path / "x.json")  # type: ignore[arg-type]


# -- end to end on the real Penn Treebank -----------------------------------------------------
@pytest.mark.slow
def test_end_to_end_small_search_on_ptb(ptb_dir: Path, tmp_path: Path) -> None:
    full = load_corpus(ptb_dir)
    assert full.vocab_size == 10_000
    # The real files, truncated, and small batches: the test takes well under a minute.
    corpus = Corpus(
        train=full.train[:60_000],
        valid=full.valid[:6_000],
        test=full.test[:6_000],
        vocab=full.vocab,
        name=full.name,
    )
    space = RNNCellSpace(n_nodes=4)
    kw: dict[str, Any] = {"hidden_size": 32, "embed_size": 32}
    # Both halves always run: an import error of the sampler fails the test, not skips half.
    samplers: list[tuple[str, optuna.samplers.BaseSampler]] = [
        ("random", optuna.samplers.RandomSampler(seed=0)),
        ("enas", ENASSampler(space, seed=0)),
    ]
    for name, sampler in samplers:
        checkpoint = tmp_path / f"{name}.pt"
        evaluator = SupernetEvaluator(
            space,
            corpus,
            supernet_kwargs=kw,
            batch_size=16,
            bptt=20,
            seed=0,
            checkpoint_path=checkpoint,
            checkpoint_every=20,
        )
        study = optuna.create_study(
            storage=f"sqlite:///{tmp_path}/{name}.db",
            direction=evaluator.direction,
            sampler=sampler,
            pruner=optuna.pruners.NopPruner(),
        )
        study.optimize(evaluator, n_trials=60)
        assert evaluator.n_steps == 60
        values = [t.value for t in study.trials if t.value is not None]
        assert len(values) == 60
        # Shared training helps: the last trials beat an untrained model (ppl ~ vocab size).
        assert float(np.median(values[-20:])) < 0.5 * full.vocab_size
        source = sampler if name == "enas" else _archs(space, 10)
        best = derive(study, source, evaluator, n_samples=10, top_k=1, seed=0)
        assert math.isfinite(best[0].value)
        apart = derive_study(study, create=False)
        assert apart is not None and study.best_trial.user_attrs.get("enas:tag") is None
        tagged = [t for t in apart.trials if t.user_attrs.get("enas:tag") == DERIVE_TAG]
        assert best[0].trial_number in {t.number for t in tagged}
        result = retrain(
            best[0].architecture,
            space,
            corpus,
            n_epochs=1,
            n_steps_per_epoch=20,
            supernet_kwargs=kw,
            batch_size=16,
            bptt=20,
            seed=0,
        )
        assert math.isfinite(result.test_value) and result.test_value < full.vocab_size
        path = export_architecture(best[0].architecture, space, tmp_path / f"{name}.json")
        assert import_architecture(path) == (best[0].architecture, space)
        resumed = SupernetEvaluator.load(checkpoint, corpus)
        assert resumed.n_calls == 60
