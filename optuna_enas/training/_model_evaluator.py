"""The shared-weight objective over the user's own model, data, loss and metric.

:class:`ModelEvaluator` is :class:`~optuna_enas.SupernetEvaluator` for a
:class:`~optuna_enas.nn.Supernet` built from the user's ``nn.Module``: each call (one Optuna
trial) suggests the architecture, activates it, takes shared-weight steps on the user's training
batches with the user's loss and optimizer, and scores it with the user's metric on validation
batches. The schedules and training paths are those of ``SupernetEvaluator``
(:mod:`optuna_enas.training._schedule`, :mod:`optuna_enas.training._paths`).
:func:`objective_over` is the short spelling.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import optuna
import torch
import torch.nn.functional as F
from torch import nn

from optuna_enas._validation import check_int
from optuna_enas._validation import check_non_negative
from optuna_enas._validation import check_seed
from optuna_enas._validation import fresh_seed
from optuna_enas.nn._supernet import Supernet
from optuna_enas.spaces._kinds import Direction
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import suggest_architecture
from optuna_enas.training._checkpoint import load_checkpoint
from optuna_enas.training._checkpoint import save_checkpoint
from optuna_enas.training._paths import PathSampler
from optuna_enas.training._paths import TrainPaths
from optuna_enas.training._paths import check_train_paths
from optuna_enas.training._schedule import PHASE_KEY
from optuna_enas.training._schedule import PhasePlan
from optuna_enas.training._schedule import Schedule
from optuna_enas.training._schedule import check_schedule


if TYPE_CHECKING:
    from optuna.trial import BaseTrial


_KIND = "ModelEvaluator"
WORST = {"minimize": math.inf, "maximize": -math.inf}

Batch = Any
LossFn = Callable[[Any, Any], torch.Tensor]
MetricFn = Callable[[Any, Any], float]
OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


def default_optimizer(params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """ENAS's child optimizer on CIFAR-10: SGD, lr 0.05, Nesterov momentum 0.9, weight decay
    1e-4 (melodyguan/enas ``scripts/cifar10_micro_search.sh``: ``child_lr=0.05``,
    ``child_l2_reg=1e-4``; ``src/utils.py`` ``get_train_ops``: momentum 0.9, Nesterov)."""
    return torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Top-1 accuracy of logits ``output`` (N, C) against class indices ``target`` (N,)."""
    return float((output.argmax(dim=-1) == target).float().mean())


