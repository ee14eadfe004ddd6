"""The ``"elite"`` learning rule on real Optuna studies (SQLite where storage matters)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import RelativeSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
from optuna.trial import TrialState

from optuna_enas.sampler import ControllerConfig
from optuna_enas.sampler import EliteConfig
from optuna_enas.sampler import ENASSampler
from optuna_enas.sampler import _sampler as sampler_module
from optuna_enas.sampler import weighted_sum_reward
from optuna_enas.sampler._elite import EliteLearner
from optuna_enas.spaces import Decision
from optuna_enas.spaces import SearchSpace
from optuna_enas.spaces import suggest_architecture


optuna.logging.set_verbosity(optuna.logging.WARNING)

SMALL = ControllerConfig(lstm_size=16)
SPACE = SearchSpace([Decision(f"d{i}", ("a", "b", "c", "d")) for i in range(6)], name="toy")
TINY = SearchSpace([Decision(f"t{i}", (0, 1, 2)) for i in range(3)], name="tiny")  # 27 archs


def hits(space: SearchSpace, scale: Callable[[float], float] = float) -> Callable[..., float]:
    """Decisions equal to the first choice (maximize): optimum at all-'a'."""

    def objective(trial: optuna.Trial) -> float:
        arch = suggest_architecture(trial, space, record=False)
        pairs = zip(space.decisions, arch.params, strict=True)
        return scale(sum(v == d.choices[0] for d, (_, v) in pairs))

    return objective


def elite(space: SearchSpace | None = SPACE, seed: int = 0, **kw: object) -> ENASSampler:
    return ENASSampler(space, seed=seed, config=SMALL, rule=EliteConfig(**kw))  # type: ignore[arg-type]


def arch_keys(study: optuna.Study) -> list[tuple[object, ...]]:
    return [tuple(sorted(t.params.items())) for t in study.trials]


def state_of(sampler: ENASSampler) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in sampler.controller.state_dict().items()}


class TestConformance(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        return lambda: ENASSampler(seed=0, config=SMALL, rule="elite")


def test_elite_finds_the_optimum_that_random_misses() -> None:
    study = optuna.create_study(sampler=elite(), direction="maximize")
    study.optimize(hits(SPACE), n_trials=120)
    rand = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    rand.optimize(hits(SPACE), n_trials=120)
    assert study.best_value == 6.0
    assert rand.best_value < 6.0
    sampler = study.sampler
    assert isinstance(sampler, ENASSampler) and sampler.rule == "elite"
    assert sampler.n_updates > 0 and sampler.n_skipped_updates == 0
    # The refit concentrated the policy on the elite: draws now mostly hit 5 or 6 of 6.
    draws = sampler.sample_architectures(50, seed=1)
    mean_hits = np.mean([sum(v == "a" for _, v in a.params) for a in draws])
    assert mean_hits > 4.0  # uniform draws average 1.5


def test_never_asks_twice_until_the_space_is_exhausted() -> None:
    study = optuna.create_study(sampler=elite(TINY, n_startup_trials=3), direction="maximize")
    study.optimize(hits(TINY), n_trials=27)
    assert len(set(arch_keys(study))) == 27  # every architecture of the space, once
    study.optimize(hits(TINY), n_trials=3)  # exhausted: repeats allowed, no error
    assert len(study.trials) == 30


def test_dedupe_off_repeats_architectures() -> None:
    study = optuna.create_study(
        sampler=elite(TINY, n_startup_trials=3, dedupe=False), direction="maximize"
    )
    study.optimize(hits(TINY), n_trials=27)
    assert len(set(arch_keys(study))) < 27


def test_same_seed_same_sequence_and_different_seed_differs() -> None:
    runs = []
    for seed in (3, 3, 4):
        study = optuna.create_study(sampler=elite(seed=seed), direction="maximize")
        study.optimize(hits(SPACE), n_trials=25)
        runs.append(arch_keys(study))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_increasing_transform_of_the_objective_gives_the_same_search() -> None:
    runs = []
    for scale in (float, lambda h: math.exp(50 * h), lambda h: -1e300 + h * 1e290):
        study = optuna.create_study(sampler=elite(seed=5), direction="maximize")
        study.optimize(hits(SPACE, scale), n_trials=30)
        runs.append(arch_keys(study))
    assert runs[0] == runs[1] == runs[2]


def test_resume_from_sqlite_replays_to_the_identical_controller(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/resume.db"
    full = elite(seed=1, n_startup_trials=4)
    s_full = optuna.create_study(
        sampler=full, storage=url, study_name="full", direction="maximize"
    )
    s_full.optimize(hits(SPACE), n_trials=24)
    first = elite(seed=1, n_startup_trials=4)
    s = optuna.create_study(sampler=first, storage=url, study_name="split", direction="maximize")
    s.optimize(hits(SPACE), n_trials=14)
    second = elite(seed=1, n_startup_trials=4)  # a new process: nothing but the storage
    s2 = optuna.load_study(study_name="split", storage=url, sampler=second)
    s2.optimize(hits(SPACE), n_trials=10)
    assert arch_keys(s2) == arch_keys(s_full)
    a, b = state_of(second), state_of(full)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert second.n_updates == full.n_updates > 0
    assert second.baseline == full.baseline


def test_two_workers_on_sqlite_share_history_and_never_repeat(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/workers.db"
    a, b = elite(seed=10, n_startup_trials=4), elite(seed=11, n_startup_trials=4)
    study_a = optuna.create_study(sampler=a, storage=url, study_name="s", direction="maximize")
    study_b = optuna.load_study(sampler=b, storage=url, study_name="s")
    for _ in range(5):
        study_a.optimize(hits(SPACE), n_trials=3)
        study_b.optimize(hits(SPACE), n_trials=3)
    assert sorted(h["trial"] for h in b.history) == list(range(30))
    keys = arch_keys(study_b)
    assert len(set(keys)) == len(keys) == 30  # neither worker re-proposed the other's
    assert study_b.best_value >= 5.0


def test_threads_share_one_controller_and_never_repeat() -> None:
    sampler = elite()
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(hits(SPACE), n_trials=40, n_jobs=2)
    assert sorted(h["trial"] for h in sampler.history) == list(range(40))
    assert len(set(arch_keys(study))) == 40  # running proposals count as asked


@pytest.mark.parametrize("poison", [math.nan, math.inf, -math.inf, 1e308, -1e308, math.exp(700)])
def test_no_value_poisons_the_elite(poison: float) -> None:
    sampler = elite(seed=2, n_startup_trials=4)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    good = hits(SPACE)

    def objective(trial: optuna.Trial) -> float:
        value = good(trial)
        return poison if trial.number % 3 == 1 else value

    study.optimize(objective, n_trials=45)
    assert all(torch.isfinite(p).all() for p in sampler.controller.parameters())
    assert sampler.n_skipped_updates == 0 and sampler.n_updates > 0
    learned = sampler.history
    if not math.isfinite(poison):  # never a reward
        assert len(learned) == 30
        assert all(math.isfinite(h["reward"]) for h in learned)
    if math.isfinite(poison) and poison > 1e300:
        # The best value there is: by rank, the elite is the poisoned trials.
        assert sampler.baseline == poison
        return
    # Still learns: a later draw hits more often than a uniform one (1.5 of 6).
    draws = sampler.sample_architectures(40, seed=0)
    assert np.mean([sum(v == "a" for _, v in d.params) for d in draws]) > 2.0


def test_multi_objective_through_a_scalarising_reward(tmp_path: Path) -> None:
    sampler = ENASSampler(
        SPACE, seed=0, config=SMALL, rule="elite", reward_fn=weighted_sum_reward([1.0, 0.5])
    )
    study = optuna.create_study(
        sampler=sampler,
        storage=f"sqlite:///{tmp_path}/mo.db",
        directions=["maximize", "minimize"],
    )
    good = hits(SPACE)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        h = good(trial)
        return h, float(trial.params["d0"] != "a")

    study.optimize(objective, n_trials=60)
    assert len(sampler.history) == 60
    assert sampler.n_updates > 0
    assert max(t.values[0] for t in study.trials) == 6.0


def test_elite_is_bounded_and_refits_only_when_it_changes() -> None:
    sampler = elite(max_elite=5, n_startup_trials=5)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(hits(SPACE), n_trials=150)
    stats = sampler.history
    assert max(h["elite_size"] for h in stats) == 5
    refits = [h for h in stats if "loss" in h]
    assert len(refits) == sampler.n_updates
    assert 0 < sampler.n_updates < 150 - 5
    # Once the elite has its full size (k(n) = min(ceil(0.1 n), 5): n >= 41), its threshold
    # only rises (rank-based, best kept).
    thresholds = [h["baseline"] for h in stats[41:]]
    assert thresholds == sorted(thresholds)


def test_enqueued_architecture_is_evaluated_as_given() -> None:
    sampler = elite(n_startup_trials=2)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(hits(SPACE), n_trials=12)
    fixed = {"d0": "d", "d3": "c"}
    study.enqueue_trial(fixed)
    study.optimize(hits(SPACE), n_trials=1)
    assert {k: study.trials[-1].params[k] for k in fixed} == fixed


def test_learns_decisions_from_the_study_without_a_space() -> None:
    sampler = ENASSampler(seed=0, config=SMALL, rule="elite")
    study = optuna.create_study(sampler=sampler, direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_categorical("op", ["a", "b", "c"])
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        y = trial.suggest_categorical("depth", [1, 2, 3])
        return float(x == "b") + y + lr

    study.optimize(objective, n_trials=30)
    assert [d.name for d in sampler.decisions] == ["op", "depth"]
    assert len(sampler.history) == 30
    assert study.best_params["op"] == "b" and study.best_params["depth"] == 3


def test_a_decision_that_appears_later_joins_the_elite_refit() -> None:
    sampler = ENASSampler(seed=0, config=SMALL, rule=EliteConfig(n_startup_trials=3))
    study = optuna.create_study(sampler=sampler, direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_categorical("op", ["a", "b", "c"])
        value = float(x == "b")
        if trial.number >= 15:  # a new categorical from trial 15 on
            value += float(trial.suggest_categorical("late", ["u", "v"]) == "v")
        return value

    study.optimize(objective, n_trials=40)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert [d.name for d in sampler.decisions] == ["op", "late"]
    assert len(sampler.history) == 40 and sampler.n_skipped_updates == 0
    refits_after = [h for h in sampler.history[16:] if "loss" in h]
    assert refits_after  # the refit went on with the grown controller
    assert study.best_value == 2.0


def test_training_phase_trials_are_sampled_but_never_learned_from(tmp_path: Path) -> None:
    sampler = elite(n_startup_trials=3)
    study = optuna.create_study(
        sampler=sampler, storage=f"sqlite:///{tmp_path}/phase.db", direction="maximize"
    )
    good = hits(SPACE)

    def objective(trial: optuna.Trial) -> float:
        value = good(trial)
        if trial.number % 2 == 1:
            trial.set_user_attr("enas:phase", "train")
            raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=30)
    assert sorted(h["trial"] for h in sampler.history) == list(range(0, 30, 2))
    replay = elite(n_startup_trials=3)  # a new process: the same, from the storage
    replay.sync(study)
    assert [h["trial"] for h in replay.history] == [h["trial"] for h in sampler.history]
    a, b = state_of(replay), state_of(sampler)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_rule_names_and_presets() -> None:
    assert ENASSampler(preset="enas-official-ptb").rule == "reinforce"
    assert ENASSampler(rule="reinforce").rule == "reinforce"
    assert ENASSampler(rule="elite").rule == "elite"
    assert ENASSampler(rule="elite").elite_config == EliteConfig()
    assert ENASSampler(rule="reinforce").elite_config is None
    with pytest.raises(ValueError, match="rule must be one of"):
        ENASSampler(rule="cem")  # type: ignore[arg-type]


@pytest.mark.parametrize("default", ["elite", "reinforce"])
def test_rule_none_is_the_default_rule_only_with_the_default_config(
    default: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sampler_module, "DEFAULT_RULE", default)
    for kept in ({}, {"config": "default"}, {"config": ControllerConfig()}):
        assert ENASSampler(**kept).rule == default
    # REINFORCE's knobs given (an ENAS preset, by name or as the CLI builds it; any other
    # ControllerConfig): "reinforce", so the knobs are used.
    for given in (
        {"preset": "enas-official-ptb"},
        {"config": "enas-official-cifar-micro"},
        {"config": ControllerConfig.from_preset("enas-official-ptb", learning_rate=3e-3)},
        {"config": ControllerConfig.from_preset("default", learning_rate=3e-3)},
        {"config": SMALL},
    ):
        assert ENASSampler(**given).rule == "reinforce"
    assert ENASSampler(config=SMALL, rule="elite").rule == "elite"
    assert ENASSampler(preset="enas-paper-ptb", rule="elite").rule == "elite"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 1.5}, "gamma"),
        ({"max_elite": 0}, "max_elite"),
        ({"n_startup_trials": -1}, "n_startup_trials"),
        ({"refit_steps": -1}, "refit_steps"),
        ({"learning_rate": math.nan}, "learning_rate"),
        ({"uniform_mix": 1.5}, "uniform_mix"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"prior_weight": -1.0}, "prior_weight"),
        ({"dedupe": 1}, "dedupe"),
        ({"screen": "tpe"}, "screen"),
        ({"policy_draws": 0}, "policy_draws"),
        ({"mutation_rate": 1.5}, "mutation_rate"),
        ({"mutation_rate": "wide"}, "mutation_rate"),
        ({"density": "kde"}, "density"),
        ({"uniform_draws": -1}, "uniform_draws"),
    ],
)
def test_bad_elite_config(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EliteConfig(**kwargs)  # type: ignore[arg-type]


def test_failed_trials_are_not_learned_and_the_study_goes_on() -> None:
    sampler = elite(n_startup_trials=3)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    good = hits(SPACE)

    def objective(trial: optuna.Trial) -> float:
        value = good(trial)
        if trial.number % 4 == 2:
            raise RuntimeError("boom")
        return value

    study.optimize(objective, n_trials=20, catch=(RuntimeError,))
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 5 and len(sampler.history) == 15


def _parzen_brute(x: list[int], obs: list[list[int]], k: list[int], prior: float) -> float:
    """TPE's categorical Parzen estimator written out kernel by kernel."""
    n_kernels = len(obs) + 1
    fill = prior / n_kernels
    total = math.prod(1.0 / n for n in k)  # the uniform prior kernel
    for o in obs:
        p = 1.0
        for t, n in enumerate(k):
            if o[t] < 0:
                p *= 1.0 / n
            else:
                p *= ((1.0 if o[t] == x[t] else 0.0) + fill) / (1.0 + n * fill)
        total += p
    return math.log(total / n_kernels)


