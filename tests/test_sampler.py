from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import RelativeSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
from optuna.trial import TrialState

from optuna_enas import ControllerConfig
from optuna_enas import ENASSampler
from optuna_enas import MacroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import SearchSpace
from optuna_enas import perplexity_reward
from optuna_enas import suggest_architecture
from optuna_enas.sampler import EliteConfig


optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = RNNCellSpace(n_nodes=4)
FAST = ControllerConfig(lstm_size=16, n_aggregate=2, learning_rate=0.02)
# Tests of generic sampler properties run under both rules (a ``rule`` argument); "elite" leaves
# its uniform start-up after 2 trials here. Tests of REINFORCE itself pass rule="reinforce".
RULES = {"reinforce": "reinforce", "elite": EliteConfig(n_startup_trials=2)}


@pytest.fixture(params=sorted(RULES))
def rule(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def fast(rule: str, seed: int = 0, **kwargs: Any) -> ENASSampler:
    """``ENASSampler(SPACE, config=FAST)`` under the rule named ``rule`` (see :data:`RULES`)."""
    return ENASSampler(SPACE, seed=seed, config=FAST, rule=RULES[rule], **kwargs)  # type: ignore[arg-type]


def relu_count(space: SearchSpace) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        arch = suggest_architecture(trial, space, record=False)
        return float(sum(v == "relu" for _, v in arch.params))

    return objective


def params_seq(study: optuna.Study) -> list[dict[str, object]]:
    return [t.params for t in study.trials]


def state_of(sampler: ENASSampler) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in sampler.controller.state_dict().items()}


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# Optuna's own sampler contract. ENASSampler() learns categorical decisions from the study and
# hands every other distribution to its RandomSampler.
class TestConformance(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: ENASSampler(seed=0, config=FAST)


def test_default_constructor_learns_decisions_from_the_study() -> None:
    sampler = ENASSampler(seed=0)
    study = optuna.create_study(sampler=sampler, direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_categorical("op", ["a", "b", "c"])
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        y = trial.suggest_categorical("depth", [1, 2, 3])
        return float(x == "b") + y + lr

    study.optimize(objective, n_trials=12)
    assert [d.name for d in sampler.decisions] == ["op", "depth"]
    assert len(sampler.history) == 12
    # From the second trial on, the controller sampled the decisions and stored its policy.
    assert "enas:sample" not in study.trials[0].system_attrs
    assert all("enas:sample" in t.system_attrs for t in study.trials[1:])


def test_default_learns_toy_optimum_that_random_misses_in_300_trials() -> None:
    space = RNNCellSpace()  # the paper's 12 nodes; optimum: all 12 activations relu
    enas = optuna.create_study(sampler=ENASSampler(space, seed=0), direction="maximize")
    enas.optimize(relu_count(space), n_trials=300)
    rand = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    rand.optimize(relu_count(space), n_trials=300)
    last = [t.value for t in enas.trials[-50:]]
    assert enas.best_value == 12.0
    assert rand.best_value < 12.0
    assert float(np.mean(last)) > 8.0  # random search averages 3


def test_same_seed_same_sequence_and_different_seed_differs(rule: str) -> None:
    runs = []
    for seed in (3, 3, 4):
        study = optuna.create_study(sampler=fast(rule, seed))
        study.optimize(relu_count(SPACE), n_trials=20)
        runs.append(params_seq(study))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_resume_in_new_sampler_replays_to_identical_controller(
    tmp_path: object, rule: str
) -> None:
    url = f"sqlite:///{tmp_path}/resume.db"
    # One uninterrupted run of 10 trials ...
    full = fast(rule, 1)
    s_full = optuna.create_study(sampler=full, storage=url, study_name="full")
    s_full.optimize(relu_count(SPACE), n_trials=10)
    # ... equals 6 trials, a new process-like sampler on the reloaded study, then 4 more.
    first = fast(rule, 1)
    s = optuna.create_study(sampler=first, storage=url, study_name="split")
    s.optimize(relu_count(SPACE), n_trials=6)
    second = fast(rule, 1)
    s2 = optuna.load_study(study_name="split", storage=url, sampler=second)
    s2.optimize(relu_count(SPACE), n_trials=4)
    assert params_seq(s2) == params_seq(s_full)
    assert_same_state(state_of(second), state_of(full))
    assert second.baseline == full.baseline
    assert all(h["on_policy"] for h in second.history)


@pytest.mark.parametrize("failure", ["raise", "nan", "inf"])
def test_failing_objective_leaves_controller_unchanged(failure: str, rule: str) -> None:
    sampler = ENASSampler(
        SPACE,
        seed=0,
        config=ControllerConfig(lstm_size=16, n_aggregate=1),
        rule=RULES[rule],  # type: ignore[arg-type]
    )
    study = optuna.create_study(sampler=sampler)
    study.optimize(relu_count(SPACE), n_trials=3)
    before, baseline, n = state_of(sampler), sampler.baseline, len(sampler.history)

    def bad(trial: optuna.Trial) -> float:
        suggest_architecture(trial, SPACE)
        if failure == "raise":
            raise RuntimeError("boom")
        return math.nan if failure == "nan" else math.inf

    study.optimize(bad, n_trials=2, catch=(RuntimeError,))
    assert_same_state(before, state_of(sampler))
    assert sampler.baseline == baseline and len(sampler.history) == n
    expected = TrialState.COMPLETE if failure == "inf" else TrialState.FAIL
    assert [t.state for t in study.trials[-2:]] == [expected, expected]
    study.optimize(relu_count(SPACE), n_trials=2)  # and the study goes on
    assert len(sampler.history) == n + 2


def test_after_trial_never_raises_on_a_broken_reward_fn(rule: str) -> None:
    def broken(value: float, direction: object) -> float:
        raise ZeroDivisionError

    sampler = fast(rule, 0, reward_fn=broken)
    study = optuna.create_study(sampler=sampler)
    study.optimize(relu_count(SPACE), n_trials=3)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert sampler.history == []


def test_reward_is_direction_aware_and_perplexity_reward_is_c_over_ppl() -> None:
    for direction, sign in (("maximize", 1.0), ("minimize", -1.0)):
        sampler = ENASSampler(SPACE, seed=0, config=FAST)
        study = optuna.create_study(sampler=sampler, direction=direction)
        study.optimize(lambda t: suggest_architecture(t, SPACE) and 4.0, n_trials=1)
        assert sampler.history[0]["reward"] == sign * 4.0
    sampler = ENASSampler(SPACE, seed=0, config=FAST, reward_fn=perplexity_reward(80.0))
    study = optuna.create_study(sampler=sampler, direction="minimize")
    study.optimize(lambda t: suggest_architecture(t, SPACE) and 160.0, n_trials=1)
    assert sampler.history[0]["reward"] == 0.5
    assert study.trials[0].system_attrs["enas:stats"]["reward"] == 0.5


def test_unknown_params_go_to_the_independent_sampler() -> None:
    study = optuna.create_study(sampler=ENASSampler(SPACE, seed=0, config=FAST))

    def objective(trial: optuna.Trial) -> float:
        suggest_architecture(trial, SPACE)
        return trial.suggest_float("lr", 1e-3, 1.0, log=True)

    study.optimize(objective, n_trials=5)
    assert len({t.params["lr"] for t in study.trials}) == 5


def test_enqueued_architecture_is_teacher_forced(rule: str) -> None:
    sampler = fast(rule, 0)
    study = optuna.create_study(sampler=sampler)
    fixed = {"node0_act": "sigmoid", "node2_in": 0, "node3_act": "identity"}
    study.enqueue_trial(fixed)
    study.optimize(relu_count(SPACE), n_trials=1)
    trial = study.trials[0]
    assert {k: trial.params[k] for k in fixed} == fixed
    record = trial.system_attrs["enas:sample"]
    idx = [SPACE.names.index(k) for k in fixed]
    assert record["forced"] == sorted(idx)
    expected = [SPACE.decisions[i].choices.index(fixed[SPACE.names[i]]) for i in idx]
    assert [record["actions"][i] for i in idx] == expected
    assert len(sampler.history) == 1


def test_enqueue_trial_with_wrong_param_type_fails_the_trial_not_the_study() -> None:
    sampler = ENASSampler(SPACE, seed=0, config=FAST)
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"node1_in": "zero"})  # not one of the choices (0,)
    study.optimize(relu_count(SPACE), n_trials=2, catch=(ValueError,))
    assert study.trials[1].state == TrialState.COMPLETE


