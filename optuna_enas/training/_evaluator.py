"""Objectives that score architectures: a shared-weight supernet (ENAS) or training from scratch.

:class:`SupernetEvaluator` is the ENAS objective. One supernet holds the weights of every
architecture of the space; each call (one Optuna trial) trains them for a few minibatches on
the trial's architecture and returns that architecture's validation metric. Because it only
calls :func:`~optuna_enas.suggest_architecture`, the same object works under
:class:`~optuna_enas.ENASSampler`, ``RandomSampler``, ``TPESampler`` or any other sampler.

:class:`StandaloneEvaluator` is the NAS-RL baseline (Zoph & Le, 2017): every trial trains its
child from scratch and reports once per epoch, so a pruner can stop bad children early.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
from collections.abc import Mapping
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import optuna
import torch
from torch import nn

from optuna_enas._validation import check_int
from optuna_enas._validation import check_non_negative
from optuna_enas._validation import check_seed
from optuna_enas._validation import fresh_seed
from optuna_enas.data._corpus import Corpus
from optuna_enas.data._images import ImageData
from optuna_enas.spaces._enas import space_from_dict
from optuna_enas.spaces._kinds import Direction
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.spaces._search_space import suggest_architecture
from optuna_enas.training._checkpoint import load_checkpoint
from optuna_enas.training._checkpoint import save_checkpoint
from optuna_enas.training._config import TrainingConfig
from optuna_enas.training._config import fold_training
from optuna_enas.training._paths import PathSampler
from optuna_enas.training._paths import TrainPaths
from optuna_enas.training._paths import check_train_paths
from optuna_enas.training._schedule import DEFAULT_SCORE_TRIALS
from optuna_enas.training._schedule import PHASE_KEY
from optuna_enas.training._schedule import Phase
from optuna_enas.training._schedule import PhasePlan
from optuna_enas.training._schedule import Schedule
from optuna_enas.training._schedule import check_schedule
from optuna_enas.training._tasks import LMTask
from optuna_enas.training._tasks import Split
from optuna_enas.training._tasks import check_split
from optuna_enas.training._tasks import data_fingerprint
from optuna_enas.training._tasks import steps_per_epoch
from optuna_enas.training._trainer import Trainer
from optuna_enas.training._trainer import TrainingSetup
from optuna_enas.training._trainer import train_from_scratch


if TYPE_CHECKING:
    from optuna.trial import BaseTrial


_logger = logging.getLogger(__name__)

_KIND = "SupernetEvaluator"  # the checkpoint format tag


MAX_EVAL_BATCHES = 100_000
"""The most validation minibatches one score may use (``search --eval-batches`` too)."""


class SupernetEvaluator:
    """The ENAS objective: train shared weights on the trial's architecture, return its metric.

    Each call suggests the architecture with :func:`~optuna_enas.suggest_architecture`, takes
    ``n_train_steps`` SGD steps of the shared weights on the next training minibatches (the data
    position persists across trials and wraps around), and scores the architecture on the next
    ``n_eval_batches`` validation minibatches (rotating through the validation set, as ENAS
    does for its rewards). After every step it calls ``trial.report(value, step)`` and raises
    :class:`optuna.TrialPruned` when ``trial.should_prune()``.

    The value is the validation perplexity ``exp(mean cross-entropy)`` for an RNN space
    (:attr:`direction` ``"minimize"``) and the accuracy for a CNN space (``"maximize"``);
    create the study with ``direction=evaluator.direction``. Perplexity is capped at
    ``exp(700)`` (also for a NaN loss), so a diverging cell still gets a finite, worst value;
    training steps with a non-finite loss are skipped so it cannot ruin the shared weights.

    All randomness (initialization, shuffling, dropout) comes from a private NumPy generator
    seeded with ``seed``; its state is what checkpoints store. Dropout masks are drawn from a
    private ``torch.Generator`` reseeded from it at every step; torch's global RNG is never
    used. A lock serializes calls, so ``n_jobs > 1``
    is safe (but runs one trial's training at a time; the order of the calls then decides the
    results).

    ``schedule`` says how trials map onto ENAS's two phases (see
    :mod:`optuna_enas.training._schedule`). ``"interleaved"`` (the default) is the above: every
    trial trains, then scores. ``"phased"`` cycles through ``phase_train_trials`` training
    trials (each takes ``n_train_steps`` shared steps on its architecture, scores nothing, sets
    the user attr ``"enas:phase"`` to ``"train"`` and ends PRUNED, so no sampler or pruner
    mistakes it for a result; :class:`~optuna_enas.ENASSampler` never learns from it) and
    ``phase_score_trials`` scoring trials (``"enas:phase"`` ``"score"``), which score their
    architecture on the frozen weights and on the same ``n_eval_batches`` validation
    minibatches, so all rewards of a phase are comparable, as ENAS's controller phase. Choose
    ``phase_score_trials`` as a multiple of the sampler's aggregation so that no controller
    update mixes two phases. ``warmup_steps`` shared steps on uniformly random architectures
    (drawn from the private generator) precede the first trial in either schedule.

    ``"two_stage"`` decouples the supernet training from the search (SPOS, Guo et al. 2020,
    Sec. 3; random search with weight sharing, Li & Talwalkar 2019, Sec. 4.2): before the first
    trial (or at :meth:`pretrain`) the shared weights take ``pretrain_steps`` shared steps on
    the paths of ``train_paths`` (no trial involved, so ``"controller"`` means uniform draws
    here: "SPOS + controller" when an :class:`~optuna_enas.ENASSampler` then searches), and are
    frozen; every trial (``"enas:phase"`` ``"score"``) scores its architecture on them and on
    the same ``n_eval_batches`` validation minibatches, so all values are comparable and an
    architecture scored twice gets its cached value. Checkpoints are written every
    ``checkpoint_every`` pretraining steps too, and a resumed pretraining continues exactly.

    ``train_paths`` says which architectures the shared steps train (see
    :class:`~optuna_enas.training._paths.PathSampler`): ``"controller"`` (ENAS, Pham et al.
    2018: the trial's architecture; the default, bitwise as before), ``"uniform"`` (SPOS / RS-WS:
    a uniform draw whatever the trial's architecture), ``"fair"`` (FairNAS, Chu et al. 2021:
    every candidate of every decision once per step, i.e. ``m`` paths on one minibatch with
    their gradients accumulated, ``m`` the largest number of choices; ``m`` times the compute
    of a step) or ``"mixture"`` (the trial's architecture with probability ``mixture``, else
    uniform). The trial's value is always its own architecture's score.

    State (weights, optimizer, data positions, carried hidden state, RNG, step credit, phase
    position) is saved
    atomically every ``checkpoint_every`` calls to ``checkpoint_path``, on demand with
    :meth:`save`, and restored with :meth:`load` or ``resume_from``. A resumed evaluator
    returns the same values as one that never stopped (bitwise on CPU).

    Example:

        .. code-block:: python

            import optuna
            from optuna_enas import RNNCellSpace
            from optuna_enas import SupernetEvaluator

            space = RNNCellSpace(n_nodes=4)
            evaluator = SupernetEvaluator(space, seed=0)  # the synthetic corpus
            study = optuna.create_study(direction=evaluator.direction)
            study.optimize(evaluator, n_trials=20)

    Args:
        space: An :class:`~optuna_enas.RNNCellSpace`, :class:`~optuna_enas.MacroSpace` or
            :class:`~optuna_enas.MicroSpace`.
        data: A :class:`~optuna_enas.data.Corpus` (RNN) or :class:`~optuna_enas.data.ImageData`
            (CNN). ``None``: the synthetic corpus (RNN) or scikit-learn's digits (CNN).
        training: The training settings (supernet size, minibatch, SGD, device) as one
            :class:`~optuna_enas.TrainingConfig`, shared with
            :class:`StandaloneEvaluator`, ``retrain`` and the one-shot searchers. The flat
            keywords ``supernet_kwargs``, ``batch_size``, ``bptt``, ``lr``, ``grad_clip``,
            ``momentum``, ``weight_decay`` and ``device`` are shorthands for its fields; giving
            one that ``training`` also sets raises ``ValueError``. :attr:`training` is the
            resolved record.
        supernet_kwargs: Extra arguments of the supernet (``hidden_size``, ``dropout``, ...).
            ``vocab_size``, ``in_channels`` and ``n_classes`` default to the data's.
        n_train_steps: Shared-weight minibatches per trial. Fractions accumulate exactly: 0.2
            means one step every 5 trials. ENAS alternates 400 shared steps with 2000
            controller samples (carpedm20/ENAS-pytorch ``--shared_max_step 400``,
            ``--controller_max_step 2000``), i.e. 0.2; the default 1.0 trains more per trial,
            which small budgets need. 0 never trains.
        batch_size: Training minibatch size. Default 64 (ENAS-pytorch).
        bptt: Truncated-BPTT length for RNN spaces. Default 35 (ENAS-pytorch).
        lr: SGD learning rate. Default: 5 for RNN (ENAS uses 20, ENAS paper Sec. 3.1 and
            ENAS-pytorch ``--shared_lr``, for a regularized 1000-unit cell; 20 makes unbounded
            cells of small dropout-free supernets diverge, see ``_DEFAULTS``), 0.05 for CNN
            (ENAS ``child_lr_max``).
        grad_clip: Maximum global gradient norm; ``math.inf`` disables clipping. Default: 0.25
            for RNN (ENAS paper, ``--shared_grad_clip``), 5.0 for CNN (``child_grad_bound``).
        momentum: SGD momentum (Nesterov when positive). Default: 0 for RNN, 0.9 for CNN (ENAS).
        weight_decay: L2 penalty. Default: 1e-7 for RNN (``--shared_l2_reg``), 2.5e-4 macro and
            1e-4 micro (``child_l2_reg`` of the ENAS search scripts).
        n_eval_batches: Validation minibatches per score.
        device: Torch device; ``None`` picks CUDA when available.
        seed: Seed of the private generator; ``None`` draws one from the OS.
        checkpoint_path: Where periodic checkpoints go; ``None`` disables them.
        checkpoint_every: Calls between periodic checkpoints.
        resume_from: A checkpoint to restore right away (see :meth:`load`). The space, data,
            ``supernet_kwargs``, ``batch_size`` and ``bptt`` must match it; the optimizer
            knobs, ``n_train_steps`` and the schedule may change.
        schedule: ``"interleaved"``, ``"phased"`` or ``"two_stage"`` (see above). With
            :class:`~optuna_enas.ENASSampler` prefer ``"phased"``: its rewards ranked the
            ground-truth RNN cells better (BENCHMARKS.md, "Ranking fidelity"). The default stays
            ``"interleaved"``, which works the same under every sampler.
        phase_train_trials: Training trials per phase (``"phased"``). Default: one epoch of
            training minibatches (at ``n_train_steps`` 1), as ENAS trains the shared weights
            for an epoch between controller phases (``controller_train_every=1`` in the
            official search scripts).
        phase_score_trials: Scoring trials per phase (``"phased"``). Default: the official
            ``controller_train_steps * controller_num_aggregate``: 1000 for RNN
            (``scripts/ptb_search.sh``), 300 for micro and 1000 for macro
            (``scripts/cifar10_{micro,macro}_search.sh``, melodyguan/enas).
        warmup_steps: Shared steps on uniformly random architectures before the first trial
            (0: none). Not an ENAS setting; it gives every op some training before the
            controller's choices concentrate the shared steps on a few.
        train_paths: ``"controller"`` (ENAS), ``"uniform"`` (SPOS, RS-WS), ``"fair"``
            (FairNAS) or ``"mixture"`` (see above).
        mixture: Probability of the trial's architecture under ``train_paths="mixture"``.
            Default 0.5 (no paper sets it).
        pretrain_steps: Shared steps before the search under ``"two_stage"`` (ignored
            otherwise). Default 3000: the budget at which uniformly trained weights ranked the
            RNN ground truth best (BENCHMARKS.md, "Ranking fidelity", tau 0.46); SPOS trains
            its supernet for 120 epochs of ImageNet (Sec. 4), far beyond a CPU budget.
    """

    def __init__(
        self,
        space: SearchSpace,
        data: Corpus | ImageData | None = None,
        *,
        training: TrainingConfig | None = None,
        supernet_kwargs: Mapping[str, Any] | None = None,
        n_train_steps: float = 1.0,
        batch_size: int | None = None,
        bptt: int | None = None,
        lr: float | None = None,
        grad_clip: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        n_eval_batches: int = 1,
        device: str | torch.device | None = None,
        seed: int | None = None,
        checkpoint_path: str | Path | None = None,
        checkpoint_every: int = 50,
        resume_from: str | Path | None = None,
        schedule: Schedule = "interleaved",
        phase_train_trials: int | None = None,
        phase_score_trials: int | None = None,
        warmup_steps: int = 0,
        train_paths: TrainPaths = "controller",
        mixture: float = 0.5,
        pretrain_steps: int = 3000,
    ) -> None:
        steps = check_non_negative("n_train_steps", n_train_steps)
        schedule = check_schedule(schedule)
        train_paths = check_train_paths(train_paths)
        self._paths = PathSampler(space, train_paths, mixture=mixture)
        self._pretrain_steps = check_int("pretrain_steps", pretrain_steps, 0)
        if phase_train_trials is not None:
            check_int("phase_train_trials", phase_train_trials, 0)
        if phase_score_trials is not None:
            check_int("phase_score_trials", phase_score_trials, 1)
        self._warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        check_seed("seed", seed)
        training = fold_training(
            training,
            supernet_kwargs=supernet_kwargs,
            batch_size=batch_size,
            bptt=bptt,
            lr=lr,
            grad_clip=grad_clip,
            momentum=momentum,
            weight_decay=weight_decay,
            device=device,
        )
        self._setup = TrainingSetup.from_config(space, data, training)
        self._space = space
        self._data = self._setup.data
        self._n_train_steps = Fraction(steps).limit_denominator(1_000_000)
        # Bounded: the validation windows are listed before they are scored (issue #21).
        self._n_eval_batches = check_int("n_eval_batches", n_eval_batches, 1, MAX_EVAL_BATCHES)
        self._checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1)
        self._checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self._device = self._setup.device
        self._config: dict[str, Any] = {
            "supernet_kwargs": self._setup.supernet_kwargs,
            "batch_size": self._setup.batch_size,
            "bptt": self._setup.bptt,
            "n_train_steps": steps,
            "n_eval_batches": n_eval_batches,
            "seed": seed,
            **self._setup.optim.as_dict(),
        }
        self._rng = np.random.default_rng(seed)
        self._trainer = Trainer(self._setup, init_seed=int(self._rng.integers(2**31 - 1)))
        if schedule == "phased":
            if phase_train_trials is None:
                phase_train_trials = steps_per_epoch(self._trainer.task)
            if phase_score_trials is None:
                phase_score_trials = DEFAULT_SCORE_TRIALS[self._setup.kind.name]
        self._plan = PhasePlan(schedule, phase_train_trials or 0, phase_score_trials or 0)
        self._config.update(
            schedule=schedule,
            phase_train_trials=phase_train_trials,
            phase_score_trials=phase_score_trials,
            warmup_steps=self._warmup_steps,
            train_paths=train_paths,
            mixture=self._paths.mixture,
            pretrain_steps=self._pretrain_steps,
        )
        self._phase_pos = 0  # position of the next call in the schedule's cycle
        self._score_valid_pos: int | None = None  # validation position of this scoring phase
        self._warmed_up = self._warmup_steps == 0
        self._pretrained = 0  # shared steps of the two-stage pretraining taken so far
        self._frozen_cache: dict[Architecture, float] = {}  # two-stage scores (frozen weights)
        self._lock = threading.RLock()
        self._credit = Fraction(0)
        self._n_calls = 0
        self._n_steps = 0
        if resume_from is not None:
            self._load_state(load_checkpoint(resume_from), str(resume_from))

    # -- read-only state ---------------------------------------------------------------------
    @property
    def space(self) -> SearchSpace:
        return self._space

    @property
    def data(self) -> Corpus | ImageData:
        return self._data

    @property
    def supernet(self) -> nn.Module:
        return self._trainer.model

    @property
    def training(self) -> TrainingConfig:
        """The training settings resolved (every field set, the device too): given as
        ``training=`` to another trainer, it trains as this one."""
        return self._setup.training

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._trainer.optimizer

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def metric(self) -> str:
        """``"ppl"`` (validation perplexity) for RNN spaces, ``"accuracy"`` for CNN spaces."""
        return self._setup.kind.metric

    @property
    def direction(self) -> Direction:
        """``"minimize"`` for perplexity, ``"maximize"`` for accuracy: the study's direction."""
        return self._setup.kind.direction

    @property
    def n_calls(self) -> int:
        """Calls (trials) so far, pruned and failed ones included."""
        return self._n_calls

    @property
    def n_steps(self) -> int:
        """Shared-weight SGD steps taken so far (skipped non-finite steps excluded)."""
        return self._n_steps

    @property
    def schedule(self) -> Schedule:
        """``"interleaved"``, ``"phased"`` or ``"two_stage"``."""
        return self._plan.schedule

    @property
    def train_paths(self) -> TrainPaths:
        """Which architectures the shared steps train (see :class:`PathSampler`)."""
        return self._paths.mode

    @property
    def n_pretrained(self) -> int:
        """Two-stage pretraining steps taken so far (skipped non-finite steps included)."""
        return self._pretrained

    @property
    def next_phase(self) -> Phase:
        """The phase of the next call: ``"interleaved"``, ``"train"`` or ``"score"``."""
        return self._plan.phase(self._phase_pos)

    # -- the objective -----------------------------------------------------------------------
    def __call__(self, trial: BaseTrial) -> float:
        arch = suggest_architecture(trial, self._space)
        with self._lock:
            try:
                return self._run(trial, arch)
            finally:
                self._n_calls += 1
                self._phase_pos = (self._phase_pos + 1) % self._plan.cycle
                if self._checkpoint_path is not None and (
                    self._n_calls % self._checkpoint_every == 0
                ):
                    self.save(self._checkpoint_path)

    def _take_credit(self) -> int:
        self._credit += self._n_train_steps
        n_steps = int(self._credit)
        self._credit -= n_steps
        return n_steps

    def warm_up(self) -> None:
        """Take the ``warmup_steps`` uniform-architecture steps now, unless already taken.

        The first call does this by itself; calling it earlier only moves the cost.
        """
        with self._lock:
            if self._warmed_up:
                return
            for _ in range(self._warmup_steps):
                # controller: one uniform draw, exactly as before the train_paths option
                if math.isfinite(self._shared_step(None)):
                    self._n_steps += 1
            self._warmed_up = True

    def _shared_step(self, arch: Architecture | None) -> float:
        """One shared step on the paths ``train_paths`` picks for ``arch``; the mean loss."""
        return self._trainer.step_paths(self._paths.paths(arch, self._rng), self._rng)

    def pretrain(self) -> None:
        """Take the rest of the ``pretrain_steps`` two-stage steps now (``"two_stage"`` only).

        The first call does this by itself. With a ``checkpoint_path`` the state is saved every
        ``checkpoint_every`` steps, so an interrupted pretraining resumes where it stopped.
        """
        with self._lock:
            if self._plan.schedule != "two_stage":
                return
            self.warm_up()
            while self._pretrained < self._pretrain_steps:
                if math.isfinite(self._shared_step(None)):
                    self._n_steps += 1
                self._pretrained += 1
                if self._checkpoint_path is not None and (
                    self._pretrained % self._checkpoint_every == 0
                ):
                    self.save(self._checkpoint_path)

    def _run(self, trial: BaseTrial, arch: Architecture) -> float:
        self.warm_up()
        if self._plan.schedule == "two_stage":
            return self._run_frozen(trial, arch)
        phase = self._plan.phase(self._phase_pos)
        if phase == "train":
            return self._run_train(trial, arch)
        if phase == "score":
            return self._run_score(trial, arch)
        n_steps = self._take_credit()
        value = math.nan
        for k in range(max(n_steps, 1)):
            if k < n_steps:
                loss = self._shared_step(arch)
                if math.isfinite(loss):
                    self._n_steps += 1
            value = self._trainer.evaluate_next(arch, self._n_eval_batches)
            trial.report(value, k)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {k} with {self.metric} {value:.6g}.")
        return value

    def _run_train(self, trial: BaseTrial, arch: Architecture) -> float:
        trial.set_user_attr(PHASE_KEY, "train")
        losses = [self._shared_step(arch) for _ in range(self._take_credit())]
        finite = [x for x in losses if math.isfinite(x)]
        self._n_steps += len(finite)
        if finite:
            trial.set_user_attr("enas:train_loss", float(np.mean(finite)))
        raise optuna.TrialPruned(
            f"training phase ({len(losses)} shared steps); scored by no one, learned from by no "
            "one."
        )

    def _run_score(self, trial: BaseTrial, arch: Architecture) -> float:
        trial.set_user_attr(PHASE_KEY, "score")
        task = self._trainer.task
        if self._plan.starts_scoring(self._phase_pos) or self._score_valid_pos is None:
            self._score_valid_pos = task.valid_pos
        task.valid_pos = self._score_valid_pos  # every score of the phase: the same batches
        value = self._trainer.evaluate_next(arch, self._n_eval_batches)
        trial.report(value, 0)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned with {self.metric} {value:.6g}.")
        return value

    def _run_frozen(self, trial: BaseTrial, arch: Architecture) -> float:
        self.pretrain()
        trial.set_user_attr(PHASE_KEY, "score")
        value = self._frozen_cache.get(arch)
        if value is None:
            task = self._trainer.task
            if self._score_valid_pos is None:
                self._score_valid_pos = task.valid_pos
            task.valid_pos = self._score_valid_pos  # every trial: the same batches
            value = self._trainer.evaluate_next(arch, self._n_eval_batches)
            self._frozen_cache[arch] = value
        trial.report(value, 0)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned with {self.metric} {value:.6g}.")
        return value

    def train_steps(self, arch: Architecture | Mapping[str, Any], n: int = 1) -> list[float]:
        """Take ``n`` shared-weight steps on ``arch`` outside any trial; return the losses."""
        arch = self._space.coerce(arch)
        check_int("n", n, 0)
        with self._lock:
            losses = [self._trainer.step(arch, self._rng) for _ in range(n)]
            self._n_steps += sum(math.isfinite(x) for x in losses)
            return losses

    def train_shared(self, n: int = 1) -> list[float]:
        """Take ``n`` shared steps on the paths of ``train_paths`` outside any trial.

        No trial architecture is involved, so ``"controller"`` and ``"mixture"`` draw uniform
        paths (as the warm-up and the two-stage pretraining do). Returns the (mean) losses.
        """
        check_int("n", n, 0)
        with self._lock:
            losses = [self._shared_step(None) for _ in range(n)]
            self._n_steps += sum(math.isfinite(x) for x in losses)
            return losses

    def evaluate(
        self,
        arch: Architecture | Mapping[str, Any],
        *,
        split: Split = "valid",
        full: bool = False,
        n_batches: int | None = None,
    ) -> float:
        """Score ``arch`` with the current shared weights, without training or side effects.

        Args:
            arch: An architecture of the space (or its Optuna params).
            split: ``"train"``, ``"valid"`` or ``"test"``.
            full: Score the whole split (RNN: batch size 10 with the hidden state carried
                through, as the PyTorch word LM example evaluates). Otherwise the first
                ``n_batches`` minibatches of the split.
            n_batches: Minibatches when not ``full``; ``None``: ``n_eval_batches``.

        Returns:
            Perplexity (RNN) or accuracy (CNN).
        """
        arch = self._space.coerce(arch)
        split = check_split(split)
        n = (
            self._n_eval_batches
            if n_batches is None
            else check_int("n_batches", n_batches, 1, MAX_EVAL_BATCHES)
        )
        with self._lock:
            return self._trainer.evaluate(arch, split, full, n)

    def evaluate_many(
        self,
        archs: Sequence[Architecture | Mapping[str, Any]],
        *,
        split: Split = "valid",
        full: bool = False,
        n_batches: int | None = None,
    ) -> list[float]:
        """:meth:`evaluate` for several architectures on the same frozen weights and batches.

        Returns one value per architecture, equal (to float rounding) to calling
        :meth:`evaluate` on each. For an RNN space the work the architectures share runs once
        per minibatch: the embedding lookup, the input projection and the packing of each
        weight. The cells run in lockstep, so that at every step and node the architectures
        that use the same weight share one product (node 0's ``w_h``: all of them). The decoder
        takes all architectures' outputs in one product (in groups of at most 256 MiB of
        logits). BENCHMARKS.md gives the speed-up ("Batched frozen-weight scoring"). CNN
        spaces score one architecture at a time.

        Args:
            archs: Architectures of the space (or their Optuna params).
            split: ``"train"``, ``"valid"`` or ``"test"``.
            full: Score the whole split (see :meth:`evaluate`).
            n_batches: Minibatches when not ``full``; ``None``: ``n_eval_batches``.
        """
        if isinstance(archs, (str, bytes, Mapping)) or not isinstance(archs, Sequence):
            raise ValueError(f"archs must be a sequence of architectures, but got {archs!r}.")
        coerced = [self._space.coerce(a) for a in archs]
        split = check_split(split)
        n = (
            self._n_eval_batches
            if n_batches is None
            else check_int("n_batches", n_batches, 1, MAX_EVAL_BATCHES)
        )
        if not coerced:
            return []
        with self._lock:
            task = self._trainer.task
            if not isinstance(task, LMTask):
                return [self._trainer.evaluate(a, split, full, n) for a in coerced]
            model = self._trainer.model
            model.eval()
            with torch.no_grad():
                return task.evaluate_many(model, coerced, split, full, n)

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A deep copy of the full state (what :meth:`save` writes)."""
        with self._lock:
            return copy.deepcopy(
                {
                    "kind": _KIND,
                    "space": self._space.to_dict(),
                    "config": self._config,
                    "data": data_fingerprint(self._data),
                    "supernet": self._trainer.model.state_dict(),
                    "optimizer": self._trainer.optimizer.state_dict(),
                    "task": self._trainer.task.state_dict(),
                    "numpy_rng": self._rng.bit_generator.state,
                    "credit": [self._credit.numerator, self._credit.denominator],
                    "n_calls": self._n_calls,
                    "n_steps": self._n_steps,
                    "phase_pos": self._phase_pos,
                    "score_valid_pos": self._score_valid_pos,
                    "warmed_up": self._warmed_up,
                    "pretrained": self._pretrained,
                }
            )

    def save(self, path: str | Path | None = None) -> Path:
        """Atomically write the state to ``path`` (default: ``checkpoint_path``)."""
        if path is None:
            if self._checkpoint_path is None:
                raise ValueError("path must be given when the evaluator has no checkpoint_path.")
            path = self._checkpoint_path
        with self._lock:
            out = save_checkpoint(self.state_dict(), path)
        _logger.info(f"Saved the supernet evaluator after {self._n_calls} calls to {out}.")
        return out

    @classmethod
    def load(
        cls,
        path: str | Path,
        data: Corpus | ImageData | None = None,
        *,
        device: str | torch.device | None = None,
        checkpoint_path: str | Path | None = None,
        checkpoint_every: int = 50,
    ) -> SupernetEvaluator:
        """Rebuild an evaluator from a checkpoint written by :meth:`save`.

        Args:
            path: The checkpoint.
            data: The data it was trained on (``None``: the same default as the constructor).
                A mismatch (vocabulary, sizes) raises ``ValueError``.
            device: Torch device; ``None`` picks CUDA when available.
            checkpoint_path: Where later periodic checkpoints go (``None``: nowhere).
            checkpoint_every: Calls between periodic checkpoints.
        """
        state = load_checkpoint(path)
        _check_kind(state, str(path))
        config = dict(state["config"])
        evaluator = cls(
            space_from_dict(state["space"]),
            data,
            device=device,
            checkpoint_path=checkpoint_path,
            checkpoint_every=checkpoint_every,
            **config,
        )
        evaluator._load_state(state, str(path))
        return evaluator

    def _load_state(self, state: Mapping[str, Any], source: str) -> None:
        _check_kind(state, source)
        if space_from_dict(state["space"]) != self._space:
            raise ValueError(f"resume_from={source!r} was saved for another search space.")
        if state["data"] != data_fingerprint(self._data):
            raise ValueError(
                f"resume_from={source!r} was saved with other data ({state['data']}); this "
                f"evaluator has {data_fingerprint(self._data)}."
            )
        for key in ("supernet_kwargs", "batch_size", "bptt"):
            if state["config"][key] != self._config[key]:
                raise ValueError(
                    f"resume_from={source!r} was saved with {key}={state['config'][key]!r}, "
                    f"but this evaluator has {key}={self._config[key]!r}."
                )
        with self._lock:
            try:
                self._trainer.model.load_state_dict(state["supernet"])
                self._trainer.optimizer.load_state_dict(state["optimizer"])
            except (RuntimeError, ValueError, KeyError) as e:
                raise ValueError(f"resume_from={source!r} does not fit this supernet: {e}") from e
            self._trainer.set_optim(self._setup.optim)
            self._trainer.task.load_state_dict(state["task"])
            self._rng.bit_generator.state = state["numpy_rng"]
            self._credit = Fraction(*state["credit"])
            self._n_calls = int(state["n_calls"])
            self._n_steps = int(state["n_steps"])
            # Checkpoints from before the schedules: interleaved, warm-up long done.
            self._phase_pos = int(state.get("phase_pos", 0)) % self._plan.cycle
            pos = state.get("score_valid_pos")
            self._score_valid_pos = None if pos is None else int(pos)
            self._warmed_up = bool(state.get("warmed_up", self._n_calls > 0)) or (
                self._warmup_steps == 0
            )
            self._pretrained = int(state.get("pretrained", 0))
            self._frozen_cache = {}  # the weights (or the batches) may differ now
        _logger.info(f"Resumed the supernet evaluator from {source} at call {self._n_calls}.")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()


def _check_kind(state: Mapping[str, Any], source: str) -> None:
    if state.get("kind") != _KIND:
        raise ValueError(f"{source!r} is not a SupernetEvaluator checkpoint.")


class StandaloneEvaluator:
    """The NAS-RL objective (Zoph & Le, 2017): train every child from scratch.

    Each call suggests the architecture, builds a fresh supernet (so only the chosen ops are
    ever used: a standalone child), trains it for ``n_epochs`` and scores the full validation
    set after every epoch with ``trial.report(value, epoch)``, raising
    :class:`optuna.TrialPruned` when ``trial.should_prune()``. With ``MedianPruner`` bad
    children stop after an epoch or two. NAS-RL trained each CIFAR child for 50 epochs; the
    default 3 suits the small embedded datasets.

    Trial ``t`` is seeded with ``(seed, t.number)``, so results do not depend on the order in
    which parallel workers run. Calls share no state and may run in parallel.

    Args:
        space: An RNN, macro or micro ENAS space.
        data: A Corpus (RNN) or ImageData (CNN); ``None``: the embedded defaults.
        training: The training settings as one
            :class:`~optuna_enas.TrainingConfig` (defaults as
            :class:`SupernetEvaluator`). The flat keywords ``supernet_kwargs``, ``batch_size``,
            ``bptt``, ``lr``, ``grad_clip``, ``momentum``, ``weight_decay`` and ``device`` are
            shorthands for its fields; giving one that ``training`` also sets raises
            ``ValueError``.
        supernet_kwargs: Extra arguments of the supernet.
        n_epochs: Training epochs per child.
        n_steps_per_epoch: Minibatches per epoch; ``None``: one pass over the training data.
        batch_size: Training minibatch size (default as :class:`SupernetEvaluator`).
        bptt: Truncated-BPTT length (RNN; default as :class:`SupernetEvaluator`).
        lr: SGD learning rate (defaults as :class:`SupernetEvaluator`).
        grad_clip: Maximum gradient norm (defaults as :class:`SupernetEvaluator`).
        momentum: SGD momentum (defaults as :class:`SupernetEvaluator`).
        weight_decay: L2 penalty (defaults as :class:`SupernetEvaluator`).
        device: Torch device; ``None`` picks CUDA when available.
        seed: Base seed; ``None`` draws a fresh seed for every trial.
    """

    def __init__(
        self,
        space: SearchSpace,
        data: Corpus | ImageData | None = None,
        *,
        training: TrainingConfig | None = None,
        supernet_kwargs: Mapping[str, Any] | None = None,
        n_epochs: int = 3,
        n_steps_per_epoch: int | None = None,
        batch_size: int | None = None,
        bptt: int | None = None,
        lr: float | None = None,
        grad_clip: float | None = None,
        momentum: float | None = None,
        weight_decay: float | None = None,
        device: str | torch.device | None = None,
        seed: int | None = None,
    ) -> None:
        check_seed("seed", seed)
        if n_steps_per_epoch is not None:
            check_int("n_steps_per_epoch", n_steps_per_epoch, 1)
        training = fold_training(
            training,
            supernet_kwargs=supernet_kwargs,
            batch_size=batch_size,
            bptt=bptt,
            lr=lr,
            grad_clip=grad_clip,
            momentum=momentum,
            weight_decay=weight_decay,
            device=device,
        )
        self._setup = TrainingSetup.from_config(space, data, training)
        self._space = space
        self._n_epochs = check_int("n_epochs", n_epochs, 1)
        self._n_steps_per_epoch = n_steps_per_epoch
        self._seed = seed

    @property
    def space(self) -> SearchSpace:
        return self._space

    @property
    def training(self) -> TrainingConfig:
        """The training settings resolved (every field set, the device too)."""
        return self._setup.training

    @property
    def metric(self) -> str:
        """``"ppl"`` for RNN spaces, ``"accuracy"`` for CNN spaces."""
        return self._setup.kind.metric

    @property
    def direction(self) -> Direction:
        """The study direction the metric needs."""
        return self._setup.kind.direction

    def __call__(self, trial: BaseTrial) -> float:
        arch = suggest_architecture(trial, self._space)
        number = int(getattr(trial, "number", 0))
        base = self._seed if self._seed is not None else fresh_seed()
        seed = int(np.random.SeedSequence([base, number]).generate_state(1)[0])

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(
                    f"pruned after epoch {epoch} with {self.metric} {value:.6g}."
                )

        _, history, _ = train_from_scratch(
            self._setup,
            arch,
            n_epochs=self._n_epochs,
            n_steps_per_epoch=self._n_steps_per_epoch,
            seed=seed,
            callback=report,
        )
        return history[-1]
