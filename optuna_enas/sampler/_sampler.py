"""ENASSampler: an LSTM controller trained with REINFORCE, as an Optuna sampler."""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import numpy as np
import torch
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.samplers import RandomSampler
from optuna.storages import InMemoryStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_enas.sampler._config import DEFAULT_PRESET_FOR_SPACE
from optuna_enas.sampler._config import ControllerConfig
from optuna_enas.sampler._controller import LSTMController
from optuna_enas.sampler._controller import single_thread
from optuna_enas.sampler._reinforce import Reinforce
from optuna_enas.sampler._reward import RewardFn
from optuna_enas.sampler._reward import direction_reward
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import Decision
from optuna_enas.spaces._search_space import SearchSpace


if TYPE_CHECKING:
    from optuna.study import Study


_logger = logging.getLogger(__name__)

SAMPLE_KEY = "enas:sample"
"""System attr written at sampling: sampler id, policy fingerprint, actions, log-probs."""
STATS_KEY = "enas:stats"
"""System attr written after the trial: reward, baseline, advantage, entropy."""
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class ENASSampler(BaseSampler):
    """Sample architectures from an LSTM controller that learns from each trial (ENAS).

    At the first suggest of a trial the controller samples the whole architecture; every
    ``suggest_categorical`` of a decision is answered from it. Other parameters (a learning
    rate, say) go to ``independent_sampler``. After the trial the reward feeds a REINFORCE update
    (see :class:`ControllerConfig` for the knobs and their sources).

    Where the controller's state lives: nowhere but in the study. Each trial stores the
    sampling policy's fingerprint and log-probabilities under the system attr ``enas:sample``.
    A sampler replays every finished trial of the study it has not seen, in trial-number order,
    before it samples. So a study reloaded in a new process with the same ``seed`` rebuilds the
    same controller bit for bit (on CPU, with the same torch build and
    ``torch.get_num_threads()``: the backward pass sums in a thread-dependent order), and
    with several processes on one RDB or journal storage each sampler also learns from the
    others' trials, with a clipped importance weight.

    Args:
        search_space: The decisions. ``None`` learns them from the study: every categorical
            parameter the objective suggests, in the order first seen; the controller grows as
            new ones appear (the first trial is then sampled by ``independent_sampler``).
        config: A :class:`ControllerConfig`, a preset name, or ``None`` for the preset that
            matches the space (``enas-official-ptb`` for RNN and custom spaces,
            ``enas-official-cifar-macro``/``-micro`` for CNN ones).
        seed: Seeds the controller's initialisation and each trial's draws
            (``(seed, trial.number)``), so one worker with the same seed repeats its sequence.
        reward_fn: ``(value, direction) -> reward``, higher is better. Default: the value when
            maximizing, minus the value when minimizing. :func:`perplexity_reward` is ENAS's.
        pruned_trial_policy: ``"last_value"`` learns from a pruned trial's last intermediate
            value (it was bad; the controller should know); ``"ignore"`` skips pruned trials.
        independent_sampler: Samples parameters outside the space. Default
            ``RandomSampler(seed=seed)``.
        learn_from_other_trials: Replay finished trials this sampler did not run (other
            processes, earlier sessions). With ``False`` only this object's trials count.
        record_stats: Write reward, baseline, advantage and entropy to each trial's system attr
            ``enas:stats`` (one storage write per trial).
    """

    def __init__(
        self,
        search_space: SearchSpace | None = None,
        *,
        config: ControllerConfig | str | None = None,
        seed: int | None = None,
        reward_fn: RewardFn | None = None,
        pruned_trial_policy: Literal["last_value", "ignore"] = "last_value",
        independent_sampler: BaseSampler | None = None,
        learn_from_other_trials: bool = True,
        record_stats: bool = True,
    ) -> None:
        if search_space is not None and not isinstance(search_space, SearchSpace):
            raise ValueError(
                f"search_space must be a SearchSpace or None, but got {type(search_space)!r}."
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an int or None, but got {seed!r}.")
        if pruned_trial_policy not in ("last_value", "ignore"):
            raise ValueError(
                "pruned_trial_policy must be 'last_value' or 'ignore', "
                f"but got {pruned_trial_policy!r}."
            )
        if config is None:
            name = search_space.name if search_space is not None else ""
            config = ControllerConfig.from_preset(
                DEFAULT_PRESET_FOR_SPACE.get(name, "enas-official-ptb")
            )
        elif isinstance(config, str):
            config = ControllerConfig.from_preset(config)
        elif not isinstance(config, ControllerConfig):
            raise ValueError(
                f"config must be a ControllerConfig, a preset name or None, but got {config!r}."
            )
        self._space = search_space
        self._config = config
        self._seed = seed
        self._base_seed = seed if seed is not None else _fresh_seed()
        self._reward_fn: RewardFn = reward_fn or direction_reward
        self._pruned_policy = pruned_trial_policy
        self._independent = independent_sampler or RandomSampler(seed=seed)
        self._learn_from_others = learn_from_other_trials
        self._record_stats = record_stats
        self._id = uuid.uuid4().hex[:16]
        self._lock = threading.RLock()
        self._decisions: list[Decision] = []
        self._index: dict[str, int] = {}
        generator = torch.Generator().manual_seed(self._base_seed)
        self._controller = LSTMController([], [], config=config, generator=generator)
        self._learner = Reinforce(self._controller, config)
        for d in search_space.decisions if search_space is not None else ():
            self._add_decision(d)
        self._seen: dict[int, set[int]] = {}
        self._synced_in_memory: set[int] = set()
        self.history: list[dict[str, Any]] = []
        """One entry per consumed trial: trial number, reward, baseline, advantage, entropy."""

    # -- public read-only state --------------------------------------------------------------
    @property
    def config(self) -> ControllerConfig:
        return self._config

    @property
    def search_space(self) -> SearchSpace | None:
        """The explicit space, or ``None`` when the decisions are learned from the study."""
        return self._space

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """The decisions the controller currently makes, in order."""
        return tuple(self._decisions)

    @property
    def controller(self) -> LSTMController:
        return self._controller

    @property
    def baseline(self) -> float | None:
        return self._learner.baseline

    @property
    def n_updates(self) -> int:
        return self._learner.n_updates

    def sample_architectures(self, n: int, *, seed: int | None = None) -> list[Architecture]:
        """Draw ``n`` architectures from the current policy (e.g. to derive the final one)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, but got {n!r}.")
        if not self._decisions:
            raise RuntimeError("the controller has no decisions yet: run some trials first.")
        rng = np.random.default_rng(seed)
        space = SearchSpace(self._decisions, name=self._space.name if self._space else "custom")
        with self._lock:
            return [
                space.from_indices(self._controller.sample(rng.random(len(self._decisions)))[0])
                for _ in range(n)
            ]

    def sync(self, study: Study) -> int:
        """Learn now from every finished trial of ``study`` this sampler has not consumed.

        Samplers sync by themselves before each trial; call this at the end of a worker to
        catch up with trials other workers finished later. Returns the number of trials read.
        """
        with self._lock:
            before = len(self.history)
            self._synced_in_memory.discard(study._study_id)
            self._sync(study)
            return len(self.history) - before

    # -- BaseSampler -------------------------------------------------------------------------
    def reseed_rng(self) -> None:
        with self._lock:
            self._base_seed = _fresh_seed()
            self._independent.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._raise_error_if_multi_objective(study)
        with self._lock:
            self._sync(study)
            return {d.name: d.distribution for d in self._decisions}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._raise_error_if_multi_objective(study)
        if not search_space:
            return {}
        with self._lock:
            if self._space is None:
                for name, dist in search_space.items():
                    if isinstance(dist, CategoricalDistribution) and name not in self._index:
                        self._add_decision(Decision(name, tuple(dist.choices)))
            forced = self._forced_actions(trial)
            uniforms = np.random.default_rng([self._base_seed, trial.number]).random(
                len(self._decisions)
            )
            actions, step_logps, entropy = self._controller.sample(uniforms, forced=forced)
            record: dict[str, Any] = {
                "sampler": self._id,
                "policy": self._learner.fingerprint,
                "actions": actions,
                "log_probs": step_logps,
                "entropy": entropy,
                "forced": sorted(forced),
            }
        study._storage.set_trial_system_attr(trial._trial_id, SAMPLE_KEY, record)
        params: dict[str, Any] = {}
        for name, dist in search_space.items():
            i = self._index.get(name)
            if i is not None and self._decisions[i].distribution == dist:
                params[name] = self._decisions[i].choices[actions[i]]
            else:
                params[name] = self._independent.sample_independent(study, trial, name, dist)
        return params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._raise_error_if_multi_objective(study)
        i = self._index.get(param_name)
        if self._space is not None and i is not None:
            expected = self._decisions[i].distribution
            if param_distribution != expected:
                raise ValueError(
                    f"parameter {param_name!r} clashes with the search space: the objective "
                    f"suggests {param_distribution}, the space has {expected}."
                )
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._independent.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        # Never raise here: Optuna would abort optimize() and the trial's state would be lost.
        try:
            self._independent.after_trial(study, trial, state, values)
        except Exception:
            _logger.warning("independent_sampler.after_trial failed", exc_info=True)
        try:
            with self._lock:
                if state in _FINISHED:
                    self._seen.setdefault(study._study_id, set()).add(trial._trial_id)
                value = self._trial_value(trial, state, values)
                if value is None:
                    return
                stats = self._consume(study, trial, value)
            if stats is not None and self._record_stats:
                study._storage.set_trial_system_attr(trial._trial_id, STATS_KEY, stats)
        except Exception:
            _logger.warning(
                f"ENASSampler could not learn from trial {trial.number}; the controller is "
                "unchanged.",
                exc_info=True,
            )

    # -- internals -----------------------------------------------------------------------------
    def _add_decision(self, decision: Decision) -> None:
        self._index[decision.name] = len(self._decisions)
        self._decisions.append(decision)
        generator = torch.Generator().manual_seed(self._base_seed + 7919 * len(self._decisions))
        new = self._controller.add_decision(
            len(decision.choices), decision.kind, generator=generator
        )
        self._learner.add_params(new)

    def _forced_actions(self, trial: FrozenTrial) -> dict[int, int]:
        fixed = trial.system_attrs.get("fixed_params") or {}
        forced: dict[int, int] = {}
        for name, value in fixed.items():
            i = self._index.get(name)
            if i is None:
                continue
            choices = self._decisions[i].choices
            for j, c in enumerate(choices):
                if c == value and type(c) is type(value):
                    forced[i] = j
                    break
        return forced

    def _trial_value(
        self, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> float | None:
        if state == TrialState.PRUNED:
            if self._pruned_policy == "ignore" or not trial.intermediate_values:
                return None
            value = trial.intermediate_values[max(trial.intermediate_values)]
        elif state == TrialState.COMPLETE and values is not None:
            value = values[0]
        else:
            _logger.warning(
                f"Trial {trial.number} finished as {state.name}; ENASSampler does not learn "
                "from it."
            )
            return None
        if not math.isfinite(value):
            _logger.warning(
                f"Trial {trial.number} has the non-finite value {value}; ENASSampler does not "
                "learn from it."
            )
            return None
        return float(value)

    def _sync(self, study: Study) -> None:
        """Consume finished trials this sampler has not seen (other workers, resumed study)."""
        if not self._learn_from_others:
            return
        storage = study._storage
        study_id = study._study_id
        if isinstance(storage, InMemoryStorage):
            # One process: after_trial sees every trial run through this sampler; replay once
            # for trials that were there before it.
            if study_id in self._synced_in_memory:
                return
            self._synced_in_memory.add(study_id)
        seen = self._seen.setdefault(study_id, set())
        trials = storage.get_all_trials(study_id, deepcopy=False, states=_FINISHED)
        if len(trials) <= len(seen):
            return
        for t in sorted(trials, key=lambda t: t.number):
            if t._trial_id in seen:
                continue
            self._check_no_clash(study, t)
            seen.add(t._trial_id)
            value = self._trial_value(t, t.state, t.values)
            if value is not None:
                try:
                    self._consume(study, t, value)
                except Exception:
                    _logger.warning(f"could not learn from trial {t.number}", exc_info=True)

    def _check_no_clash(self, study: Study, trial: FrozenTrial) -> None:
        if self._space is None:
            return
        for name, dist in trial.distributions.items():
            i = self._index.get(name)
            if i is not None and dist != self._decisions[i].distribution:
                raise ValueError(
                    f"search_space clashes with study {study.study_name!r}: its trial "
                    f"{trial.number} has parameter {name!r} as {dist}, the space has "
                    f"{self._decisions[i].distribution}."
                )

    def _consume(self, study: Study, trial: FrozenTrial, value: float) -> dict[str, Any] | None:
        reward = float(self._reward_fn(value, study.direction))
        if not math.isfinite(reward):
            _logger.warning(f"reward_fn gave {reward} for trial {trial.number}; skipped.")
            return None
        if self._space is None:
            for name, dist in trial.distributions.items():
                if isinstance(dist, CategoricalDistribution) and name not in self._index:
                    self._add_decision(Decision(name, tuple(dist.choices)))
        record = trial.system_attrs.get(SAMPLE_KEY)
        sampled: list[int] = list(record["actions"]) if record else []
        forced = set(record["forced"]) if record else set()
        actions: list[int] = []
        mask: list[bool] = []
        usable: list[bool] = []
        for i, d in enumerate(self._decisions):
            taken = _choice_index(d, trial, i)
            if taken is None:
                actions.append(sampled[i] if i < len(sampled) else 0)
                mask.append(False)
                usable.append(False)
            else:
                actions.append(taken)
                mask.append(True)
                usable.append(i < len(sampled) and sampled[i] == taken and i not in forced)
        if not any(mask):
            return None
        if record is not None:
            entropy = float(record["entropy"])
            behaviour = [float(x) for x in record["log_probs"]]
            on_policy = record["policy"] == self._learner.fingerprint
        else:
            with torch.no_grad(), single_thread():
                _, ents, _ = self._controller.log_prob_steps(torch.tensor([actions]))
            entropy = float((ents[0] * torch.tensor(mask)).sum())
            behaviour, on_policy = None, True
        stats = self._learner.observe(
            actions=actions,
            mask=mask,
            reward=reward,
            entropy=entropy,
            behaviour=behaviour,
            usable=usable,
            on_policy=on_policy,
        )
        stats["trial"] = trial.number
        stats["on_policy"] = on_policy
        self.history.append(stats)
        return stats

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()


def _choice_index(decision: Decision, trial: FrozenTrial, i: int) -> int | None:
    if decision.name not in trial.params:
        return None
    if trial.distributions.get(decision.name) != decision.distribution:
        return None
    value = trial.params[decision.name]
    for j, c in enumerate(decision.choices):
        if c == value and type(c) is type(value):
            return j
    return None


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)


__all__ = ["ENASSampler"]
