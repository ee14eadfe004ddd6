"""The loop DARTS and DSO-NAS share: budget in weight steps, one recorded trial per epoch.

:class:`OneShotSearcher` owns a relaxed supernet (:func:`~optuna_enas.oneshot.build_relaxed`),
two training streams cut from the training split (the *weight* half trains the weights, the
*arch* half the architecture parameters: DARTS Sec. 2.3 / ``cnn/train_search.py``
``--train_portion 0.5``; DSO-NAS's ``train1.rec`` / ``train2.rec``), the two optimisers and a
private NumPy generator. :meth:`OneShotSearcher.search` runs ``n_steps`` weight steps
(each with the method's architecture step) in epochs of ``steps_per_epoch`` and after every
epoch

1. scores the relaxed supernet on the validation split (``relaxed_value``);
2. derives the discrete architecture (:meth:`RelaxedSupernet.derive`) and scores it, with the
   evaluators' metric, inside the relaxed supernet projected onto it
   (:meth:`RelaxedSupernet.projected`: the search's weights, DARTS one-hot mixtures, DSO-NAS
   pruned factors; the RNN cell outputs the mean of the derived cell's loose ends, as the
   discrete cell): the trial's value. The projected micro cell still concatenates every state
   where the discrete cell concatenates its loose ends. The score of the discrete ENAS
   supernet holding the inherited weights (``discrete_state_dict``) is recorded beside it
   (``inherited_value``); it loses DSO-NAS's factor scale and the micro cell's full output, so
   it can be far worse;
3. records it in the Optuna study (:func:`~optuna_enas.oneshot._record.record_epoch`);
4. tracks collapse (:class:`~optuna_enas.oneshot._collapse.CollapseMonitor`);
5. writes an atomic checkpoint (weights, alpha/lambda, both optimisers, the learning-rate plan,
   both data positions, the RNG, the history), from which a new searcher continues exactly
   (bitwise on CPU).

Data parallel (``distributed=True``): every rank of an initialised ``torch.distributed`` group
builds the searcher with the same seed; each takes its ``1/world`` shard of both halves, rank
0's parameters are broadcast, and every gradient (weights, alpha/lambda, the unrolled and
Hessian-vector-product gradients of second-order DARTS) is averaged over the ranks before it
is used, so alpha/lambda, the weights and the derived architecture are identical on every
rank. Only rank 0 needs the study (pass ``None`` elsewhere) and the checkpoint path. As in
:mod:`optuna_enas.training.distributed`, a loss that is non-finite on some ranks only makes those
ranks skip a step while the others wait in an all-reduce: create the group with a ``timeout``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

import numpy as np
import optuna
import torch
from torch import nn

from optuna_enas._validation import check_fraction
from optuna_enas._validation import check_int
from optuna_enas._validation import check_seed
from optuna_enas._validation import fresh_seed
from optuna_enas.data._corpus import DEFAULT_BPTT
from optuna_enas.data._corpus import Corpus
from optuna_enas.data._images import ImageData
from optuna_enas.oneshot._build import build_relaxed
from optuna_enas.oneshot._collapse import CollapseMonitor
from optuna_enas.oneshot._collapse import default_threshold
from optuna_enas.oneshot._record import TABLES_KEY
from optuna_enas.oneshot._record import compact_json
from optuna_enas.oneshot._record import record_epoch
from optuna_enas.oneshot._relaxed import Relaxation
from optuna_enas.oneshot._relaxed import RelaxedSupernet
from optuna_enas.spaces._enas import space_from_dict
from optuna_enas.spaces._kinds import SpaceKind
from optuna_enas.spaces._kinds import kind_of
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.training._checkpoint import load_checkpoint
from optuna_enas.training._checkpoint import save_checkpoint
from optuna_enas.training._config import TrainingConfig
from optuna_enas.training._tasks import Task
from optuna_enas.training._tasks import data_fingerprint
from optuna_enas.training._tasks import default_data
from optuna_enas.training._tasks import make_task
from optuna_enas.training._tasks import steps_per_epoch as task_steps_per_epoch
from optuna_enas.training._trainer import build_supernet
from optuna_enas.training._trainer import resolve_device


if TYPE_CHECKING:
    from optuna_enas.dashboard._callback import DashboardCallback


_logger = logging.getLogger(__name__)

_KIND = "OneShotSearcher"  # checkpoint format tag
LossFn = Callable[[], torch.Tensor]


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of a one-shot search produced (also the recorded trial's attrs)."""

    epoch: int
    n_weight_steps: int
    architecture: Architecture
    value: float
    relaxed_value: float
    summary: dict[str, float]
    tables: dict[str, list[list[float]]]
    phase: str = "search"
    trial_number: int | None = None
    inherited_value: float = math.nan  # the discrete supernet with the inherited weights

    def to_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "n_weight_steps": self.n_weight_steps,
            "architecture": self.architecture.to_json(),
            "value": self.value,
            "relaxed_value": self.relaxed_value,
            "summary": dict(self.summary),
            "tables": self.tables,
            "phase": self.phase,
            "trial_number": self.trial_number,
            "inherited_value": self.inherited_value,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpochRecord:
        return cls(
            epoch=int(state["epoch"]),
            n_weight_steps=int(state["n_weight_steps"]),
            architecture=Architecture.from_json(state["architecture"]),
            value=float(state["value"]),
            relaxed_value=float(state["relaxed_value"]),
            summary={str(k): float(v) for k, v in state["summary"].items()},
            tables=state["tables"],
            phase=str(state["phase"]),
            trial_number=None if state["trial_number"] is None else int(state["trial_number"]),
            inherited_value=float(state.get("inherited_value", math.nan)),
        )


