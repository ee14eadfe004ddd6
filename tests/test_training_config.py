"""Tests of :class:`TrainingConfig`, the one record of the training settings (issue #22).

Every trainer (the two evaluators, ``retrain``, ``rank_check``, DARTS, DSO-NAS) takes it as
``training=``; its flat keywords are shorthands. Built either way, a trainer must train the same.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import pickle
import subprocess
import sys
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import FixedTrial

from optuna_enas import RNNCellSpace
from optuna_enas.cli._options import training_from_config
from optuna_enas.data import Corpus
from optuna_enas.data import synthetic_corpus
from optuna_enas.final._rank_check import rank_check
from optuna_enas.final._retrain import retrain
from optuna_enas.oneshot._darts import DARTS
from optuna_enas.oneshot._dsonas import DSONAS
from optuna_enas.training._config import FIELDS
from optuna_enas.training._config import TrainingConfig
from optuna_enas.training._config import fold_training
from optuna_enas.training._evaluator import StandaloneEvaluator
from optuna_enas.training._evaluator import SupernetEvaluator
from optuna_enas.training._optim import DEFAULTS
from optuna_enas.training._trainer import TrainingSetup
from optuna_enas.training._trainer import resolve_training


optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.usefixtures("one_torch_thread")

_KW: dict[str, Any] = {"hidden_size": 8, "embed_size": 8}
# Every field set to a non-default value: what the flat keywords and training= both carry.
_FLAT: dict[str, Any] = {
    "supernet_kwargs": _KW,
    "batch_size": 4,
    "bptt": 6,
    "lr": 1.5,
    "grad_clip": 0.5,
    "momentum": 0.5,
    "weight_decay": 1e-5,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return synthetic_corpus(n_train_tokens=1200, n_valid_tokens=300, n_test_tokens=300)


@pytest.fixture
def space() -> RNNCellSpace:
    return RNNCellSpace(n_nodes=2)


# -- the record -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 0),
        ("batch_size", 65_537),
        ("batch_size", 2.5),
        ("batch_size", True),
        ("bptt", 0),
        ("bptt", 100_001),
        ("lr", 0.0),
        ("lr", -1.0),
        ("lr", math.inf),
        ("lr", math.nan),
        ("lr", "0.1"),
        ("grad_clip", 0.0),
        ("grad_clip", -2.0),
        ("momentum", 1.0),
        ("momentum", -0.1),
        ("weight_decay", -1e-4),
        ("weight_decay", math.inf),
        ("device", ""),
        ("device", 3),
        ("supernet_kwargs", [("hidden_size", 8)]),
        ("supernet_kwargs", {1: 8}),
    ],
)
def test_a_bad_field_is_refused_naming_the_field_and_the_value(field: str, value: Any) -> None:
    with pytest.raises(ValueError) as info:
        TrainingConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(field), message
    assert repr(value) in message, message


def test_generator_in_supernet_kwargs_is_refused() -> None:
    with pytest.raises(ValueError, match="must not hold 'generator'"):
        TrainingConfig(supernet_kwargs={"generator": None})


def test_the_record_is_frozen_and_its_supernet_kwargs_read_only() -> None:
    given = {"hidden_size": 8}
    t = TrainingConfig(supernet_kwargs=given)
    given["hidden_size"] = 16  # a copy is kept
    assert t.supernet_kwargs == {"hidden_size": 8}
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.lr = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        t.supernet_kwargs["hidden_size"] = 4  # type: ignore[index]


def test_values_are_canonical_and_a_torch_device_is_stored_by_name() -> None:
    numpy_values: dict[str, Any] = {"batch_size": np.int64(8), "momentum": np.float32(0.5)}
    t = TrainingConfig(lr=1, **numpy_values)
    assert type(t.batch_size) is int and type(t.lr) is float and type(t.momentum) is float
    assert TrainingConfig(device=torch.device("cpu")).device == "cpu"  # type: ignore[arg-type]
    assert TrainingConfig(grad_clip=math.inf).grad_clip == math.inf
    assert TrainingConfig() == TrainingConfig(supernet_kwargs={})
    assert hash(TrainingConfig(**_FLAT)) == hash(TrainingConfig(**_FLAT))
    assert len({TrainingConfig(lr=1.0), TrainingConfig(lr=1), TrainingConfig()}) == 2
    assert repr(TrainingConfig(supernet_kwargs=_KW, lr=2.0)) == (
        "TrainingConfig(supernet_kwargs={'hidden_size': 8, 'embed_size': 8}, lr=2.0)"
    )
    assert not any(TrainingConfig().is_set(name) for name in FIELDS)


def test_replace_pickle_deepcopy_and_dicts_round_trip() -> None:
    t = TrainingConfig(**_FLAT)
    assert dataclasses.replace(t, lr=2.0).lr == 2.0
    with pytest.raises(ValueError, match="lr"):
        dataclasses.replace(t, lr=-2.0)
    assert pickle.loads(pickle.dumps(t)) == t
    assert copy.deepcopy(t) == t
    assert TrainingConfig(**t.to_dict()) == t
    assert TrainingConfig.from_kwargs(**t.to_dict()) == t
    assert TrainingConfig.from_kwargs(lr=None, bptt=7) == TrainingConfig(bptt=7)
    with pytest.raises(ValueError, match="'n_train_steps' is not a TrainingConfig field"):
        TrainingConfig.from_kwargs(n_train_steps=1.0)
    training, rest = TrainingConfig.split({"lr": 2.0, "n_eval_batches": 3, "batch_size": 8})
    assert training == TrainingConfig(lr=2.0, batch_size=8) and rest == {"n_eval_batches": 3}


def test_the_module_imports_without_torch() -> None:
    script = (
        "import sys\n"
        "from optuna_enas.training._config import TrainingConfig\n"
        "TrainingConfig(lr=1.0, supernet_kwargs={'hidden_size': 8}, device='cpu')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


# -- folding the flat keywords -------------------------------------------------------------------
def test_flat_keywords_fill_the_fields_training_leaves_unset() -> None:
    base = TrainingConfig(lr=2.0)
    assert fold_training(None) == TrainingConfig()
    assert fold_training(base) is base
    assert fold_training(base, batch_size=8, device=None) == TrainingConfig(lr=2.0, batch_size=8)
    with pytest.raises(ValueError, match="training must be a TrainingConfig or None"):
        fold_training({"lr": 2.0})  # type: ignore[arg-type]


def test_a_flat_keyword_and_training_setting_the_same_field_is_refused() -> None:
    with pytest.raises(ValueError, match=r"lr=3\.0 and training\.lr=2\.0 both set lr"):
        fold_training(TrainingConfig(lr=2.0), lr=3.0)
    with pytest.raises(ValueError, match=r"supernet_kwargs=.* and training\.supernet_kwargs"):
        fold_training(TrainingConfig(supernet_kwargs=_KW), supernet_kwargs={"hidden_size": 4})


@pytest.mark.parametrize("name", ["supernet", "standalone", "retrain", "darts", "dsonas"])
def test_every_trainer_refuses_a_field_given_twice(
    name: str, corpus: Corpus, space: RNNCellSpace
) -> None:
    training = TrainingConfig(supernet_kwargs=_KW, batch_size=4, bptt=6)
    match = r"batch_size=8 and training\.batch_size=4 both set batch_size"
    with pytest.raises(ValueError, match=match):
        if name == "supernet":
            SupernetEvaluator(space, corpus, training=training, batch_size=8)
        elif name == "standalone":
            StandaloneEvaluator(space, corpus, training=training, batch_size=8)
        elif name == "retrain":
            retrain(space.sample_uniform(np.random.default_rng(0)), space, corpus,
                    training=training, batch_size=8)  # fmt: skip
        elif name == "darts":
            DARTS(space, corpus, training=training, batch_size=8)
        else:
            DSONAS(space, corpus, training=training, batch_size=8)
    with pytest.raises(ValueError, match="training must be a TrainingConfig"):
        SupernetEvaluator(space, corpus, training=dict(_FLAT))  # type: ignore[arg-type]


# -- resolution ----------------------------------------------------------------------------------
def test_resolution_fills_the_enas_defaults_as_the_flat_resolver(
    corpus: Corpus, space: RNNCellSpace
) -> None:
    setup = TrainingSetup.from_config(
        space, corpus, TrainingConfig(supernet_kwargs=_KW, device="cpu")
    )
    assert isinstance(setup, TrainingSetup)
    assert (setup.batch_size, setup.bptt, setup.optim) == (64, 35, DEFAULTS["rnn"])
    flat = resolve_training(
        space, corpus, supernet_kwargs=_KW, batch_size=None, bptt=None, lr=None,
        grad_clip=None, momentum=None, weight_decay=None, device=torch.device("cpu"),
    )  # fmt: skip
    assert flat == setup
    resolved = setup.training
    assert all(resolved.is_set(name) for name in FIELDS)
    assert TrainingSetup.from_config(space, corpus, resolved) == setup


# -- the same training either way ----------------------------------------------------------------
def test_supernet_evaluator_flat_and_training_give_the_same_values(
    corpus: Corpus, space: RNNCellSpace
) -> None:
    def values(evaluator: SupernetEvaluator) -> list[float]:
        study = optuna.create_study(
            direction=evaluator.direction, sampler=optuna.samplers.RandomSampler(seed=0)
        )
        study.optimize(evaluator, n_trials=4)
        return [float(t.value) for t in study.trials if t.value is not None]

    flat = SupernetEvaluator(space, corpus, seed=0, **_FLAT)
    packed = SupernetEvaluator(space, corpus, seed=0, training=TrainingConfig(**_FLAT))
    assert flat.training == packed.training == TrainingConfig(**_FLAT)
    assert flat._config == packed._config  # what checkpoints store
    a, b = values(flat), values(packed)
    assert len(a) == 4 and a == b
    # Half flat, half packed: the same too.
    half = SupernetEvaluator(
        space, corpus, seed=0, training=TrainingConfig(supernet_kwargs=_KW, lr=1.5),
        batch_size=4, bptt=6, grad_clip=0.5, momentum=0.5, weight_decay=1e-5, device="cpu",
    )  # fmt: skip
    assert values(half) == a


def test_standalone_evaluator_flat_and_training_give_the_same_values(
    corpus: Corpus, space: RNNCellSpace
) -> None:
    params = space.sample_uniform(np.random.default_rng(1)).to_params()
    common: dict[str, Any] = {"n_epochs": 2, "n_steps_per_epoch": 3, "seed": 0}
    flat = StandaloneEvaluator(space, corpus, **common, **_FLAT)
    packed = StandaloneEvaluator(space, corpus, training=TrainingConfig(**_FLAT), **common)
    assert flat.training == packed.training
    assert flat(FixedTrial(params)) == packed(FixedTrial(params))


def test_retrain_flat_and_training_give_the_same_model(
    corpus: Corpus, space: RNNCellSpace
) -> None:
    arch = space.sample_uniform(np.random.default_rng(2))
    common: dict[str, Any] = {"n_epochs": 1, "n_steps_per_epoch": 4, "seed": 0}
    a = retrain(arch, space, corpus, **common, **_FLAT)
    b = retrain(arch, space, corpus, training=TrainingConfig(**_FLAT), **common)
    assert (a.valid_value, a.test_value, a.history) == (b.valid_value, b.test_value, b.history)


def test_an_evaluators_training_reproduces_its_settings(
    corpus: Corpus, space: RNNCellSpace
) -> None:
    evaluator = SupernetEvaluator(space, corpus, seed=0, supernet_kwargs=_KW, device="cpu")
    standalone = StandaloneEvaluator(space, corpus, training=evaluator.training)
    assert standalone._setup == evaluator._setup


def test_rank_check_trains_from_scratch_with_the_evaluators_training(
    corpus: Corpus, space: RNNCellSpace
) -> None:
    evaluator = SupernetEvaluator(space, corpus, seed=0, **_FLAT)
    common: dict[str, Any] = {
        "n_archs": 2, "n_epochs": 1, "n_steps_per_epoch": 2, "seed": 0, "valid_batches": 1,
        "save_figure": False,
    }  # fmt: skip
    default = rank_check(evaluator, study_name="a", **common)
    explicit = rank_check(evaluator, study_name="b", training=evaluator.training, **common)
    assert default.standalone == explicit.standalone and default.supernet == explicit.supernet
    other = rank_check(
        evaluator, study_name="c", training=dataclasses.replace(evaluator.training, lr=0.1),
        **common,
    )  # fmt: skip
    assert other.standalone != default.standalone
    standalone = StandaloneEvaluator(space, corpus, training=evaluator.training)
    with pytest.raises(ValueError, match="training and standalone"):
        rank_check(evaluator, training=evaluator.training, standalone=standalone, **common)


@pytest.mark.parametrize("method", [DARTS, DSONAS])
def test_oneshot_flat_and_training_give_the_same_search(
    method: type[DARTS] | type[DSONAS], corpus: Corpus, space: RNNCellSpace
) -> None:
    runs = []
    for kwargs in (dict(_FLAT), {"training": TrainingConfig(**_FLAT)}):
        searcher = method(space, corpus, seed=0, eval_batches=1, **kwargs)
        result = searcher.search(None, n_steps=4, steps_per_epoch=2)
        runs.append((searcher, result))
    (s1, r1), (s2, r2) = runs
    assert s1.training == s2.training == TrainingConfig(**_FLAT)
    assert (s1.lr, s1.momentum, s1.weight_decay, s1.grad_clip) == (1.5, 0.5, 1e-5, 0.5)
    assert [r.value for r in r1.history] == [r.value for r in r2.history]
    assert r1.architecture == r2.architecture
    assert all(torch.equal(a, b) for a, b in zip(s1.arch, s2.arch, strict=True))


def test_oneshot_unset_fields_take_the_methods_defaults(
    corpus: Corpus, space: RNNCellSpace
) -> None:
    darts = DARTS(space, corpus, seed=0, training=TrainingConfig(supernet_kwargs=_KW))
    t = darts.training  # DARTS_RNN, not the ENAS defaults of the evaluators
    assert (t.batch_size, t.bptt, t.lr, t.momentum, t.weight_decay, t.grad_clip) == (
        256, 35, 20.0, 0.0, 5e-7, 0.25,
    )  # fmt: skip
    assert darts.batch_size == 256 and darts.lr == 20.0


# -- the CLI ----------------------------------------------------------------------------------
def test_the_cli_splits_a_stored_evaluator_config_into_one_record() -> None:
    stored = {
        "batch_size": 8,
        "n_train_steps": 1.0,
        "n_eval_batches": 2,
        "supernet_kwargs": {"embed_size": 16, "hidden_size": 16},
        "bptt": 20,
    }
    training, rest = training_from_config(stored, "cpu")
    assert training == TrainingConfig(
        supernet_kwargs={"embed_size": 16, "hidden_size": 16}, batch_size=8, bptt=20,
        device="cpu",
    )  # fmt: skip
    assert rest == {"n_train_steps": 1.0, "n_eval_batches": 2}
    assert training_from_config({"supernet_kwargs": {}, "batch_size": 8}, None)[0].bptt is None


def test_with_defaults_fills_only_the_unset_fields() -> None:
    record = TrainingConfig(lr=2.0, batch_size=None)
    filled = record.with_defaults(lr=9.0, batch_size=16, grad_clip=0.25)
    assert (filled.lr, filled.batch_size, filled.grad_clip) == (2.0, 16, 0.25)
    assert record.with_defaults(lr=9.0) is record  # nothing unset among them: unchanged
    with pytest.raises(ValueError, match="batch_size"):
        record.with_defaults(batch_size=0)  # the filled record is validated as any other
