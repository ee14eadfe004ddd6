"""What ENASSampler consumes, when, and what it learns from: claims of the README and
docs/guarantees.md that had no test.

- PRUNED trials on replay (``pruned_trial_policy``), ``learn_from_other_trials=False``,
  RUNNING and WAITING trials not consumed before they finish;
- the baseline formula (values computed by hand from the recorded rewards and entropies);
- the importance-weight clip of off-policy trials;
- learning from the trial's actual params (``PartialFixedSampler``), not the sampled ones;
- the macro space's skip-KL penalty (ENASSampler on MacroSpace);
- a search resumed through the CLI gives the controller of an uninterrupted one;
- a micro-space SupernetEvaluator resumed from its checkpoint continues exactly.

Real Optuna studies on SQLite, no mocks. ``scripts/mutation_check.py`` breaks the learner on
purpose and runs this file to show the breakage is caught.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState

from optuna_enas import ControllerConfig
from optuna_enas import ENASSampler
from optuna_enas import MacroSpace
from optuna_enas import MicroSpace
from optuna_enas import RNNCellSpace
from optuna_enas import suggest_architecture
from optuna_enas.cli import main
from optuna_enas.data import load_digits_dataset
from optuna_enas.sampler import EliteConfig
from optuna_enas.training._evaluator import SupernetEvaluator


optuna.logging.set_verbosity(optuna.logging.ERROR)

SPACE = RNNCellSpace(n_nodes=4)
FAST = ControllerConfig(lstm_size=16, n_aggregate=1, learning_rate=0.05)
# The generic bookkeeping holds under both rules; "elite" refits from the second trial on.
RULES = {"reinforce": "reinforce", "elite": EliteConfig(n_startup_trials=1)}


def _fast(rule: str, seed: int, **kwargs: Any) -> ENASSampler:
    """``ENASSampler(SPACE, config=FAST)`` under the rule named ``rule`` (see :data:`RULES`)."""
    return ENASSampler(SPACE, seed=seed, config=FAST, rule=RULES[rule], **kwargs)  # type: ignore[arg-type]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def relu_count(trial: optuna.Trial) -> float:
    arch = suggest_architecture(trial, SPACE, record=False)
    return float(sum(v == "relu" for _, v in arch.params))


def _state(sampler: ENASSampler) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in sampler.controller.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _consumed(sampler: ENASSampler) -> list[int]:
    return [int(h["trial"]) for h in sampler.history]


# -- PRUNED trials, live and on replay ----------------------------------------------------------
def _pruning_objective(trial: optuna.Trial) -> float:
    value = relu_count(trial)
    trial.report(value + 0.5, 0)
    if trial.number % 3 == 1:
        raise optuna.TrialPruned()
    return value


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("policy", ["last_value", "ignore"])
def test_pruned_trials_are_replayed_as_they_were_learned(
    policy: str, rule: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    live = _fast(rule, 0, pruned_trial_policy=policy)
    study = optuna.create_study(
        storage=url, study_name="p", sampler=live, direction="maximize",
        pruner=optuna.pruners.NopPruner(),
    )  # fmt: skip
    study.optimize(_pruning_objective, n_trials=7)
    pruned = [t.number for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned == [1, 4]
    if policy == "last_value":
        assert _consumed(live) == list(range(7))
        by_trial = {h["trial"]: h for h in live.history}
        for n in pruned:  # learned from the last intermediate value
            assert by_trial[n]["reward"] == study.trials[n].intermediate_values[0]
    else:
        assert _consumed(live) == [0, 2, 3, 5, 6]
    replay = _fast(rule, 0, pruned_trial_policy=policy)
    replay.sync(optuna.load_study(study_name="p", storage=url, sampler=replay))
    assert _consumed(replay) == _consumed(live)
    assert [h["reward"] for h in replay.history] == [h["reward"] for h in live.history]
    assert _same(_state(replay), _state(live))


# -- learn_from_other_trials=False ---------------------------------------------------------------
@pytest.mark.parametrize("rule", sorted(RULES))
def test_learn_from_other_trials_false_learns_only_its_own_trials(
    rule: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/o.db"
    other = _fast(rule, 1)
    optuna.create_study(storage=url, study_name="o", sampler=other, direction="maximize").optimize(
        relu_count, n_trials=3
    )
    loner = _fast(rule, 0, learn_from_other_trials=False)
    social = _fast(rule, 0)
    for sampler in (loner, social):
        study = optuna.load_study(study_name="o", storage=url, sampler=sampler)
        study.optimize(relu_count, n_trials=2)
        sampler.sync(study)
    # loner ran trials 3, 4 and sees only those; social ran 5, 6 and learned all seven.
    assert _consumed(loner) == [3, 4]
    assert _consumed(social) == [0, 1, 2, 3, 4, 5, 6]


# -- RUNNING and WAITING trials ----------------------------------------------------------------
@pytest.mark.parametrize("rule", sorted(RULES))
def test_running_and_waiting_trials_are_consumed_only_once_finished(
    rule: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/r.db"
    worker = _fast(rule, 1)
    study = optuna.create_study(storage=url, study_name="r", sampler=worker, direction="maximize")
    study.optimize(relu_count, n_trials=2)
    running = study.ask()  # another worker's trial in progress
    value = relu_count(running)
    study.enqueue_trial({"node0_act": "relu"})  # WAITING
    observer = _fast(rule, 0)
    view = optuna.load_study(study_name="r", storage=url, sampler=observer)
    observer.sync(view)
    states = [t.state for t in view.trials]
    assert states == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING, TrialState.WAITING]
    assert _consumed(observer) == [0, 1]
    study.tell(running, value)
    observer.sync(view)
    assert _consumed(observer) == [0, 1, 2]  # now finished: consumed, once
    observer.sync(view)
    assert _consumed(observer) == [0, 1, 2]


# -- the baseline, by hand ------------------------------------------------------------------------
def test_baseline_follows_the_documented_moving_average(tmp_path: Path) -> None:
    """README: total = reward + entropy_weight * entropy; b <- d*b + (1-d)*total, starting at
    the first total; advantage = total - b (b updated before it is read)."""
    d, w = 0.8, 0.01
    config = ControllerConfig(
        lstm_size=16, n_aggregate=1, advantage="baseline", baseline_decay=d, entropy_weight=w
    )
    sampler = ENASSampler(SPACE, seed=0, config=config, rule="reinforce")
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(relu_count, n_trials=6)
    b: float | None = None
    for h in sampler.history:
        total = h["reward"] + w * h["entropy"]
        b = total if b is None else b
        b = d * b + (1 - d) * total
        assert h["baseline"] == pytest.approx(b, rel=1e-12, abs=1e-12)
        assert h["advantage"] == pytest.approx(total - b, rel=1e-9, abs=1e-12)
    rewards = [h["reward"] for h in sampler.history]
    assert len(set(rewards)) > 1  # the check above saw more than a constant


# -- the importance-weight clip ----------------------------------------------------------------
def test_off_policy_trials_are_weighted_with_the_clipped_importance_weight(
    tmp_path: Path,
) -> None:
    """Trials another policy sampled get weight min(pi/mu, clip). With a tiny clip they barely
    move the controller (Adam normalises the step: about lr * 1e-4 here); unclipped weights
    (pi/mu is of order 1) would move every parameter by about the learning rate."""
    url = f"sqlite:///{tmp_path}/iw.db"
    lr = 0.05
    other = ENASSampler(
        SPACE, seed=1, config=ControllerConfig(lstm_size=16, n_aggregate=1), rule="reinforce"
    )
    optuna.create_study(
        storage=url, study_name="iw", sampler=other, direction="maximize"
    ).optimize(relu_count, n_trials=6)
    clipped = ControllerConfig(
        lstm_size=16, n_aggregate=1, learning_rate=lr, importance_weight_clip=1e-12
    )
    learner = ENASSampler(SPACE, seed=0, config=clipped, rule="reinforce")
    before = _state(learner)
    learner.sync(optuna.load_study(study_name="iw", storage=url, sampler=learner))
    assert _consumed(learner) == list(range(6))
    assert not any(h["on_policy"] for h in learner.history)
    moved = max(float((v - before[k]).abs().max()) for k, v in _state(learner).items())
    assert 0 < moved < 0.01 * lr


# -- actual params, not the sampled ones -------------------------------------------------------
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("rule", sorted(RULES))
def test_controller_learns_the_actual_params_of_a_partial_fixed_trial(rule: str) -> None:
    """PartialFixedSampler overrides node0_act after the controller sampled it. Two runs that
    differ only in the fixed value sample the same architectures until the first update; if the
    controller learned the sampled actions both would stay identical."""
    states = []
    for fixed in ("tanh", "relu"):
        sampler = _fast(rule, 0)
        partial = optuna.samplers.PartialFixedSampler({"node0_act": fixed}, sampler)
        study = optuna.create_study(sampler=partial, direction="maximize")

        def objective(trial: optuna.Trial) -> float:
            arch = suggest_architecture(trial, SPACE, record=False)
            return float(sum(v == "relu" for k, v in arch.params if k != "node0_act"))

        study.optimize(objective, n_trials=4)
        assert all(t.params["node0_act"] == fixed for t in study.trials)
        assert len(sampler.history) == 4
        states.append(_state(sampler))
    assert not _same(states[0], states[1])


# -- the macro space's skip penalty -----------------------------------------------------------
def test_enas_sampler_on_macro_space_pulls_skip_probabilities_to_the_target() -> None:
    """Constant objective, ENAS's baseline advantage: every advantage is 0, so the only
    gradient is the skip KL penalty, which moves the skip probabilities toward skip_target."""
    space = MacroSpace(n_layers=4)

    def skip_probability(sampler: ENASSampler) -> float:
        actions = torch.zeros(1, len(space), dtype=torch.long)
        with torch.no_grad():
            _, _, skip_p = sampler.controller.log_prob_steps(actions)
        groups = [t for g in sampler.controller.skip_groups() for t in g]
        return float(skip_p[0, groups].mean())

    def run(skip_weight: float) -> tuple[float, float]:
        config = ControllerConfig.from_preset(
            "enas-official-cifar-macro",
            n_aggregate=1,
            learning_rate=0.05,
            entropy_weight=0.0,
            skip_target=0.1,
            skip_weight=skip_weight,
            baseline_init=None,  # starts at the first reward: a constant objective gives 0
        )
        sampler = ENASSampler(space, seed=0, config=config, rule="reinforce")
        start = skip_probability(sampler)
        study = optuna.create_study(sampler=sampler, direction="maximize")
        study.optimize(lambda t: (suggest_architecture(t, space), 0.5)[1], n_trials=8)
        assert all(h["advantage"] == 0.0 for h in sampler.history)
        return start, skip_probability(sampler)

    start, after = run(0.8)
    assert abs(after - 0.1) < abs(start - 0.1) - 0.05  # clearly closer to the target
    start0, after0 = run(0.0)
    assert after0 == pytest.approx(start0, abs=1e-6)  # no penalty, zero advantages: no move


# -- resume through the CLI --------------------------------------------------------------------
_TINY = ["--n-nodes", "3", "--hidden-size", "8", "--batch-size", "8", "--bptt", "8"]


@pytest.mark.slow  # three CLI searches: about 10 s
def test_cli_resume_gives_the_controller_of_an_uninterrupted_search(tmp_path: Path) -> None:
    once, twice = f"sqlite:///{tmp_path}/once.db", f"sqlite:///{tmp_path}/twice.db"
    assert main(["search", "--storage", once, *_TINY, "--trials", "6"]) == 0
    assert main(["search", "--storage", twice, *_TINY, "--trials", "3"]) == 0
    assert main(["search", "--storage", twice, *_TINY, "--trials", "6"]) == 0  # resumed
    a = optuna.load_study(study_name="enas-rnn-enas", storage=once)
    b = optuna.load_study(study_name="enas-rnn-enas", storage=twice)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.value for t in a.trials] == [t.value for t in b.trials]  # the supernet resumed
    space = RNNCellSpace(n_nodes=3)
    controllers = []
    for study in (a, b):
        sampler = ENASSampler(space, seed=0)
        sampler.sync(study)
        assert _consumed(sampler) == list(range(6))
        controllers.append(_state(sampler))
    assert _same(controllers[0], controllers[1])


# -- micro evaluator resume --------------------------------------------------------------------
def test_micro_evaluator_resumed_from_its_checkpoint_continues_exactly(tmp_path: Path) -> None:
    space = MicroSpace(n_nodes=2)
    digits = load_digits_dataset(seed=0)
    kwargs = {"supernet_kwargs": {"n_filters": 4, "n_layers": 1}, "batch_size": 8, "seed": 0}

    def values(study: optuna.Study) -> list[float]:
        return [float(t.value) for t in study.trials if t.value is not None]

    def study_with(seed: int) -> optuna.Study:
        return optuna.create_study(
            sampler=optuna.samplers.RandomSampler(seed=seed),
            direction="maximize",
            pruner=optuna.pruners.NopPruner(),
        )

    straight = SupernetEvaluator(space, digits, **kwargs)  # type: ignore[arg-type]
    ref = study_with(0)
    ref.optimize(straight, n_trials=6)

    first = SupernetEvaluator(space, digits, **kwargs)  # type: ignore[arg-type]
    part = study_with(0)
    part.optimize(first, n_trials=3)
    checkpoint = first.save(tmp_path / "micro.pt")
    resumed = SupernetEvaluator(space, digits, resume_from=checkpoint, **kwargs)  # type: ignore[arg-type]
    assert resumed.n_calls == 3
    for t in ref.trials[3:]:  # the same architectures the straight run saw
        part.enqueue_trial(t.params)
    part.optimize(resumed, n_trials=3)
    assert values(part) == values(ref)
    assert all(math.isfinite(v) for v in values(ref))
    after = resumed.state_dict()
    for k, v in straight.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, after[k]), k
