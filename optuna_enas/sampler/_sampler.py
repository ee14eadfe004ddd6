"""ENASSampler: an LSTM controller that learns from each trial, as an Optuna sampler."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import uuid
import weakref
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
from optuna.storages import BaseStorage
from optuna.storages import InMemoryStorage
from optuna.storages import JournalStorage
from optuna.storages import RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_enas._keys import PHASE_KEY
from optuna_enas._keys import SAMPLE_KEY
from optuna_enas._keys import STATS_KEY
from optuna_enas._validation import check_seed
from optuna_enas._validation import fresh_seed
from optuna_enas.sampler._config import ControllerConfig
from optuna_enas.sampler._controller import LSTMController
from optuna_enas.sampler._controller import single_thread
from optuna_enas.sampler._elite import EliteConfig
from optuna_enas.sampler._elite import EliteLearner
from optuna_enas.sampler._reinforce import Reinforce
from optuna_enas.sampler._reward import RewardFn
from optuna_enas.sampler._reward import direction_reward
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import Decision
from optuna_enas.spaces._search_space import SearchSpace


if TYPE_CHECKING:
    from optuna.study import Study


_logger = logging.getLogger(__name__)

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
RULES = ("elite", "reinforce")
"""The learning rules, by name (see :class:`ENASSampler`'s ``rule``)."""
DEFAULT_RULE = "elite"
"""The rule of ``ENASSampler()`` with the default controller config (given any other ``config``
or ``preset``, an ENAS preset included, ``rule=None`` is ``"reinforce"``). The evidence for
``"elite"`` (held-out seeds, against TPE, Random and REINFORCE): BENCHMARKS.md, "Sampler
quality: the elite rule"."""


class ENASSampler(BaseSampler):
    """Sample architectures from an LSTM controller that learns from each trial (ENAS).

    At the first suggest of a trial the controller samples the whole architecture; every
    ``suggest_categorical`` of a decision is answered from it. Other parameters (a learning
    rate, say) go to ``independent_sampler``. After the trial the controller learns from the
    reward by its ``rule``.

    The default rule, ``"elite"`` (:data:`DEFAULT_RULE`): after each trial the controller is
    refit by maximum likelihood on the best trials of the whole history, candidates are
    screened TPE-style and no architecture is evaluated twice (:class:`EliteConfig`;
    BENCHMARKS.md, "Sampler quality: the elite rule", for where it stands against TPE and
    REINFORCE).

    ``rule="reinforce"`` is ENAS's rule, a policy-gradient update (see :class:`ControllerConfig`
    for the knobs and their sources). Its default controller is ours, tuned for Optuna budgets:
    rank-based advantages (any increasing transformation of the objective gives the same
    search), Adam at 0.01, one update per 10 trials. ``preset="enas-official-ptb"`` (or
    ``-cifar-macro``, ``-cifar-micro``, ``enas-paper-ptb``) gives ENAS's exact REINFORCE; a
    preset, or any ``config`` other than the default, means ``"reinforce"`` unless ``rule``
    says otherwise.

    Where the controller's state lives: nowhere but in the study. Each trial stores the
    sampling policy's fingerprint, its learning settings (rule and a digest of the configs: a
    replay under other settings logs a warning) and log-probabilities under the system attr
    ``enas:sample``.
    A sampler replays every finished trial of the study it has not seen, in trial-number order,
    before it samples. So a study reloaded in a new process with the same ``seed`` rebuilds the
    same controller bit for bit (on CPU, with the same torch build and
    ``torch.get_num_threads()``: the backward pass sums in a thread-dependent order), and
    with several processes on one RDB or journal storage each sampler also learns from the
    others' trials (REINFORCE: with a clipped importance weight). What it has consumed is keyed
    by the storage's location (database URL, journal file) or, for other storages, the storage
    object, together with the study's id and name, so one sampler can serve studies in several
    storages.

    Trials whose user attr ``enas:phase`` is ``"train"`` (the evaluator trained shared weights
    with them) are sampled as usual but never learned from.

    Args:
        search_space: The decisions. ``None`` learns them from the study: every categorical
            parameter the objective suggests, in the order first seen; the controller grows as
            new ones appear (the first trial is then sampled by ``independent_sampler``). A
            parameter whose choices compare equal (``[1, 1.0, True]``) cannot be a decision: it
            goes to ``independent_sampler`` (one warning) and the others are still learned.
        config: A :class:`ControllerConfig` or a preset name. Default: ``ControllerConfig()``,
            our default for every space.
        preset: A preset name (``"enas-official-ptb"``, ...); an alternative to ``config``.
        seed: Seeds the controller's initialisation and each trial's draws
            (``(seed, trial.number)``), so one worker with the same seed repeats its sequence.
            An integer in ``[0, 2**32 - 1]`` (numpy integers accepted) or ``None``.
        reward_fn: ``(value, direction) -> reward``, higher is better. Default: the value when
            maximizing, minus the value when minimizing. :func:`perplexity_reward` is ENAS's.
            Required on a multi-objective study, where it is called as
            ``(values, directions) -> reward`` (:func:`weighted_sum_reward`,
            :func:`mnasnet_reward`).
        pruned_trial_policy: ``"last_value"`` learns from a pruned trial's last intermediate
            value (it was bad; the controller should know); ``"ignore"`` skips pruned trials.
        independent_sampler: Samples parameters outside the space. Default
            ``RandomSampler(seed=seed)``.
        learn_from_other_trials: Replay finished trials this sampler did not run (other
            processes, earlier sessions). With ``False`` only this object's trials count.
        record_stats: Write reward, baseline, advantage and entropy to each trial's system attr
            ``enas:stats`` (one storage write per trial).
        rule: How the controller learns. ``"elite"`` (the default) or an
            :class:`EliteConfig`: maximum likelihood on the best trials of the whole history,
            candidates screened TPE-style, no architecture evaluated twice (see
            ``optuna_enas.sampler._elite``); the controller's shape still comes from
            ``config``, its REINFORCE knobs are unused. ``"reinforce"``: the policy gradient of
            :class:`ControllerConfig` (ENAS's rule; the presets are exact). ``None``:
            :data:`DEFAULT_RULE` when ``config`` and ``preset`` are left at the default;
            ``"reinforce"`` when either is given (an ENAS preset, the CLI's ``--preset`` or
            ``--controller-lr``, any other :class:`ControllerConfig`), so that its REINFORCE
            knobs are used, not silently ignored. For your own controller shape under the
            elite rule pass ``rule="elite"``.
    """

    def __init__(
        self,
        search_space: SearchSpace | None = None,
        *,
        config: ControllerConfig | str | None = None,
        preset: str | None = None,
        seed: int | None = None,
        reward_fn: RewardFn | None = None,
        pruned_trial_policy: Literal["last_value", "ignore"] = "last_value",
        independent_sampler: BaseSampler | None = None,
        learn_from_other_trials: bool = True,
        record_stats: bool = True,
        rule: Literal["elite", "reinforce"] | EliteConfig | None = None,
    ) -> None:
        if search_space is not None and not isinstance(search_space, SearchSpace):
            raise ValueError(
                f"search_space must be a SearchSpace or None, but got {type(search_space)!r}."
            )
        seed = check_seed("seed", seed)
        if pruned_trial_policy not in ("last_value", "ignore"):
            raise ValueError(
                "pruned_trial_policy must be 'last_value' or 'ignore', "
                f"but got {pruned_trial_policy!r}."
            )
        if reward_fn is not None and not callable(reward_fn):
            raise ValueError(f"reward_fn must be callable or None, but got {reward_fn!r}.")
        if independent_sampler is not None and not isinstance(independent_sampler, BaseSampler):
            raise ValueError(
                "independent_sampler must be an optuna BaseSampler or None, but got "
                f"{independent_sampler!r}."
            )
        for name, flag in (
            ("learn_from_other_trials", learn_from_other_trials),
            ("record_stats", record_stats),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be a bool, but got {flag!r}.")
        if preset is not None:
            if config is not None:
                raise ValueError(
                    f"pass config or preset, not both (got config={config!r}, preset={preset!r})."
                )
            if not isinstance(preset, str):
                raise ValueError(f"preset must be a preset name, but got {preset!r}.")
            config = preset
        elite: EliteConfig | None = None
        if isinstance(rule, EliteConfig):
            elite = rule
        elif rule is None:
            if DEFAULT_RULE == "elite" and _is_default_config(config):
                elite = EliteConfig()
        elif rule == "elite":
            elite = EliteConfig()
        elif rule != "reinforce":
            raise ValueError(
                f"rule must be one of {RULES}, an EliteConfig or None, but got {rule!r}."
            )
        if config is None:
            config = ControllerConfig()
        elif isinstance(config, str):
            config = ControllerConfig.from_preset(config)
        elif not isinstance(config, ControllerConfig):
            raise ValueError(
                f"config must be a ControllerConfig, a preset name or None, but got {config!r}."
            )
        self._space = search_space
        self._config = config
        self._seed = seed
        self._base_seed = seed if seed is not None else fresh_seed()
        self._reward_fn: RewardFn | None = reward_fn
        self._pruned_policy = pruned_trial_policy
        self._independent = independent_sampler or RandomSampler(seed=seed)
        self._learn_from_others = learn_from_other_trials
        self._record_stats = record_stats
        self._id = uuid.uuid4().hex[:16]
        self._lock = threading.RLock()
        self._decisions: list[Decision] = []
        self._index: dict[str, int] = {}
        self._unlearnable: set[str] = set()
        generator = torch.Generator().manual_seed(self._base_seed)
        self._controller = LSTMController([], [], config=config, generator=generator)
        self._learner: Reinforce | EliteLearner
        if elite is not None:
            self._learner = EliteLearner(self._controller, elite)
        else:
            self._learner = Reinforce(self._controller, config)
        self._settings = _settings_tag(self.rule, config, elite)
        self._warned_settings: set[str] = set()
        for d in search_space.decisions if search_space is not None else ():
            self._add_decision(d)
        self._seen: dict[_StudyKey, set[int]] = {}
        self._synced_in_memory: set[_StudyKey] = set()
        self._owners: dict[_StudyKey, weakref.ref[BaseStorage]] = {}
        self.history: list[dict[str, Any]] = []
        """One entry per consumed trial: trial number, reward, baseline, advantage, entropy."""

    # -- public read-only state --------------------------------------------------------------
    @property
    def config(self) -> ControllerConfig:
        return self._config

    @property
    def rule(self) -> str:
        """The learning rule's name: ``"elite"`` or ``"reinforce"``."""
        return "elite" if isinstance(self._learner, EliteLearner) else "reinforce"

    @property
    def elite_config(self) -> EliteConfig | None:
        """The ``"elite"`` rule's knobs (``None`` under ``"reinforce"``)."""
        return self._learner.config if isinstance(self._learner, EliteLearner) else None

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
        """ENAS's moving-average baseline (``advantage="baseline"`` only; else ``None``); under
        ``"elite"``, the worst reward in the elite."""
        return self._learner.baseline

    @property
    def n_updates(self) -> int:
        return self._learner.n_updates

    @property
    def n_skipped_updates(self) -> int:
        """Update passes not applied because their loss or gradient was not finite."""
        return self._learner.n_skipped

    def sample_architectures(self, n: int, *, seed: int | None = None) -> list[Architecture]:
        """``n`` candidate architectures, e.g. to derive the final one.

        ``rule="reinforce"``: ``n`` draws from the current policy (ENAS's derive). ``"elite"``:
        the best finished architectures kept by the rule (up to ``max_elite``, best first),
        then draws from the policy. The elite policy is fitted to those same architectures and
        mostly re-draws them (about 10 distinct among 100 draws in
        ``tests/test_elite_weight_sharing.py``), so the ranked elite is the useful list.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, but got {n!r}.")
        seed = check_seed("seed", seed)
        if not self._decisions:
            raise RuntimeError("the controller has no decisions yet: run some trials first.")
        rng = np.random.default_rng(seed)
        space = SearchSpace(self._decisions, name=self._space.name if self._space else "custom")
        with self._lock:
            first: list[Architecture] = []
            if isinstance(self._learner, EliteLearner):
                first = [space.from_indices(a) for a in self._learner.best_actions()[:n]]
            return first + [
                space.from_indices(self._controller.sample(rng.random(len(self._decisions)))[0])
                for _ in range(n - len(first))
            ]

    def sync(self, study: Study) -> int:
        """Learn now from every finished trial of ``study`` this sampler has not consumed.

        Samplers sync by themselves before each trial; call this at the end of a worker to
        catch up with trials other workers finished later. Returns the number of trials read.
        """
        with self._lock:
            before = len(self.history)
            self._synced_in_memory.discard(self._key(study))
            self._sync(study)
            return len(self.history) - before

    # -- BaseSampler -------------------------------------------------------------------------
    def reseed_rng(self) -> None:
        with self._lock:
            self._base_seed = fresh_seed()
            self._independent.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        self._check_objectives(study)
        with self._lock:
            self._sync(study)
            return {d.name: d.distribution for d in self._decisions}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._check_objectives(study)
        if not search_space:
            return {}
        with self._lock:
            if self._space is None:
                for name, dist in search_space.items():
                    if isinstance(dist, CategoricalDistribution):
                        self._learn_decision(name, dist)
            forced = self._forced_actions(trial)
            uniforms = np.random.default_rng([self._base_seed, trial.number]).random(
                len(self._decisions)
            )
            if isinstance(self._learner, EliteLearner):
                rng = np.random.default_rng([self._base_seed, trial.number])
                actions, step_logps, entropy = self._learner.propose(rng, forced, trial.number)
            else:
                actions, step_logps, entropy = self._controller.sample(uniforms, forced=forced)
            record: dict[str, Any] = {
                "sampler": self._id,
                "settings": self._settings,
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
        self._check_objectives(study)
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
                if isinstance(self._learner, EliteLearner):
                    self._learner.release(trial.number)  # the id may change (BatchedStorage)
                key = self._key(study)
                if state in _FINISHED:
                    # By number: a trial's id may change when it is written (BatchedStorage).
                    self._seen.setdefault(key, set()).add(trial.number)
                if _is_training_phase(trial):
                    return
                found = self._trial_values(trial, state, values)
                if found is None:
                    return
                stats = self._consume(study, trial, found)
            if stats is not None and self._record_stats:
                study._storage.set_trial_system_attr(trial._trial_id, STATS_KEY, stats)
        except Exception:
            _logger.warning(
                f"ENASSampler could not learn from trial {trial.number}; the controller is "
                "unchanged.",
                exc_info=True,
            )

    # -- internals -----------------------------------------------------------------------------
    def _check_objectives(self, study: Study) -> None:
        if study._is_multi_objective() and self._reward_fn is None:
            raise ValueError(
                f"a multi-objective study ({len(study.directions)} objectives) needs "
                "ENASSampler(reward_fn=...), a scalarising reward, e.g. "
                "reward_fn=weighted_sum_reward([1.0, 0.5]) or "
                "reward_fn=mnasnet_reward(target=...)."
            )

    def _key(self, study: Study) -> _StudyKey:
        """What identifies ``study`` across storages (see the class docstring)."""
        storage = study._storage
        key = _study_key(storage, study._study_id, study.study_name)
        if key[0] == "object":
            ref = self._owners.get(key)
            if ref is None or ref() is not storage:
                # A new storage object (or one reusing a collected object's id): a new study.
                self._seen.pop(key, None)
                self._synced_in_memory.discard(key)
                try:
                    self._owners[key] = weakref.ref(storage)
                except TypeError:  # not weak-referenceable: never forget, never confuse
                    self._owners.pop(key, None)
        return key

    def _add_decision(self, decision: Decision) -> None:
        self._index[decision.name] = len(self._decisions)
        self._decisions.append(decision)
        generator = torch.Generator().manual_seed(self._base_seed + 7919 * len(self._decisions))
        normal = (
            self._space is not None
            and self._space.name == "micro"
            and decision.name.startswith("normal")
        )
        new = self._controller.add_decision(
            len(decision.choices), decision.kind, generator=generator, normal_cell=normal
        )
        if isinstance(self._learner, EliteLearner):
            self._learner.add_decision(len(decision.choices), new)
        else:
            self._learner.add_params(new)

    def _learn_decision(self, name: str, dist: CategoricalDistribution) -> None:
        """Make a categorical parameter seen in the study a decision (no-space mode)."""
        if name in self._index or name in self._unlearnable:
            return
        try:
            decision = Decision(name, tuple(dist.choices))
        except ValueError as e:
            self._unlearnable.add(name)
            _logger.warning(
                f"ENASSampler cannot learn parameter {name!r} ({e}); it is sampled by "
                "independent_sampler, the other parameters are still learned."
            )
            return
        self._add_decision(decision)

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

    def _trial_values(
        self, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> list[float] | None:
        if state == TrialState.PRUNED:
            if self._pruned_policy == "ignore" or not trial.intermediate_values:
                return None
            found = [trial.intermediate_values[max(trial.intermediate_values)]]
        elif state == TrialState.COMPLETE and values is not None:
            found = [float(v) for v in values]
        else:
            _logger.warning(
                f"Trial {trial.number} finished as {state.name}; ENASSampler does not learn "
                "from it."
            )
            return None
        if not all(math.isfinite(v) for v in found):
            _logger.warning(
                f"Trial {trial.number} has the non-finite value {found}; ENASSampler does not "
                "learn from it."
            )
            return None
        return found

    def _reward(self, study: Study, values: list[float]) -> float:
        if study._is_multi_objective():
            assert self._reward_fn is not None
            return float(self._reward_fn(values, list(study.directions)))
        if len(values) != 1:
            raise ValueError(f"a single-objective study gave {len(values)} values.")
        if self._reward_fn is None:
            return float(direction_reward(values[0], study.direction))
        return float(self._reward_fn(values[0], study.direction))

    def _sync(self, study: Study) -> None:
        """Consume finished trials this sampler has not seen (other workers, resumed study)."""
        if not self._learn_from_others:
            return
        storage = study._storage
        key = self._key(study)
        if isinstance(storage, InMemoryStorage):
            # One process: after_trial sees every trial run through this sampler; replay once
            # for trials that were there before it.
            if key in self._synced_in_memory:
                return
            self._synced_in_memory.add(key)
        seen = self._seen.setdefault(key, set())
        trials = storage.get_all_trials(study._study_id, deepcopy=False, states=_FINISHED)
        if len(trials) <= len(seen):
            return
        for t in sorted(trials, key=lambda t: t.number):
            if t.number in seen:
                continue
            self._check_no_clash(study, t)
            seen.add(t.number)
            if _is_training_phase(t):
                continue
            found = self._trial_values(t, t.state, t.values)
            if found is not None:
                try:
                    self._consume(study, t, found)
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

    def _consume(
        self, study: Study, trial: FrozenTrial, values: list[float]
    ) -> dict[str, Any] | None:
        reward = self._reward(study, values)
        if not math.isfinite(reward):
            _logger.warning(f"reward_fn gave {reward} for trial {trial.number}; skipped.")
            return None
        if self._space is None:
            for name, dist in trial.distributions.items():
                if isinstance(dist, CategoricalDistribution):
                    self._learn_decision(name, dist)
        record = _checked_record(trial.system_attrs.get(SAMPLE_KEY), trial.number)
        if record is not None and record.settings is not None:
            self._check_settings(study, trial.number, record.settings)
        sampled: list[int] = record.actions if record else []
        actions: list[int] = []
        mask: list[bool] = []
        usable: list[bool] = []
        for i, d in enumerate(self._decisions):
            taken = _choice_index(d, trial)
            if taken is None:
                fill = sampled[i] if i < len(sampled) else 0
                actions.append(fill if 0 <= fill < len(d.choices) else 0)
                mask.append(False)
                usable.append(False)
            else:
                actions.append(taken)
                mask.append(True)
                usable.append(
                    record is not None
                    and i < len(sampled)
                    and sampled[i] == taken
                    and i not in record.forced
                    and i < len(record.log_probs)
                    and math.isfinite(record.log_probs[i])
                )
        if not any(mask):
            return None
        entropy = record.entropy if record is not None else None
        if entropy is None:
            with torch.no_grad(), single_thread():
                _, ents, _ = self._controller.log_prob_steps(torch.tensor([actions]))
            entropy = float((ents[0] * torch.tensor(mask)).sum())
        on_policy = record is not None and record.policy == self._learner.fingerprint
        if record is None or not record.log_probs_finite:
            # No usable behaviour log-probabilities: no importance correction (weight 1).
            behaviour = None
        else:
            behaviour = record.log_probs
        stats = self._learner.observe(
            actions=actions,
            mask=mask,
            reward=reward,
            entropy=entropy,
            behaviour=behaviour,
            usable=usable,
            on_policy=on_policy or behaviour is None,
        )
        stats["trial"] = trial.number
        stats["on_policy"] = on_policy
        self.history.append(stats)
        return stats

    def _check_settings(self, study: Study, number: int, settings: str) -> None:
        """Warn (once per other setting) when a trial was proposed under other learning
        settings: a resumed study or a second worker then rebuilds another controller."""
        if settings == self._settings or settings in self._warned_settings:
            return
        self._warned_settings.add(settings)
        _logger.warning(
            f"Trial {number} of study {study.study_name!r} was proposed by an ENASSampler with "
            f"other learning settings ({settings}) than this one's ({self._settings}): the "
            "controller rebuilt from the study is not the one that proposed it. To continue the "
            "study as it ran, pass the same rule, config and EliteConfig (the CLI records them "
            "in the study and refuses a mismatch)."
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["_owners"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()


_StudyKey = tuple[str, str, int, str]


def _study_key(storage: BaseStorage, study_id: int, study_name: str) -> _StudyKey:
    inner = storage
    wrapped = getattr(inner, "backend", None)  # a wrapper such as storage.BatchedStorage
    if isinstance(wrapped, BaseStorage):
        inner = wrapped
    inner = inner._backend if isinstance(inner, _CachedStorage) else inner
    if isinstance(inner, RDBStorage):
        return ("rdb", str(inner.url), study_id, study_name)
    if isinstance(inner, JournalStorage):
        path = getattr(inner._backend, "_file_path", None)
        if isinstance(path, str):
            return ("journal", os.path.abspath(path), study_id, study_name)
    return ("object", str(id(storage)), study_id, study_name)


def _is_default_config(config: object) -> bool:
    """Whether ``config`` is the default: ``None``, ``"default"`` or ``ControllerConfig()``."""
    if config is None or (isinstance(config, str) and config == "default"):
        return True
    return isinstance(config, ControllerConfig) and config == ControllerConfig()


def _is_training_phase(trial: FrozenTrial) -> bool:
    return trial.user_attrs.get(PHASE_KEY) == "train"


class _Record:
    """A checked ``enas:sample`` record."""

    def __init__(
        self,
        actions: list[int],
        log_probs: list[float],
        entropy: float | None,
        forced: set[int],
        policy: str | None,
        settings: str | None = None,
    ) -> None:
        self.settings = settings
        self.actions = actions
        self.log_probs = log_probs
        self.log_probs_finite = all(math.isfinite(x) for x in log_probs)
        self.entropy = entropy
        self.forced = forced
        self.policy = policy


def _checked_record(raw: Any, number: int) -> _Record | None:
    """The record if its shape is right, with non-finite numbers marked; else ``None``."""
    if raw is None:
        return None
    try:
        actions = [int(a) for a in raw["actions"]]
        if any(not isinstance(a, int) or isinstance(a, bool) for a in raw["actions"]):
            raise TypeError("actions must be integers")
        log_probs = [_as_float(x) for x in raw["log_probs"]]
        entropy = _as_float(raw["entropy"])
        forced = {int(i) for i in raw.get("forced", [])}
        policy = raw.get("policy")
        settings = raw.get("settings")
    except (KeyError, TypeError, ValueError) as e:
        _logger.warning(
            f"Trial {number} has a malformed {SAMPLE_KEY!r} record ({e}); ENASSampler learns "
            "from its parameters without it."
        )
        return None
    bad = [x for x in log_probs if not math.isfinite(x)]
    if bad or not math.isfinite(entropy):
        _logger.warning(
            f"Trial {number}'s {SAMPLE_KEY!r} record holds non-finite numbers; it is not used "
            "for importance weighting."
        )
    return _Record(
        actions,
        log_probs,
        entropy if math.isfinite(entropy) else None,
        forced,
        policy if isinstance(policy, str) else None,
        settings if isinstance(settings, str) else None,
    )


def _settings_tag(rule: str, config: ControllerConfig, elite: EliteConfig | None) -> str:
    """``"<rule>:<8 hex>"``: the rule and a digest of everything that shapes its learning (the
    controller config and the elite rule's knobs), recorded with each proposal."""
    knobs = {"config": config.to_dict(), "elite": None if elite is None else elite.to_dict()}
    digest = hashlib.sha256(json.dumps(knobs, sort_keys=True, default=str).encode()).hexdigest()
    return f"{rule}:{digest[:8]}"


def _as_float(x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"expected a number, got {x!r}")
    return float(x)


def _choice_index(decision: Decision, trial: FrozenTrial) -> int | None:
    if decision.name not in trial.params:
        return None
    if trial.distributions.get(decision.name) != decision.distribution:
        return None
    value = trial.params[decision.name]
    for j, c in enumerate(decision.choices):
        if c == value and type(c) is type(value):
            return j
    return None


__all__ = ["ENASSampler"]