@pytest.mark.parametrize("prior", [1.0, 0.3, 0.0])
def test_parzen_density_equals_the_kernel_by_kernel_sum(prior: float) -> None:
    sampler = elite(density="parzen", prior_weight=prior)
    learner = sampler._learner
    assert isinstance(learner, EliteLearner)
    rng = np.random.default_rng(0)
    k = [3, 4, 2, 5]
    obs = rng.integers(0, 2, size=(9, 4))
    obs[2, 1] = -1  # a decision that trial did not take
    x = np.vstack([obs[0], obs[2].clip(0), rng.integers(0, 2, size=(3, 4))])
    got = learner._parzen_log(x, obs, np.asarray(k, dtype=np.float64))
    want = [_parzen_brute(list(r), obs.tolist(), k, prior) for r in x]
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize(
    "kw",
    [{"density": "parzen"}, {"density": "parzen", "uniform_draws": 8, "mutation_rate": 0.2}],
)
def test_parzen_screen_keeps_the_rule_properties(kw: dict[str, object]) -> None:
    """Rank-based (increasing transforms give the same trials), never repeats, finds the
    optimum of the toy problem."""
    runs = []
    for scale in (float, lambda h: math.exp(50 * h)):
        study = optuna.create_study(sampler=elite(seed=5, **kw), direction="maximize")
        study.optimize(hits(SPACE, scale), n_trials=80)
        runs.append(arch_keys(study))
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 80
    assert ("d0", "a") in runs[0][int(np.argmax([sum(v == "a" for _, v in r) for r in runs[0]]))]
    tiny = optuna.create_study(sampler=elite(TINY, n_startup_trials=3, **kw), direction="maximize")
    tiny.optimize(hits(TINY), n_trials=27)
    assert len(set(arch_keys(tiny))) == 27