def test_partial_fixed_sampler_updates_on_actual_params(rule: str) -> None:
    base = fast(rule, 0)
    sampler = optuna.samplers.PartialFixedSampler({"node0_act": "relu"}, base)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(relu_count(SPACE), n_trials=6)
    assert all(t.params["node0_act"] == "relu" for t in study.trials)
    assert len(base.history) == 6


def test_clashing_param_distribution_is_a_clear_error() -> None:
    study = optuna.create_study(sampler=ENASSampler(SPACE, seed=0, config=FAST))

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_categorical("node0_act", ["tanh", "gelu"])
        return 0.0

    # Optuna itself refuses the suggest (before any sampler sees it); the trial fails.
    with pytest.raises(ValueError, match="dynamic value space"):
        study.optimize(objective, n_trials=1)
    assert study.trials[0].state == TrialState.FAIL


def test_study_whose_trials_clash_with_the_space_is_refused_by_name() -> None:
    other = RNNCellSpace(n_nodes=4, activations=["tanh", "relu"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(relu_count(other), n_trials=2)
    study.sampler = ENASSampler(SPACE, seed=0, config=FAST)
    with pytest.raises(ValueError, match="clashes.*node0_act"):
        study.optimize(relu_count(SPACE), n_trials=1)
    assert study.trials[-1].state == TrialState.FAIL
    assert len(study.trials) == 3


@pytest.mark.parametrize(
    "pruner",
    [
        optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        optuna.pruners.SuccessiveHalvingPruner(),
        optuna.pruners.HyperbandPruner(min_resource=1, max_resource=8),
    ],
    ids=["median", "successive-halving", "hyperband"],
)
def test_pruners_and_pruned_trial_policy(pruner: optuna.pruners.BasePruner, rule: str) -> None:
    sampler = fast(rule, 0)
    study = optuna.create_study(sampler=sampler, pruner=pruner, direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        score = relu_count(SPACE)(trial)
        for step in range(8):
            trial.report(score + step * 0.01, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return score

    study.optimize(objective, n_trials=30)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "the pruner should stop some children"
    assert len(sampler.history) == 30  # pruned trials learn from their last value

    ignoring = fast(rule, 0, pruned_trial_policy="ignore")
    study2 = optuna.create_study(sampler=ignoring, pruner=pruner, direction="maximize")
    study2.optimize(objective, n_trials=30)
    n_pruned = sum(t.state == TrialState.PRUNED for t in study2.trials)
    assert len(ignoring.history) == 30 - n_pruned


def test_threads_share_one_controller(rule: str) -> None:
    sampler = fast(rule, 0)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(relu_count(SPACE), n_trials=40, n_jobs=2)
    assert len(study.trials) == 40
    assert sorted(h["trial"] for h in sampler.history) == list(range(40))


def test_two_samplers_on_one_storage_learn_from_each_other(tmp_path: object, rule: str) -> None:
    url = f"sqlite:///{tmp_path}/workers.db"
    a = fast(rule, 10)
    b = fast(rule, 11)
    study_a = optuna.create_study(sampler=a, storage=url, study_name="s", direction="maximize")
    study_b = optuna.load_study(sampler=b, storage=url, study_name="s")
    for _ in range(3):
        study_a.optimize(relu_count(SPACE), n_trials=2)
        study_b.optimize(relu_count(SPACE), n_trials=2)
    # Each sampler consumed all of its own trials and the other's finished ones.
    assert len(a.history) == 10 and len(b.history) == 12  # a never saw trials 10, 11
    assert sorted(h["trial"] for h in b.history) == list(range(12))
    assert any(not h["on_policy"] for h in b.history)


def test_sample_architectures_from_trained_controller(rule: str) -> None:
    sampler = fast(rule, 0)
    optuna.create_study(sampler=sampler).optimize(relu_count(SPACE), n_trials=4)
    archs = sampler.sample_architectures(5, seed=0)
    assert len(archs) == 5 and all(a.space == "rnn" for a in archs)
    assert archs == sampler.sample_architectures(5, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": "0"}, "seed"),
        ({"pruned_trial_policy": "drop"}, "pruned_trial_policy"),
        ({"config": "enas-v2"}, "preset"),
        ({"config": 3}, "config"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"seed": np.float64(1.0)}, "seed"),
        ({"reward_fn": 3}, "reward_fn"),
        ({"independent_sampler": "random"}, "independent_sampler"),
        ({"preset": "enas-v2"}, "preset"),
        ({"preset": "default", "config": "default"}, "config or preset"),
        ({"record_stats": 1}, "record_stats"),
    ],
)
def test_bad_sampler_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ENASSampler(SPACE, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lstm_size": 0}, "lstm_size"),
        ({"temperature": -1.0}, "temperature"),
        ({"baseline_decay": 1.0}, "baseline_decay"),
        ({"skip_target": 1.5}, "skip_target"),
        ({"entropy_weight": -0.1}, "entropy_weight"),
        ({"n_aggregate": 0}, "n_aggregate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"lstm_size": 10**6}, "lstm_size"),
        ({"lstm_num_layers": 100}, "lstm_num_layers"),
        ({"n_aggregate": 10**9}, "n_aggregate"),
        ({"ppo_epochs": 0}, "ppo_epochs"),
        ({"reward_window": 1}, "reward_window"),
        ({"advantage": "zscore"}, "advantage"),
        ({"advantage_clip": 0.0}, "advantage_clip"),
        ({"op_bias_init": (1.0, float("nan"))}, "op_bias_init"),
        ({"input_attention": 1}, "input_attention"),
    ],
)
def test_bad_controller_config(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ControllerConfig(**kwargs)  # type: ignore[arg-type]


def test_presets_match_their_sources() -> None:
    paper = ControllerConfig.from_preset("enas-paper-ptb")
    assert (paper.lstm_size, paper.learning_rate, paper.temperature, paper.tanh_constant) == (
        100,
        3.5e-4,
        5.0,
        2.5,
    )
    assert (paper.entropy_weight, paper.baseline_decay) == (1e-4, 0.95)
    macro = ControllerConfig.from_preset("enas-official-cifar-macro", lstm_size=32)
    assert (macro.skip_target, macro.skip_weight, macro.lstm_size) == (0.4, 0.8, 32)
    assert macro.op_tanh_reduce == 1.0  # the official macro controller never reduces
    with pytest.raises(ValueError, match="lsmt_size"):
        ControllerConfig.from_preset("enas-official-ptb", lsmt_size=3)
    ptb = ControllerConfig.from_preset("enas-official-ptb")
    assert (ptb.input_attention, ptb.attention_recency, ptb.learning_rate) == (True, 6.0, 1e-3)
    micro = ControllerConfig.from_preset("enas-official-cifar-micro")
    assert (micro.op_bias_init, micro.normal_op_bias) == ((10.0, 10.0, 0.0), (0.25, 0.25, -0.25))
    for name in ("enas-paper-ptb", "enas-official-ptb", "enas-official-cifar-macro"):
        preset = ControllerConfig.from_preset(name)
        assert (preset.advantage, preset.ppo_epochs) == ("baseline", 1)
        assert not preset.op_bias_init and not preset.normal_op_bias
    assert ControllerConfig.from_preset("default") == ControllerConfig()
    assert ControllerConfig().advantage == "rank"


def test_numpy_seed_is_accepted() -> None:
    a = ENASSampler(SPACE, seed=np.int64(3), config=FAST)
    b = ENASSampler(SPACE, seed=3, config=FAST)
    assert a.controller.fingerprint() == b.controller.fingerprint()


def test_preset_keyword_gives_the_exact_enas_config() -> None:
    sampler = ENASSampler(SPACE, preset="enas-official-ptb")
    assert sampler.config == ControllerConfig.from_preset("enas-official-ptb")
    assert ENASSampler(SPACE).config == ControllerConfig()


# -- bookkeeping across storages ---------------------------------------------------------------
def _prefilled(storage: object, name: str, n: int) -> optuna.Study:
    study = optuna.create_study(
        sampler=optuna.samplers.RandomSampler(seed=1),
        storage=storage,  # type: ignore[arg-type]
        study_name=name,
        direction="maximize",
    )
    study.optimize(relu_count(SPACE), n_trials=n)
    return study


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_sampler_reused_on_a_study_in_another_storage_learns_its_trials(
    kind: str,
    tmp_path: object,
    rule: str,
) -> None:
    def storage(i: int) -> object:
        return None if kind == "memory" else f"sqlite:///{tmp_path}/s{i}.db"

    sampler = fast(rule, 0)
    first = optuna.create_study(
        sampler=sampler, storage=storage(0), study_name="a", direction="maximize"
    )  # type: ignore[arg-type]
    first.optimize(relu_count(SPACE), n_trials=5)
    # Same study id (0 in memory, 1 in each SQLite file) and, for SQLite, the same name.
    second = _prefilled(storage(1), "a", 4)
    assert second._study_id == first._study_id
    second.sampler = sampler
    second.optimize(relu_count(SPACE), n_trials=1)
    assert [h["trial"] for h in sampler.history] == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]


def test_same_sqlite_study_through_two_storage_objects_is_not_learned_twice(
    tmp_path: object,
    rule: str,
) -> None:
    url = f"sqlite:///{tmp_path}/one.db"
    sampler = fast(rule, 0)
    study = optuna.create_study(sampler=sampler, storage=url, study_name="s")
    study.optimize(relu_count(SPACE), n_trials=3)
    again = optuna.load_study(study_name="s", storage=url, sampler=sampler)
    again.optimize(relu_count(SPACE), n_trials=1)
    assert [h["trial"] for h in sampler.history] == [0, 1, 2, 3]


def test_choices_that_compare_equal_do_not_stop_the_others_from_learning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sampler = ENASSampler(seed=0, config=FAST)
    study = optuna.create_study(sampler=sampler, direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        op = trial.suggest_categorical("op", ["a", "b", "c"])
        odd = trial.suggest_categorical("odd", [None, 1, 1.0, True, "x"])
        depth = trial.suggest_categorical("depth", [1, 2, 3])
        return float(op == "b") + depth + (odd is None)

    with caplog.at_level("WARNING", logger="optuna_enas"):
        study.optimize(objective, n_trials=12)
    assert [d.name for d in sampler.decisions] == ["op", "depth"]
    assert len(sampler.history) == 12
    assert sum("'odd'" in r.message for r in caplog.records) == 1
    assert sampler.n_updates > 0


# -- the evaluator's training-phase trials -------------------------------------------------------
def test_training_phase_trials_are_sampled_but_never_learned_from(
    tmp_path: object, rule: str
) -> None:
    def objective(trial: optuna.Trial) -> float:
        value = relu_count(SPACE)(trial)
        if trial.number % 3 != 2:
            trial.set_user_attr("enas:phase", "train")
            return 1e9  # a training loss, say: not a reward
        return value

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    url = JournalStorage(JournalFileBackend(f"{tmp_path}/phase.log"))
    sampler = fast(rule, 0)
    study = optuna.create_study(sampler=sampler, storage=url, study_name="p")
    study.optimize(objective, n_trials=9)
    assert all("enas:sample" in t.system_attrs for t in study.trials)  # sampled as usual
    assert [h["trial"] for h in sampler.history] == [2, 5, 8]
    assert all("enas:stats" not in t.system_attrs for t in study.trials if t.number % 3 != 2)
    replay = fast(rule, 0)
    assert replay.sync(optuna.load_study(study_name="p", storage=url, sampler=replay)) == 3
    assert [h["trial"] for h in replay.history] == [2, 5, 8]


# -- multi-objective ---------------------------------------------------------------------------
def test_multi_objective_needs_a_scalarising_reward() -> None:
    study = optuna.create_study(
        sampler=ENASSampler(SPACE, seed=0, config=FAST), directions=["maximize", "minimize"]
    )
    with pytest.raises(ValueError, match="reward_fn.*multi-objective|multi-objective.*reward_fn"):
        study.optimize(lambda t: (relu_count(SPACE)(t), 1.0), n_trials=1)


def test_multi_objective_with_weighted_sum_and_mnasnet_rewards() -> None:
    from optuna_enas.sampler import mnasnet_reward
    from optuna_enas.sampler import weighted_sum_reward

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        relus = relu_count(SPACE)(trial)
        return 0.5 + 0.1 * relus, 2.0 + relus  # accuracy up, latency up

    for reward_fn, expected in (
        (weighted_sum_reward([1.0, 0.5]), lambda a, lat: a - 0.5 * lat),
        (mnasnet_reward(4.0, w=-0.07), lambda a, lat: a * (lat / 4.0) ** -0.07),
    ):
        sampler = ENASSampler(SPACE, seed=0, config=FAST, reward_fn=reward_fn, rule="reinforce")
        study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize"])
        study.optimize(objective, n_trials=6)
        assert len(sampler.history) == 6 and sampler.n_updates == 3
        for h, t in zip(sampler.history, study.trials, strict=True):
            assert h["reward"] == pytest.approx(expected(*t.values))
    with pytest.raises(ValueError, match="target"):
        mnasnet_reward(0.0)
    with pytest.raises(ValueError, match="weights"):
        weighted_sum_reward([1.0, -1.0])


# -- what the learner is fed -----------------------------------------------------------------
def test_learner_gets_the_actual_params_not_the_sampled_ones(rule: str) -> None:
    base = fast(rule, 0)
    fed: list[list[int]] = []
    observe = base._learner.observe

    def spy(**kwargs: object) -> dict[str, float]:
        fed.append(list(kwargs["actions"]))  # type: ignore[call-overload]
        return observe(**kwargs)  # type: ignore[arg-type]

    base._learner.observe = spy  # type: ignore[method-assign]
    sampler = optuna.samplers.PartialFixedSampler({"node0_act": "relu"}, base)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(relu_count(SPACE), n_trials=12)
    relu = SPACE.decisions[0].choices.index("relu")
    sampled = [t.system_attrs["enas:sample"]["actions"][0] for t in study.trials]
    assert any(a != relu for a in sampled)  # the controller drew something else ...
    assert [a[0] for a in fed] == [relu] * 12  # ... but learned from what ran


def test_macro_space_with_its_preset_learns_with_the_layerwise_skip_penalty() -> None:
    space = MacroSpace(n_layers=4)
    config = ControllerConfig.from_preset("enas-official-cifar-macro", lstm_size=16, n_aggregate=4)
    sampler = ENASSampler(space, seed=0, config=config, rule="reinforce")
    study = optuna.create_study(sampler=sampler, direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        arch = suggest_architecture(trial, space, record=False)
        return float(sum(v == 1 for k, v in arch.params if "skip" in k))

    study.optimize(objective, n_trials=20)
    assert sampler.controller.skip_groups() == [[2], [4, 5], [7, 8, 9]]
    assert sampler.n_updates == 5
    assert all(bool(torch.isfinite(p).all()) for p in sampler.controller.parameters())