@dataclass(frozen=True)
class SearchResult:
    """The outcome of :meth:`OneShotSearcher.search`.

    Attributes:
        architecture: The final derived architecture; after a collapse stop
            (``early_stop=True``) the one of the last epoch at or below the threshold.
        value: Its shared-weight validation score (the evaluators' metric).
        history: One :class:`EpochRecord` per epoch (resumed epochs included).
        stopped_early: Whether the DARTS+ collapse rule stopped the search.
        n_weight_steps: Weight steps taken in all.
    """

    architecture: Architecture
    value: float
    history: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False
    n_weight_steps: int = 0


def split_training_data(
    data: Corpus | ImageData, train_portion: float
) -> tuple[Corpus | ImageData, Corpus | ImageData]:
    """The weight part (first ``train_portion``) and the arch part (the rest) of the train split.

    Contiguous, as DARTS's ``indices[:split]`` / ``indices[split:]`` (``cnn/train_search.py``);
    the validation and test splits are left whole in both.
    """
    n = data.train.numel() if isinstance(data, Corpus) else data.train_y.numel()
    cut = int(math.floor(train_portion * n))
    if cut < 2 or n - cut < 2:
        raise ValueError(
            f"train_portion={train_portion!r} leaves fewer than 2 training examples in a half "
            f"(of {n})."
        )
    if isinstance(data, Corpus):
        return (
            dataclasses.replace(data, train=data.train[:cut].clone(), name=f"{data.name}[w]"),
            dataclasses.replace(data, train=data.train[cut:].clone(), name=f"{data.name}[a]"),
        )
    return (
        dataclasses.replace(
            data,
            train_x=data.train_x[:cut].clone(),
            train_y=data.train_y[:cut].clone(),
            name=f"{data.name}[w]",
        ),
        dataclasses.replace(
            data,
            train_x=data.train_x[cut:].clone(),
            train_y=data.train_y[cut:].clone(),
            name=f"{data.name}[a]",
        ),
    )