def test_kernel_mutants_are_broad_with_a_small_elite_and_narrow_with_a_large_one() -> None:
    """``mutation_rate="kernel"`` redraws as TPE's categorical kernel does at the elite's size."""

    def mean_distance(n_trials: int) -> float:
        sampler = elite(n_startup_trials=1000, mutation_rate="kernel")  # no refits needed
        learner = sampler._learner
        assert isinstance(learner, EliteLearner)
        rng = np.random.default_rng(0)
        for i in range(n_trials):
            actions = rng.integers(0, 4, size=6).tolist()
            learner.observe(actions=actions, mask=[True] * 6, reward=float(i), entropy=0.0)
        members = np.asarray([e.actions for e in learner._elite()])
        found = learner._mutants(300, rng, {}, list(range(6)), 0.05)
        x = np.asarray([c.actions for c in found])
        return float((x[:, None, :] != members[None]).sum(2).min(1).mean())

    early, late = mean_distance(5), mean_distance(250)  # elite of 1 and of 25
    assert early > 2.5  # 1 forced change + each other one redrawn with p = 2/3
    assert late < 2.0  # 1 forced change + p = 2/15 per other decision


def test_resume_under_other_learning_settings_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/settings.db"
    s = optuna.create_study(
        sampler=elite(seed=1), storage=url, study_name="s", direction="maximize"
    )
    s.optimize(hits(SPACE), n_trials=6)
    record = s.trials[0].system_attrs["enas:sample"]
    assert record["settings"].startswith("elite:")

    def resume(sampler: ENASSampler, n: int) -> list[str]:
        caplog.clear()
        with caplog.at_level("WARNING", logger="optuna_enas.sampler._sampler"):
            study = optuna.load_study(study_name="s", storage=url, sampler=sampler)
            study.optimize(hits(SPACE), n_trials=n)
        return [r.getMessage() for r in caplog.records if "learning settings" in r.getMessage()]

    assert resume(elite(seed=1), 2) == []  # the same settings: silent
    other = ENASSampler(SPACE, seed=1, config=SMALL, rule="reinforce")
    msgs = resume(other, 2)
    assert len(msgs) == 1  # once, though 8 trials were proposed under elite
    assert record["settings"] in msgs[0] and other._settings in msgs[0]
    assert "reinforce:" in msgs[0] and "'s'" in msgs[0]
    # Other EliteConfig knobs are other settings too.
    assert len(resume(elite(seed=1, n_startup_trials=3), 1)) >= 1
