"""The trainer: a supernet, its SGD optimizer and a task, and training one child from scratch.

:meth:`TrainingSetup.from_config` resolves the training settings that both evaluators and
``retrain`` take (a :class:`~optuna_enas.TrainingConfig`), once, into a
:class:`TrainingSetup`; :class:`Trainer` holds the state they share;
:func:`train_from_scratch` is the standalone (NAS-RL) training of one architecture.

Randomness: weights are initialised from a ``torch.Generator`` seeded by the caller; dropout
masks come from the trainer's own generator, reseeded for every step from the caller's NumPy
generator (whose state checkpoints store). Torch's global RNG is never touched.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from optuna_enas.data._corpus import DEFAULT_BATCH_SIZE
from optuna_enas.data._corpus import DEFAULT_BPTT
from optuna_enas.data._corpus import Corpus
from optuna_enas.data._images import ImageData
from optuna_enas.spaces._enas import MacroSpace
from optuna_enas.spaces._enas import MicroSpace
from optuna_enas.spaces._enas import RNNCellSpace
from optuna_enas.spaces._kinds import SpaceKind
from optuna_enas.spaces._kinds import kind_of
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.supernet import MacroSupernet
from optuna_enas.supernet import MicroSupernet
from optuna_enas.supernet import RNNSupernet
from optuna_enas.training._config import TrainingConfig
from optuna_enas.training._optim import OptimConfig
from optuna_enas.training._tasks import LMTask
from optuna_enas.training._tasks import Split
from optuna_enas.training._tasks import Task
from optuna_enas.training._tasks import default_data
from optuna_enas.training._tasks import make_task
from optuna_enas.training._tasks import steps_per_epoch


_logger = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device that exists here; ``None``: CUDA when available."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must name a torch device, but got {device!r}.") from e
    if resolved.type == "cuda" and (
        not torch.cuda.is_available() or (resolved.index or 0) >= torch.cuda.device_count()
    ):
        raise ValueError(
            f"device={device!r} is not available: torch sees {torch.cuda.device_count()} CUDA "
            "devices."
        )
    return resolved


@dataclass(frozen=True)
class TrainingSetup:
    """A :class:`TrainingConfig` resolved for one space and its data: the defaults filled in,
    the device checked. What the evaluators and ``retrain`` train with."""

    space: SearchSpace
    kind: SpaceKind
    data: Corpus | ImageData
    supernet_kwargs: dict[str, Any]
    batch_size: int
    bptt: int
    optim: OptimConfig
    device: torch.device

    @classmethod
    def from_config(
        cls, space: SearchSpace, data: Corpus | ImageData | None, training: TrainingConfig
    ) -> TrainingSetup:
        """Resolve ``training`` for ``space``: ``None`` fields take the ENAS defaults (batch
        size :data:`DEFAULT_BATCH_SIZE`, BPTT :data:`DEFAULT_BPTT`, the optimizer of the space's
        kind, :data:`~optuna_enas.training._optim.DEFAULTS`); ``data`` ``None``: the default
        data of the space."""
        if not isinstance(training, TrainingConfig):
            raise ValueError(f"training must be a TrainingConfig, but got {training!r}.")
        kind = kind_of(space)
        return cls(
            space=space,
            kind=kind,
            data=default_data(space, data),
            supernet_kwargs=dict(training.supernet_kwargs),
            batch_size=DEFAULT_BATCH_SIZE if training.batch_size is None else training.batch_size,
            bptt=DEFAULT_BPTT if training.bptt is None else training.bptt,
            optim=OptimConfig.for_kind(
                kind.name,
                lr=training.lr,
                grad_clip=training.grad_clip,
                momentum=training.momentum,
                weight_decay=training.weight_decay,
            ),
            device=resolve_device(training.device),
        )

    @property
    def training(self) -> TrainingConfig:
        """The resolved settings as a :class:`TrainingConfig` with every field set (the device
        too), so that another trainer given it trains exactly as this one."""
        return TrainingConfig(
            supernet_kwargs=self.supernet_kwargs,
            batch_size=self.batch_size,
            bptt=self.bptt,
            device=str(self.device),
            **self.optim.as_dict(),
        )


def resolve_training(
    space: SearchSpace,
    data: Corpus | ImageData | None,
    *,
    supernet_kwargs: Mapping[str, Any] | None,
    batch_size: int | None,
    bptt: int | None,
    lr: float | None,
    grad_clip: float | None,
    momentum: float | None,
    weight_decay: float | None,
    device: str | torch.device | None,
) -> TrainingSetup:
    """:meth:`TrainingSetup.from_config` of the flat training keywords (``None``: default)."""
    training = TrainingConfig(
        supernet_kwargs=supernet_kwargs or {},
        batch_size=batch_size,
        bptt=bptt,
        lr=lr,
        grad_clip=grad_clip,
        momentum=momentum,
        weight_decay=weight_decay,
        device=_device_name(device),
    )
    return TrainingSetup.from_config(space, data, training)


def _device_name(device: str | torch.device | None) -> str | None:
    return device if device is None or isinstance(device, str) else str(device)


def sized_for_data(kwargs: Mapping[str, Any], data: Corpus | ImageData) -> dict[str, Any]:
    """``kwargs`` with the sizes ``data`` fixes (vocabulary; image channels and classes) added.

    Raises:
        ValueError: a size in ``kwargs`` disagrees with ``data``.
    """
    kw = dict(kwargs)
    derived: dict[str, Any]
    if isinstance(data, Corpus):
        derived = {"vocab_size": data.vocab_size}
    else:
        derived = {"in_channels": data.in_channels, "n_classes": data.n_classes}
    for key, value in derived.items():
        if kw.setdefault(key, value) != value:
            raise ValueError(
                f"supernet_kwargs[{key!r}]={kw[key]!r} disagrees with the data ({value!r})."
            )
    return kw


def build_supernet(
    space: SearchSpace,
    data: Corpus | ImageData,
    kwargs: Mapping[str, Any],
    generator: torch.Generator,
) -> nn.Module:
    """The supernet of ``space`` sized for ``data``, initialised from ``generator``."""
    kw = sized_for_data(kwargs, data)
    if isinstance(space, RNNCellSpace):
        return RNNSupernet(space, generator=generator, **kw)
    if isinstance(space, MacroSpace):
        return MacroSupernet(space, generator=generator, **kw)
    assert isinstance(space, MicroSpace)  # kind_of checked it.
    return MicroSupernet(space, generator=generator, **kw)


class Trainer:
    """A supernet, its SGD optimizer and a task: the state both evaluators share."""

    def __init__(self, setup: TrainingSetup, *, init_seed: int) -> None:
        generator = torch.Generator().manual_seed(init_seed)
        model = build_supernet(setup.space, setup.data, setup.supernet_kwargs, generator)
        self.model = model.to(setup.device)
        optim = setup.optim
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=optim.lr,
            momentum=optim.momentum,
            nesterov=optim.momentum > 0,
            weight_decay=optim.weight_decay,
        )
        self.task: Task = make_task(
            setup.data, batch_size=setup.batch_size, bptt=setup.bptt, device=setup.device
        )
        self.grad_clip = optim.grad_clip
        self.device = setup.device
        # Dropout masks (RNN supernet) draw from this generator, never from torch's global one.
        self.dropout_generator = torch.Generator(device=setup.device)
        if isinstance(self.model, RNNSupernet):
            self.model.dropout_generator = self.dropout_generator
        self.n_skipped = 0

    def set_optim(self, optim: OptimConfig) -> None:
        """Change the learning rate, momentum and weight decay (e.g. after a resume)."""
        for group in self.optimizer.param_groups:
            group.update(
                lr=optim.lr,
                momentum=optim.momentum,
                nesterov=optim.momentum > 0,
                weight_decay=optim.weight_decay,
            )
        self.grad_clip = optim.grad_clip

    def step(self, arch: Architecture, rng: np.random.Generator) -> float:
        """One SGD step on the next training minibatch; returns the loss."""
        self.model.train()
        self.dropout_generator.manual_seed(int(rng.integers(2**31 - 1)))
        loss = self.task.train_loss(self.model, arch, rng)
        value = float(loss.detach())
        if not math.isfinite(value):
            # A diverging architecture must not poison the weights the others share.
            self.n_skipped += 1
            self.task.reset_hidden()
            _logger.warning(f"Skipped a shared-weight step: the loss is {value}.")
            return value
        self.optimizer.zero_grad(set_to_none=True)  # unused ops get no update at all
        loss.backward()
        if math.isfinite(self.grad_clip):
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return value

    def step_paths(self, archs: Sequence[Architecture], rng: np.random.Generator) -> float:
        """One SGD step on the gradients of several paths on the SAME minibatch; the mean loss.

        Each path's loss is divided by ``len(archs)`` and back-propagated in turn, so the step
        follows the mean loss (FairNAS, Chu et al. 2021, Alg. 1: the gradients of the ``m``
        paths are accumulated, then one update). Every path starts from the same carried hidden
        state (RNN); the state carried on is the last path's. One path is exactly :meth:`step`
        (bitwise). A non-finite loss on any path skips the whole step, so that no candidate
        gets an update its peers did not.
        """
        if len(archs) == 0:
            raise ValueError("archs must hold at least one architecture.")
        if len(archs) == 1:
            return self.step(archs[0], rng)
        self.model.train()
        task = self.task
        start, hidden_in = self._batch_start()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for k, arch in enumerate(archs):
            if k > 0:  # the same minibatch again (and, for an RNN, the same incoming state)
                task.pos = start
                if isinstance(task, LMTask):
                    task.hidden = hidden_in
            self.dropout_generator.manual_seed(int(rng.integers(2**31 - 1)))
            loss = task.train_loss(self.model, arch, rng)
            value = float(loss.detach())
            if not math.isfinite(value):
                self.n_skipped += 1
                self.optimizer.zero_grad(set_to_none=True)
                task.reset_hidden()
                _logger.warning(f"Skipped a shared-weight step: the loss of a path is {value}.")
                return value
            (loss / len(archs)).backward()
            total += value
        if math.isfinite(self.grad_clip):
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return total / len(archs)

    def _batch_start(self) -> tuple[int, torch.Tensor | None]:
        """Where the next training minibatch starts, and the hidden state it will start from."""
        task = self.task
        if isinstance(task, LMTask):
            if task.pos >= task.train.size(0) - 1:  # train_loss starts a new epoch
                return 0, None
            return task.pos, task.hidden
        n = task.y.numel()
        if task.perm is None or task.pos + task.batch_size > n:
            return 0, None
        return task.pos, None

    def evaluate_next(self, arch: Architecture, n_batches: int) -> float:
        """Score ``arch`` on the next ``n_batches`` validation minibatches (rotating)."""
        self.model.eval()
        with torch.no_grad():
            return self.task.evaluate_next(self.model, arch, n_batches)

    def evaluate(self, arch: Architecture, split: Split, full: bool, n_batches: int) -> float:
        """Score ``arch`` on ``split`` (whole, or its first ``n_batches`` minibatches)."""
        self.model.eval()
        with torch.no_grad():
            return self.task.evaluate(self.model, arch, split, full, n_batches)


def train_from_scratch(
    setup: TrainingSetup,
    arch: Architecture,
    *,
    n_epochs: int,
    n_steps_per_epoch: int | None,
    seed: int,
    callback: Callable[[int, float], None] | None = None,
) -> tuple[nn.Module, list[float], Callable[[Split], float]]:
    """Train ``arch`` alone in a fresh supernet; score the full validation set every epoch.

    ``callback(epoch, value)`` runs after each epoch's evaluation (it may raise to stop).
    Returns the model, the per-epoch validation values, and ``score(split)`` (full split).
    """
    rng = np.random.default_rng(seed)
    trainer = Trainer(setup, init_seed=int(rng.integers(2**31 - 1)))
    n_steps = n_steps_per_epoch or steps_per_epoch(trainer.task)
    history: list[float] = []
    for epoch in range(n_epochs):
        for _ in range(n_steps):
            trainer.step(arch, rng)
        value = trainer.evaluate(arch, "valid", True, 1)
        history.append(value)
        if callback is not None:
            callback(epoch, value)

    def score(split: Split) -> float:
        return trainer.evaluate(arch, split, True, 1)

    return trainer.model, history, score


__all__ = [
    "Trainer",
    "TrainingSetup",
    "build_supernet",
    "resolve_device",
    "resolve_training",
    "train_from_scratch",
]