def split_batch(batch: Batch) -> tuple[Any, Any]:
    """``(inputs, target)`` of a ``(x, y)`` batch, as a ``DataLoader`` of pairs yields."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(
        "a batch must be an (inputs, target) pair; pass batch_fn= to split other batches, "
        f"but got {type(batch).__name__}"
        + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        + "."
    )


def to_device(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


def batch_size_of(target: Any) -> int:
    if isinstance(target, torch.Tensor) and target.dim() > 0:
        return int(target.shape[0])
    return 1


class BatchStream:
    """Endless batches from an iterable, with a position that a checkpoint can restore.

    ``epoch`` counts passes; ``index`` the batches taken in this pass. When the iterable is a
    ``DataLoader`` whose order comes from its ``generator=`` (or that does not shuffle), the
    generator state at the start of the pass is kept, so :meth:`restore` replays the same
    order and skips the batches already taken: resume is exact.
    """

    def __init__(self, name: str, data: Iterable[Batch]) -> None:
        if not isinstance(data, Iterable):
            raise ValueError(
                f"{name} must be an iterable of batches (e.g. a DataLoader), "
                f"but got {type(data).__name__}."
            )
        self.name = name
        self.data = data
        self.epoch = 0
        self.index = 0
        self._it: Iterator[Batch] | None = None
        self._gen_state: torch.Tensor | None = None

    def _generator(self) -> torch.Generator | None:
        gen = getattr(self.data, "generator", None)
        return gen if isinstance(gen, torch.Generator) else None

    def _start(self) -> None:
        gen = self._generator()
        self._gen_state = gen.get_state() if gen is not None else None
        self._it = iter(self.data)

    def next(self) -> Batch:
        if self._it is None:
            self._start()
        assert self._it is not None
        try:
            batch = next(self._it)
        except StopIteration:
            if self.index == 0:
                raise ValueError(f"{self.name} yields no batch.") from None
            self.epoch += 1
            self.index = 0
            self._start()
            try:
                batch = next(self._it)
            except StopIteration:
                raise ValueError(f"{self.name} yields no batch.") from None
        self.index += 1
        return batch

    def state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index, "generator": self._gen_state}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        index = int(state["index"])
        gen, saved = self._generator(), state.get("generator")
        if gen is not None and saved is not None:
            gen.set_state(saved)
        self._it = iter(self.data)
        self._gen_state = saved
        for k in range(index):
            try:
                next(self._it)
            except StopIteration:
                raise ValueError(
                    f"{self.name} is shorter than the checkpoint's position ({index} batches "
                    f"into pass {self.epoch}); was it built the same way?"
                ) from None
            del k
        self.index = index


class ModelEvaluator:
    """The shared-weight (ENAS) objective for a :class:`~optuna_enas.nn.Supernet` and your data.

    Each call (one trial) suggests every decision of ``supernet.space`` with
    :func:`~optuna_enas.suggest_architecture` (so it runs under ``ENASSampler``,
    ``RandomSampler``, ``TPESampler`` or any sampler), takes ``n_train_steps`` shared steps on
    the next training batches and returns the metric on the next ``n_eval_batches`` validation
    batches, reporting it to the trial (``trial.report`` / ``should_prune``). A non-finite
    training loss skips the step (the shared weights stay clean); a non-finite or failing
    metric becomes the worst value of the direction, so neither a pruner nor a sampler sees NaN.

    Schedules (as :class:`~optuna_enas.SupernetEvaluator`): ``"interleaved"`` (ENAS: train,
    then score, every trial), ``"phased"`` (train trials end PRUNED with ``enas:phase`` =
    ``"train"``, score trials score on frozen weights) and ``"two_stage"`` (SPOS, Guo et al.
    2020; RS-WS, Li & Talwalkar 2019: ``pretrain_steps`` shared steps on the ``train_paths``
    first, then every trial scores on the frozen weights, each distinct architecture once).
    ``train_paths`` says which architectures train the shared weights
    (:class:`~optuna_enas.training._paths.PathSampler`: ``"controller"`` = the trial's own,
    ``"uniform"``, ``"fair"``, ``"mixture"``).

    Args:
        supernet: The :class:`~optuna_enas.nn.Supernet` of your model.
        train_data: Training batches: a ``DataLoader`` or any re-iterable of batches. It is
            cycled endlessly (a new pass when it ends).
        valid_data: Validation batches, cycled the same way (``n_eval_batches`` per score).
        loss_fn: ``loss_fn(output, target) -> scalar tensor``. Default: cross-entropy.
        metric: ``"loss"`` (the mean ``loss_fn``; minimize), ``"accuracy"`` (top-1 of logits;
            maximize) or a callable ``metric(output, target) -> float`` averaged over the
            batches weighted by their size (then ``direction`` is required).
        direction: ``"minimize"`` or ``"maximize"``; default from a named metric.
        optimizer: ``optimizer(params) -> torch.optim.Optimizer`` for the shared weights.
            Default :func:`default_optimizer` (ENAS's child SGD).
        batch_fn: ``batch_fn(batch) -> (inputs, target)``; default: a batch is an
            ``(inputs, target)`` pair. ``inputs`` may be a tensor or a tuple of positional
            arguments of the model.
        n_train_steps: Shared steps per trial; fractions accumulate (0.2 = one step every 5
            trials). ENAS: 400 shared steps per 2000 controller samples, i.e. 0.2
            (carpedm20/ENAS-pytorch); default 1.
        n_eval_batches: Validation batches per score (ENAS: 1 minibatch per reward).
        grad_clip: Gradient-norm clip of the shared step (ENAS ``child_grad_bound`` 5.0);
            ``math.inf`` turns it off.
        schedule: ``"interleaved"``, ``"phased"`` or ``"two_stage"``.
        train_paths: ``"controller"``, ``"uniform"``, ``"fair"`` or ``"mixture"``.
        mixture: The trial's own path's probability under ``train_paths="mixture"``.
        phase_train_trials: Training trials per cycle (``"phased"``).
        phase_score_trials: Scoring trials per cycle (``"phased"``).
        pretrain_steps: Supernet steps before the first trial (``"two_stage"``).
        warmup_steps: Steps on uniform architectures before the first trial (any schedule).
        bn_recalibration_batches: Before each score, reset the batch-norm statistics and
            recompute them on this many training batches on the scored path (SPOS, Guo et al.
            2020, Sec. 3.3; the statistics are put back afterwards). 0: off (default, as ENAS).
        device: Where the supernet and batches go; default: the supernet's device.
        seed: Seeds the path draws (uniform/fair/mixture/warm-up).
        checkpoint_path: Save the state here every ``checkpoint_every`` calls.
        checkpoint_every: See above.
        resume_from: Restore a state written by :meth:`save`.
    """

    def __init__(
        self,
        supernet: Supernet,
        train_data: Iterable[Batch],
        valid_data: Iterable[Batch],
        *,
        loss_fn: LossFn | None = None,
        metric: str | MetricFn = "loss",
        direction: Direction | None = None,
        optimizer: OptimizerFactory | None = None,
        batch_fn: Callable[[Batch], tuple[Any, Any]] | None = None,
        n_train_steps: float = 1.0,
        n_eval_batches: int = 1,
        grad_clip: float = 5.0,
        schedule: Schedule = "interleaved",
        train_paths: TrainPaths = "controller",
        mixture: float = 0.5,
        phase_train_trials: int = 1,
        phase_score_trials: int = 10,
        pretrain_steps: int = 0,
        warmup_steps: int = 0,
        bn_recalibration_batches: int = 0,
        device: str | torch.device | None = None,
        seed: int | None = None,
        checkpoint_path: str | Path | None = None,
        checkpoint_every: int = 1,
        resume_from: str | Path | None = None,
    ) -> None:
        if not isinstance(supernet, Supernet):
            raise ValueError(
                "supernet must be an optuna_enas.nn.Supernet (wrap your model: "
                f"Supernet(model)), but got {type(supernet).__name__}."
            )
        self._supernet = supernet
        self._space = supernet.space
        self._train = BatchStream("train_data", train_data)
        self._valid = BatchStream("valid_data", valid_data)
        self._loss_fn: LossFn = loss_fn if loss_fn is not None else F.cross_entropy
        if not callable(self._loss_fn):
            raise ValueError(f"loss_fn must be callable, but got {loss_fn!r}.")
        self._metric_name, self._metric_fn, self._direction = self._resolve_metric(
            metric, direction
        )
        self._batch_fn = batch_fn if batch_fn is not None else split_batch
        if not callable(self._batch_fn):
            raise ValueError(f"batch_fn must be callable, but got {batch_fn!r}.")
        self._n_train_steps = check_non_negative("n_train_steps", n_train_steps)
        self._n_eval_batches = check_int("n_eval_batches", n_eval_batches, 1, 10**6)
        if not isinstance(grad_clip, (int, float)) or not grad_clip > 0:
            raise ValueError(f"grad_clip must be a number > 0 (or math.inf), got {grad_clip!r}.")
        self._grad_clip = float(grad_clip)
        self._plan = PhasePlan(
            check_schedule(schedule),
            train_trials=phase_train_trials,
            score_trials=phase_score_trials,
        )
        self._paths = PathSampler(self._space, check_train_paths(train_paths), mixture=mixture)
        self._pretrain_steps = check_int("pretrain_steps", pretrain_steps, 0, 10**9)
        self._warmup_steps = check_int("warmup_steps", warmup_steps, 0, 10**9)
        self._bn_batches = check_int(
            "bn_recalibration_batches", bn_recalibration_batches, 0, 10**6
        )
        self._checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1)
        self._checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
        if device is not None:
            supernet.to(torch.device(device))
        first = next(iter(supernet.parameters()), None)
        self._device = first.device if first is not None else torch.device("cpu")
        factory = optimizer if optimizer is not None else default_optimizer
        if not callable(factory):
            raise ValueError(f"optimizer must be callable, but got {optimizer!r}.")
        self._optimizer = factory(list(supernet.parameters()))
        if not isinstance(self._optimizer, torch.optim.Optimizer):
            raise ValueError(
                "optimizer(params) must return a torch.optim.Optimizer, but got "
                f"{type(self._optimizer).__name__}."
            )
        seed = check_seed("seed", seed)
        self._rng = np.random.default_rng(fresh_seed() if seed is None else seed)
        self._lock = threading.Lock()
        self._n_calls = 0
        self._n_steps = 0
        self._n_skipped = 0
        self._credit = 0.0
        self._phase_pos = 0
        self._warmed_up = False
        self._pretrained = 0
        self._frozen_cache: dict[Architecture, float] = {}
        if resume_from is not None:
            self.load(resume_from)

    @staticmethod
    def _resolve_metric(
        metric: str | MetricFn, direction: Direction | None
    ) -> tuple[str, MetricFn | None, Direction]:
        if direction is not None and direction not in ("minimize", "maximize"):
            raise ValueError(f"direction must be 'minimize' or 'maximize', but got {direction!r}.")
        if metric == "loss":
            return "loss", None, direction or "minimize"
        if metric == "accuracy":
            return "accuracy", accuracy, direction or "maximize"
        if isinstance(metric, str) or not callable(metric):
            raise ValueError(
                f"metric must be 'loss', 'accuracy' or a callable(output, target) -> float, "
                f"but got {metric!r}."
            )
        if direction is None:
            raise ValueError(
                "direction is required with a callable metric: 'minimize' or 'maximize'."
            )
        return getattr(metric, "__name__", "metric"), metric, direction

    # -- properties ------------------------------------------------------------------------------
    @property
    def supernet(self) -> Supernet:
        return self._supernet

    @property
    def space(self) -> Any:
        return self._space

    @property
    def direction(self) -> Direction:
        """Create the study with ``direction=evaluator.direction``."""
        return self._direction

    @property
    def metric(self) -> str:
        return self._metric_name

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self._optimizer

    @property
    def n_calls(self) -> int:
        return self._n_calls

    @property
    def n_steps(self) -> int:
        """Shared-weight steps taken (skipped non-finite steps excluded)."""
        return self._n_steps

    # -- the objective ---------------------------------------------------------------------------
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

    def _run(self, trial: BaseTrial, arch: Architecture) -> float:
        self._warm_up()
        if self._plan.schedule == "two_stage":
            self._pretrain()
            trial.set_user_attr(PHASE_KEY, "score")
            value = self._frozen_cache.get(arch)
            if value is None:
                value = self.evaluate(arch)
                self._frozen_cache[arch] = value
            return self._report(trial, value, 0)
        phase = self._plan.phase(self._phase_pos)
        if phase == "train":
            trial.set_user_attr(PHASE_KEY, "train")
            for _ in range(self._take_credit()):
                self._shared_step(arch)
            raise optuna.TrialPruned("training phase: scored by no one, learned from by no one.")
        if phase == "score":
            trial.set_user_attr(PHASE_KEY, "score")
            return self._report(trial, self.evaluate(arch), 0)
        n = self._take_credit()
        value = WORST[self._direction]
        for k in range(max(n, 1)):
            if k < n:
                self._shared_step(arch)
            value = self._report(trial, self.evaluate(arch), k)
        return value

    def _report(self, trial: BaseTrial, value: float, step: int) -> float:
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} with {self.metric} {value:.6g}.")
        return value

    def _take_credit(self) -> int:
        self._credit += self._n_train_steps
        n = int(self._credit)
        self._credit -= n
        return n

    def _warm_up(self) -> None:
        if self._warmed_up:
            return
        for _ in range(self._warmup_steps):
            self.train_step([self._space.sample_uniform(self._rng)])
        self._warmed_up = True

    def _pretrain(self) -> None:
        while self._pretrained < self._pretrain_steps:
            self._shared_step(None)
            self._pretrained += 1
            if self._checkpoint_path is not None and (
                self._pretrained % self._checkpoint_every == 0
            ):
                self.save(self._checkpoint_path)

    def pretrain(self) -> None:
        """Take the rest of the ``pretrain_steps`` now (``"two_stage"``; the first call does
        it by itself)."""
        with self._lock:
            self._warm_up()
            if self._plan.schedule == "two_stage":
                self._pretrain()

    def _shared_step(self, arch: Architecture | None) -> float:
        return self.train_step(self._paths.paths(arch, self._rng))

    # -- training and scoring --------------------------------------------------------------------
    def _inputs(self, batch: Batch) -> tuple[tuple[Any, ...], Any]:
        x, y = self._batch_fn(batch)
        x, y = to_device(x, self._device), to_device(y, self._device)
        return (x if isinstance(x, tuple) else (x,)), y

    def train_step(self, archs: list[Architecture] | Architecture) -> float:
        """One optimizer step on the next training batch, gradients of the paths ``archs``
        accumulated (their mean loss; FairNAS, Chu et al. 2021, Alg. 1). Returns the mean
        loss; a non-finite loss on any path skips the whole step."""
        paths = [archs] if isinstance(archs, Architecture) else list(archs)
        if not paths:
            raise ValueError("archs must hold at least one architecture.")
        args, y = self._inputs(self._train.next())
        net = self._supernet
        net.train()
        self._optimizer.zero_grad(set_to_none=True)  # unused candidates get no update
        total = 0.0
        for arch in paths:
            net.activate(arch)
            loss = self._loss_fn(net(*args), y)
            value = float(loss.detach())
            if not math.isfinite(value):
                self._n_skipped += 1
                self._optimizer.zero_grad(set_to_none=True)
                return value
            (loss / len(paths)).backward()
            total += value
        if math.isfinite(self._grad_clip):
            nn.utils.clip_grad_norm_(net.parameters(), self._grad_clip)
        self._optimizer.step()
        self._n_steps += 1
        return total / len(paths)

    def evaluate(
        self, arch: Architecture | Mapping[str, Any], n_batches: int | None = None
    ) -> float:
        """The metric of ``arch`` on the next ``n_batches`` validation batches (default
        ``n_eval_batches``), on the current weights, in eval mode; no side effect on the
        weights (batch-norm statistics are put back after a recalibration)."""
        n = self._n_eval_batches if n_batches is None else check_int("n_batches", n_batches)
        arch = self._supernet.activate(arch)
        return self._score(arch, (self._valid.next() for _ in range(n)))

    def evaluate_many(
        self, archs: Iterable[Architecture | Mapping[str, Any]], n_batches: int | None = None
    ) -> list[float]:
        """Score several architectures on the SAME validation batches (frozen weights).

        The batches are read from the validation loader once and kept for every architecture
        (a DataLoader's loading and augmentation run once, not once per architecture)."""
        n = self._n_eval_batches if n_batches is None else check_int("n_batches", n_batches)
        checked = [self._supernet.activate(a) for a in archs]  # bad input fails before reading
        batches = [self._valid.next() for _ in range(n)] if checked else []
        return [self._score(arch, iter(batches)) for arch in checked]

    def _score(self, arch: Architecture, batches: Iterator[Batch]) -> float:
        """The metric of ``arch`` over ``batches`` (size-weighted mean); the worst value when
        the metric fails or is not finite. The supernet is back in train mode afterwards."""
        net = self._supernet
        net.activate(arch)
        with self._recalibrated(arch):
            net.eval()
            try:
                total, weight = 0.0, 0
                with torch.no_grad():
                    for batch in batches:
                        args, y = self._inputs(batch)
                        out = net(*args)
                        try:
                            if self._metric_fn is None:
                                v = float(self._loss_fn(out, y))
                            else:
                                v = float(self._metric_fn(out, y))
                        except Exception as e:  # a metric that fails on this output
                            optuna.logging.get_logger(__name__).warning(
                                f"the metric failed ({type(e).__name__}: {e}); worst value used."
                            )
                            return WORST[self._direction]
                        if not math.isfinite(v):
                            return WORST[self._direction]
                        size = batch_size_of(y)
                        total += v * size
                        weight += size
            finally:
                net.train()
        return total / max(weight, 1)

    @contextmanager
    def _recalibrated(self, arch: Architecture) -> Iterator[None]:
        bns = [
            m for m in self._supernet.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]
        if self._bn_batches == 0 or not bns:
            yield
            return
        saved = [
            (m.momentum, {k: v.clone() for k, v in m.named_buffers(recurse=False)}) for m in bns
        ]
        try:
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the recalibration batches
            self._supernet.train()
            with torch.no_grad():
                for _ in range(self._bn_batches):
                    args, _y = self._inputs(self._train.next())
                    self._supernet(*args)
            yield
        finally:
            for m, (momentum, buffers) in zip(bns, saved, strict=True):
                m.momentum = momentum
                for k, v in buffers.items():
                    getattr(m, k).copy_(v)

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": _KIND,
            "space": self._space.to_dict(),
            "supernet": self._supernet.state_dict(),
            "optimizer": self._optimizer.state_dict(),
            "rng": self._rng.bit_generator.state,
            "train": self._train.state(),
            "valid": self._valid.state(),
            "counters": {
                "n_calls": self._n_calls,
                "n_steps": self._n_steps,
                "n_skipped": self._n_skipped,
                "credit": self._credit,
                "phase_pos": self._phase_pos,
                "warmed_up": self._warmed_up,
                "pretrained": self._pretrained,
            },
            "frozen_cache": [[a.to_json(), v] for a, v in self._frozen_cache.items()],
        }

    def save(self, path: str | Path | None = None) -> Path:
        dest = path if path is not None else self._checkpoint_path
        if dest is None:
            raise ValueError("path is required: this evaluator has no checkpoint_path.")
        return save_checkpoint(self.state_dict(), dest)

    def load(self, path: str | Path) -> None:
        state = load_checkpoint(path)
        if state.get("kind") != _KIND:
            raise ValueError(
                f"path={str(path)!r} is a {state.get('kind')!r} checkpoint, not a {_KIND} one."
            )
        if state.get("space") != self._space.to_dict():
            raise ValueError(
                f"path={str(path)!r} holds another search space than this supernet's "
                "(labels or choices differ)."
            )
        try:
            self._supernet.load_state_dict(state["supernet"])
        except RuntimeError as e:
            raise ValueError(f"path={str(path)!r}: the supernet's weights do not fit: {e}") from e
        self._optimizer.load_state_dict(state["optimizer"])
        self._rng.bit_generator.state = state["rng"]
        self._train.restore(state["train"])
        self._valid.restore(state["valid"])
        c = state["counters"]
        self._n_calls = int(c["n_calls"])
        self._n_steps = int(c["n_steps"])
        self._n_skipped = int(c["n_skipped"])
        self._credit = float(c["credit"])
        self._phase_pos = int(c["phase_pos"])
        self._warmed_up = bool(c["warmed_up"])
        self._pretrained = int(c["pretrained"])
        self._frozen_cache = {
            Architecture.from_json(a): float(v) for a, v in state["frozen_cache"]
        }


def objective_over(
    supernet: Supernet,
    train_data: Iterable[Batch],
    valid_data: Iterable[Batch],
    **kwargs: Any,
) -> ModelEvaluator:
    """``ModelEvaluator(supernet, train_data, valid_data, **kwargs)``: the Optuna objective.

    Example:

        .. code-block:: python

            supernet = Supernet(MyNet())
            objective = objective_over(supernet, train_loader, valid_loader, metric="accuracy")
            study = optuna.create_study(
                sampler=ENASSampler(supernet.space), direction=objective.direction
            )
            study.optimize(objective, n_trials=200)
            model = supernet.export(study.best_params)
    """
    return ModelEvaluator(supernet, train_data, valid_data, **kwargs)