def grads_of(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``d loss / d params``; a parameter the loss does not reach gets a zero gradient."""
    grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


class PaperOptimizer(Protocol):
    """The weight optimizer's settings of a method's paper (``DartsDefaults``,
    ``DSONASDefaults``)."""

    @property
    def batch_size(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @property
    def momentum(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def grad_clip(self) -> float: ...


def with_paper_optimizer(training: TrainingConfig, paper: PaperOptimizer) -> TrainingConfig:
    """``training`` with the weight-optimizer fields it leaves unset taken from ``paper``."""
    return training.with_defaults(
        batch_size=paper.batch_size,
        lr=paper.lr,
        momentum=paper.momentum,
        weight_decay=paper.weight_decay,
        grad_clip=paper.grad_clip,
    )


def clip_coefficient(grads: Sequence[torch.Tensor], max_norm: float) -> float:
    """The factor ``clip_grad_norm_`` would scale ``grads`` by (1 when within ``max_norm``)."""
    if not math.isfinite(max_norm) or not grads:
        return 1.0
    norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
    return min(1.0, max_norm / (norm + 1e-6))


class OneShotSearcher:
    """Shared machinery of :class:`~optuna_enas.oneshot.DARTS` and
    :class:`~optuna_enas.oneshot.DSONAS` (not used directly).

    Subclasses set :attr:`method`, build the optimisers and implement :meth:`_train_step` and
    :meth:`_weight_lr`. They fold their flat training keywords and ``training=`` into one
    :class:`~optuna_enas.TrainingConfig` (their defaults filled in: the
    ``batch_size`` at least) and pass only that here; its optimizer fields are theirs to read.
    """

    method: str = "oneshot"
    relaxation: Relaxation = "darts"

    def __init__(
        self,
        space: SearchSpace,
        data: Corpus | ImageData | None,
        *,
        seed: int | None,
        training: TrainingConfig,
        train_portion: float,
        eval_batches: int | None,
        default_epochs: int,
        checkpoint_path: str | Path | None,
        collapse_threshold: float | None,
        early_stop: bool,
        distributed: bool,
        dashboard: DashboardCallback | None,
        supernet: RelaxedSupernet | None,
    ) -> None:
        self.space = space
        self.kind: SpaceKind = kind_of(space)
        self.data = default_data(space, data)
        self.seed = check_seed("seed", seed)
        seed_value = fresh_seed() if self.seed is None else self.seed
        if not isinstance(training, TrainingConfig) or training.batch_size is None:
            raise ValueError(
                f"training must be a TrainingConfig with a batch_size, but got {training!r}."
            )
        kwargs = dict(training.supernet_kwargs)
        self.supernet_kwargs = kwargs
        self.batch_size = training.batch_size
        self.bptt = DEFAULT_BPTT if training.bptt is None else training.bptt
        portion = check_fraction("train_portion", train_portion)
        if portion <= 0.0:
            raise ValueError(
                f"train_portion must be a float in (0, 1), but got {train_portion!r}."
            )
        self.train_portion = portion
        self.eval_batches = (
            None if eval_batches is None else check_int("eval_batches", eval_batches)
        )
        self.default_epochs = check_int("epochs", default_epochs)
        self.device = resolve_device(training.device)
        self.training = dataclasses.replace(training, bptt=self.bptt, device=str(self.device))
        """The training settings resolved (every field set): what this search trains with."""
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        threshold = default_threshold(space) if collapse_threshold is None else collapse_threshold
        self.collapse = CollapseMonitor(threshold, early_stop=early_stop)
        if not isinstance(distributed, bool):
            raise ValueError(f"distributed must be a bool, but got {distributed!r}.")
        self.distributed = distributed
        self.rank, self.world_size = 0, 1
        if distributed:
            import torch.distributed as dist

            if not dist.is_available() or not dist.is_initialized():
                raise ValueError(
                    "distributed=True needs an initialized torch.distributed process group."
                )
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.dashboard = dashboard

        self._rng = np.random.default_rng(seed_value)
        init_seed = int(self._rng.integers(2**31 - 1))
        self._scorer_seed = int(self._rng.integers(2**31 - 1))
        if supernet is None:
            generator = torch.Generator().manual_seed(init_seed)
            supernet = build_relaxed(
                space, self.data, relaxation=self.relaxation, generator=generator, **kwargs
            )
        if not isinstance(supernet, RelaxedSupernet):
            raise ValueError(f"supernet must be a RelaxedSupernet, but got {supernet!r}.")
        if supernet.relaxation != self.relaxation or supernet.space != space:
            raise ValueError(
                f"supernet must be a {self.relaxation!r} relaxation of {space!r}, but got a "
                f"{supernet.relaxation!r} one of {supernet.space!r}."
            )
        self.model: RelaxedSupernet = supernet.to(self.device)
        self.weights = self.model.weight_parameters()
        self.arch = self.model.arch_parameters()
        if not self.arch:
            raise ValueError("the supernet has no architecture parameters.")

        w_data, a_data = split_training_data(self.data, self.train_portion)
        if distributed:
            from optuna_enas.training.distributed import broadcast_parameters
            from optuna_enas.training.distributed import shard_training_data

            w_data = shard_training_data(w_data, rank=self.rank, world_size=self.world_size)
            a_data = shard_training_data(a_data, rank=self.rank, world_size=self.world_size)
            broadcast_parameters(self.model)
        self.w_task: Task = make_task(
            w_data, batch_size=self.batch_size, bptt=self.bptt, device=self.device
        )
        self.a_task: Task = make_task(
            a_data, batch_size=self.batch_size, bptt=self.bptt, device=self.device
        )
        # Dropout masks draw from this generator, reseeded from the NumPy one at every step.
        self.dropout_generator = torch.Generator(device=self.device)
        if hasattr(self.model, "dropout_generator"):
            setattr(self.model, "dropout_generator", self.dropout_generator)  # noqa: B010
        self._scorer: nn.Module | None = None

        self.epoch = 0
        self.n_weight_steps = 0
        self.n_skipped = 0
        self.history: list[EpochRecord] = []
        self._plan: tuple[int, int] | None = None

    # -- to implement ---------------------------------------------------------------------------
    def _train_step(self, epoch: int, n_epochs: int) -> None:
        raise NotImplementedError

    def _end_of_epoch(self, epoch: int) -> None:
        """After an epoch's steps, before it is scored (DSO-NAS prunes here)."""

    def _phase(self) -> str:
        return "search"

    def _optimizers(self) -> dict[str, Any]:
        """The optimisers by name (their ``state_dict`` goes into checkpoints)."""
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        """The settings a checkpoint must agree with (JSON-able)."""
        return {
            "supernet_kwargs": self.supernet_kwargs,
            "batch_size": self.batch_size,
            "bptt": self.bptt,
            "train_portion": self.train_portion,
        }

    # -- pieces the methods use -----------------------------------------------------------------
    def mean_over_ranks(self, tensors: Sequence[torch.Tensor]) -> None:
        """Average ``tensors`` in place over the ranks (nothing without ``distributed``)."""
        if not self.distributed or not tensors:
            return
        import torch.distributed as dist

        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat.div_(self.world_size)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def replayable_loss(self, task: Task) -> LossFn:
        """The loss on ``task``'s next minibatch, recomputable on the same minibatch.

        Each call restores the task's position (and carried hidden state), the NumPy generator
        and the dropout seed to the moment of this call, so every call sees the same batch and
        the same dropout masks; afterwards the stream stands one batch further.
        """
        task_state = task.state_dict()
        rng_state = self._rng.bit_generator.state
        dropout_seed = int(self._rng.integers(2**31 - 1))

        def loss() -> torch.Tensor:
            task.load_state_dict(task_state)
            self._rng.bit_generator.state = rng_state
            self._rng.integers(2**31 - 1)  # the dropout seed drawn above
            self.dropout_generator.manual_seed(dropout_seed)
            return task.train_loss(self.model, None, self._rng)  # type: ignore[arg-type]

        return loss

    def next_loss(self, task: Task) -> torch.Tensor:
        """The loss on ``task``'s next minibatch (fresh dropout masks)."""
        self.dropout_generator.manual_seed(int(self._rng.integers(2**31 - 1)))
        return task.train_loss(self.model, None, self._rng)  # type: ignore[arg-type]

    def skip_if_bad(self, loss: torch.Tensor, task: Task) -> bool:
        """``True`` (and the step skipped) for a non-finite loss, as the ENAS trainer does."""
        value = float(loss.detach())
        if math.isfinite(value):
            return False
        self.n_skipped += 1
        task.reset_hidden()
        _logger.warning(f"Skipped a one-shot step: the loss is {value}.")
        return True

    @staticmethod
    def set_grads(params: Sequence[nn.Parameter], grads: Sequence[torch.Tensor]) -> None:
        for p, g in zip(params, grads, strict=True):
            p.grad = g.detach()

    # -- the search -----------------------------------------------------------------------------
    def search(
        self,
        study: optuna.Study | None,
        *,
        n_steps: int | None = None,
        steps_per_epoch: int | None = None,
        callbacks: Sequence[Callable[[OneShotSearcher, EpochRecord], None]] = (),
    ) -> SearchResult:
        """Run the search to ``n_steps`` weight steps in all, recording one trial per epoch.

        Args:
            study: The study the epochs are recorded in (its direction must be the space's:
                ``minimize`` perplexity, ``maximize`` accuracy). ``None`` records nothing
                (the other ranks of a distributed search).
            n_steps: Weight steps in all, resumed ones included. ``None``: the method's
                default number of epochs (:attr:`default_epochs`) times ``steps_per_epoch``.
            steps_per_epoch: Weight steps per epoch (a trial per epoch). ``None``: one pass
                over the weight half of the training data.
            callbacks: ``callback(searcher, record)`` after each epoch is recorded and
                checkpointed (it may raise to stop the search; a later :meth:`search` of a
                searcher resumed from the checkpoint continues after that epoch).
        """
        if study is not None:
            names = [d.name.lower() for d in study.directions]
            if names != [self.kind.direction]:
                raise ValueError(
                    f"study must be a single-objective study with direction "
                    f"{self.kind.direction!r} (the {self.kind.metric_label} of a "
                    f"{self.kind.name} space), but it has {names}."
                )
        spe = task_steps_per_epoch(self.w_task) if steps_per_epoch is None else steps_per_epoch
        spe = check_int("steps_per_epoch", spe, 1)
        total = self.default_epochs * spe if n_steps is None else n_steps
        total = check_int("n_steps", total, 1)
        if self._plan is not None and self._plan != (total, spe):
            raise ValueError(
                f"this searcher was resumed from a search of n_steps={self._plan[0]} and "
                f"steps_per_epoch={self._plan[1]}; it must continue with the same (got "
                f"n_steps={total}, steps_per_epoch={spe})."
            )
        self._plan = (total, spe)
        n_epochs = math.ceil(total / spe)
        while self.n_weight_steps < total and not self.collapse.should_stop:
            epoch = self.epoch
            steps = min(spe, total - self.n_weight_steps)
            for _ in range(steps):
                self.model.train()
                self._train_step(epoch, n_epochs)
                self.n_weight_steps += 1
            self._end_of_epoch(epoch)
            record = self._score_epoch(epoch)
            self.collapse.update(epoch, record.summary.get("param_free_share", math.nan))
            if study is not None:
                trial = record_epoch(
                    study,
                    self.space,
                    record.architecture,
                    value=record.value,
                    method=self.method,
                    user_attrs=self._user_attrs(record),
                    dashboard=self.dashboard,
                )
                record = dataclasses.replace(record, trial_number=trial.number)
            self.history.append(record)
            self.epoch += 1
            if self.checkpoint_path is not None and self.rank == 0:
                self.save(self.checkpoint_path)
            for callback in callbacks:
                callback(self, record)
        return self.result()

    def result(self) -> SearchResult:
        """The :class:`SearchResult` of the epochs run so far."""
        if not self.history:
            raise ValueError("the search has not finished an epoch yet.")
        chosen = self.history[-1]
        if self.collapse.should_stop:
            below = [
                r
                for r in self.history
                if not r.summary.get("param_free_share", 0.0) > self.collapse.threshold
            ]
            if below:
                chosen = below[-1]
        return SearchResult(
            architecture=chosen.architecture,
            value=chosen.value,
            history=list(self.history),
            stopped_early=self.collapse.should_stop,
            n_weight_steps=self.n_weight_steps,
        )

    def _user_attrs(self, record: EpochRecord) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "epoch": record.epoch,
            "weight_steps": record.n_weight_steps,
            "phase": record.phase,
            "relaxed_value": record.relaxed_value,
            "inherited_value": record.inherited_value,
            TABLES_KEY: compact_json(record.tables),
        }
        for key, value in record.summary.items():
            attrs[key] = value
        return attrs

    # -- scoring ---------------------------------------------------------------------------------
    def _evaluate(
        self, model: nn.Module, arch: Architecture | None, *, full: bool = False
    ) -> float:
        model.eval()
        full = full or self.eval_batches is None
        with torch.no_grad():
            return float(
                self.w_task.evaluate(model, arch, "valid", full, self.eval_batches or 1)  # type: ignore[arg-type]
            )

    def scorer(self) -> nn.Module:
        """The discrete supernet holding the relaxed supernet's current shared weights."""
        if self._scorer is None:
            generator = torch.Generator().manual_seed(self._scorer_seed)
            self._scorer = build_supernet(
                self.space, self.data, self.supernet_kwargs, generator
            ).to(self.device)
        self._scorer.load_state_dict(self.model.discrete_state_dict(), strict=False)
        return self._scorer

    def score(self, arch: Architecture, *, full: bool = False) -> float:
        """``arch``'s validation metric inside the relaxed supernet, projected onto ``arch``.

        The architecture parameters encode only ``arch`` (:meth:`RelaxedSupernet.projected`:
        DARTS one-hot mixtures, DSO-NAS the pruned factors with their trained values) and the
        weights are the search's: the "discretization accuracy" of Wang et al. (ICLR 2021).
        This is the value each epoch's trial records. ``full``: the whole validation split
        (default: ``eval_batches``). A supernet without a projection (a custom
        :class:`RelaxedSupernet` that does not implement it) is scored by
        :meth:`inherited_score` instead.
        """
        arch = self.space.coerce(arch)
        try:
            with self.model.projected(arch):
                return self._evaluate(self.model, None, full=full)
        except NotImplementedError:
            return self.inherited_score(arch, full=full)

    def inherited_score(self, arch: Architecture, *, full: bool = False) -> float:
        """``arch``'s validation metric on the discrete ENAS supernet with the inherited weights.

        Recorded as the ``inherited_value`` user attr. It can be far off the projected score:
        the discrete cell has no place for DSO-NAS's factor scale (an RNN cell's perplexity
        went off-scale) and the micro cell's output reads only its loose ends (BENCHMARKS,
        "Discretisation gap").
        """
        return self._evaluate(self.scorer(), self.space.coerce(arch), full=full)

    def _score_epoch(self, epoch: int) -> EpochRecord:
        relaxed_value = self._evaluate(self.model, None)
        with torch.no_grad():
            arch = self.model.derive()
            summary = {k: float(v) for k, v in self.model.arch_summary().items()}
            tables = self.model.arch_tables()
        value = self.score(arch)
        inherited = self.inherited_score(arch)
        return EpochRecord(
            epoch=epoch,
            n_weight_steps=self.n_weight_steps,
            architecture=arch,
            value=value,
            relaxed_value=relaxed_value,
            summary=summary,
            tables=tables,
            phase=self._phase(),
            inherited_value=inherited,
        )

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The full state (what :meth:`save` writes)."""
        return {
            "kind": _KIND,
            "method": self.method,
            "space": self.space.to_dict(),
            "config": self._config(),
            "data": data_fingerprint(self.data),
            "world_size": self.world_size,
            "supernet": self.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self._optimizers().items()},
            "w_task": self.w_task.state_dict(),
            "a_task": self.a_task.state_dict(),
            "numpy_rng": self._rng.bit_generator.state,
            "scorer_seed": self._scorer_seed,
            "epoch": self.epoch,
            "n_weight_steps": self.n_weight_steps,
            "n_skipped": self.n_skipped,
            "plan": None if self._plan is None else list(self._plan),
            "collapse": self.collapse.state_dict(),
            "history": [r.to_state() for r in self.history],
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Atomically write the state to ``path`` (default: ``checkpoint_path``)."""
        if path is None:
            if self.checkpoint_path is None:
                raise ValueError("path must be given when the searcher has no checkpoint_path.")
            path = self.checkpoint_path
        return save_checkpoint(self.state_dict(), path)

    def load(self, path: str | Path) -> None:
        """Continue from a checkpoint of a searcher built with the same arguments."""
        source = str(path)
        state = load_checkpoint(path)
        if state.get("kind") != _KIND or state.get("method") != self.method:
            raise ValueError(f"resume_from={source!r} is not a {self.method} searcher checkpoint.")
        if space_from_dict(state["space"]) != self.space:
            raise ValueError(f"resume_from={source!r} was saved for another search space.")
        if state["data"] != data_fingerprint(self.data):
            raise ValueError(
                f"resume_from={source!r} was saved with other data ({state['data']})."
            )
        config = self._config()
        for key, value in state["config"].items():
            if config.get(key) != value:
                raise ValueError(
                    f"resume_from={source!r} was saved with {key}={value!r}, but this searcher "
                    f"has {key}={config.get(key)!r}."
                )
        if int(state["world_size"]) != self.world_size:
            raise ValueError(
                f"resume_from={source!r} was saved by {state['world_size']} ranks, not "
                f"{self.world_size}."
            )
        try:
            self.model.load_state_dict(state["supernet"])
            for name, opt in self._optimizers().items():
                opt.load_state_dict(state["optimizers"][name])
        except (RuntimeError, ValueError, KeyError) as e:
            raise ValueError(f"resume_from={source!r} does not fit this searcher: {e}") from e
        self.w_task.load_state_dict(state["w_task"])
        self.a_task.load_state_dict(state["a_task"])
        self._rng.bit_generator.state = state["numpy_rng"]
        self._scorer_seed = int(state["scorer_seed"])
        self._scorer = None
        self.epoch = int(state["epoch"])
        self.n_weight_steps = int(state["n_weight_steps"])
        self.n_skipped = int(state["n_skipped"])
        plan = state["plan"]
        self._plan = None if plan is None else (int(plan[0]), int(plan[1]))
        self.collapse.load_state_dict(state["collapse"])
        self.history = [EpochRecord.from_state(r) for r in state["history"]]


__all__ = [
    "EpochRecord",
    "OneShotSearcher",
    "SearchResult",
    "clip_coefficient",
    "grads_of",
    "split_training_data",
]
