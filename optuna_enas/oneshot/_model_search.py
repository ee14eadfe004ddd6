"""DARTS and DSO-NAS on your own model: the one-shot searchers of a :class:`Supernet`.

:class:`ModelDARTS` and :class:`ModelDSONAS` take the same declaration as the sampler-driven
search (:class:`~optuna_enas.ModelEvaluator`): the :class:`~optuna_enas.nn.Supernet`, your
training and validation batches, loss, metric and weight optimizer. They relax the supernet's
choice modules (:mod:`optuna_enas.oneshot._choice_relax`), alternate weight steps and
architecture steps on the mixed forward, and after every epoch

1. score the relaxed (mixed) supernet on validation batches (the ``relaxed_value`` attr);
2. derive the discrete architecture and score it **exactly**: ``supernet.activate(derived)``
   and :meth:`ModelEvaluator.evaluate` with your metric, so the value is what the
   sampler-driven objective would report for that architecture on the current weights and
   ``supernet.export(derived)`` computes it in eval mode;
3. record it in the Optuna study as a COMPLETE trial
   (:func:`~optuna_enas.oneshot._record.record_epoch`: the space's distributions, the method
   in the ``enas:method`` system attr, arch tables and summaries as user attrs), so
   ``study.best_params``, the dashboard and the comparison plots treat it like any trial.

The shared weights train with the weight optimizer held by that
:class:`~optuna_enas.ModelEvaluator` (:attr:`evaluator`). The architecture steps read their
own batches: ``arch_data`` if given, otherwise the next batch of ``train_data`` (the two
steps take alternate batches of one stream: for a shuffled loader a random half each, DARTS's
``--train_portion 0.5``), so the validation batches that score the trials stay unseen by
the search.

Checkpoints (``checkpoint_path``, ``resume_from``) hold the weights, the architecture
parameters, both optimisers and every stream position, so a resumed search continues exactly.
Not done here (the built-in :class:`~optuna_enas.oneshot.DARTS` / ``DSONAS`` have them): data
parallelism, DSO-NAS's FLOPs-adaptive penalty (a user model has no FLOPs table: the penalty is
the plain L1).

SPOS / RS-WS on the same declaration needs no searcher: ``ModelEvaluator(supernet, train,
valid, schedule="two_stage", train_paths="uniform", pretrain_steps=N)`` trains the supernet on
uniformly sampled paths, then every trial (any sampler) scores its architecture on the frozen
weights (Guo et al. 2020; Li and Talwalkar 2019).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import optuna
import torch
from torch import nn

from optuna_enas._validation import check_fraction
from optuna_enas._validation import check_int
from optuna_enas._validation import check_non_negative
from optuna_enas._validation import check_positive
from optuna_enas._validation import check_seed
from optuna_enas._validation import fresh_seed
from optuna_enas.nn._supernet import Supernet
from optuna_enas.oneshot._apg import APG
from optuna_enas.oneshot._apg import l1_penalty
from optuna_enas.oneshot._choice_relax import DARTS_INIT_STD
from optuna_enas.oneshot._choice_relax import DSONAS_INIT
from optuna_enas.oneshot._choice_relax import ChoiceRelaxation
from optuna_enas.oneshot._choice_relax import DARTSRelaxation
from optuna_enas.oneshot._choice_relax import DSONASRelaxation
from optuna_enas.oneshot._collapse import CollapseMonitor
from optuna_enas.oneshot._darts import DARTS_CNN
from optuna_enas.oneshot._darts import FINITE_DIFFERENCE_R
from optuna_enas.oneshot._darts import cosine_lr
from optuna_enas.oneshot._darts import darts_hypergradient
from optuna_enas.oneshot._dsonas import DSONAS_CNN
from optuna_enas.oneshot._record import TABLES_KEY
from optuna_enas.oneshot._record import compact_json
from optuna_enas.oneshot._record import record_epoch
from optuna_enas.oneshot._searcher import EpochRecord
from optuna_enas.oneshot._searcher import SearchResult
from optuna_enas.oneshot._searcher import grads_of
from optuna_enas.spaces._kinds import Direction
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.training._checkpoint import load_checkpoint
from optuna_enas.training._checkpoint import save_checkpoint
from optuna_enas.training._model_evaluator import WORST
from optuna_enas.training._model_evaluator import Batch
from optuna_enas.training._model_evaluator import BatchStream
from optuna_enas.training._model_evaluator import LossFn
from optuna_enas.training._model_evaluator import MetricFn
from optuna_enas.training._model_evaluator import ModelEvaluator
from optuna_enas.training._model_evaluator import OptimizerFactory
from optuna_enas.training._model_evaluator import batch_size_of
from optuna_enas.training._model_evaluator import split_batch
from optuna_enas.training._model_evaluator import to_device


if TYPE_CHECKING:
    from optuna_enas.dashboard._callback import DashboardCallback


_logger = logging.getLogger(__name__)
_KIND = "ModelOneShot"  # checkpoint format tag


class _ModelOneShot:
    """The loop :class:`ModelDARTS` and :class:`ModelDSONAS` share (not used directly)."""

    method: str = "oneshot"

    def __init__(
        self,
        supernet: Supernet,
        train_data: Iterable[Batch],
        valid_data: Iterable[Batch],
        *,
        arch_data: Iterable[Batch] | None,
        loss_fn: LossFn | None,
        metric: str | MetricFn,
        direction: Direction | None,
        optimizer: OptimizerFactory,
        batch_fn: Callable[[Batch], tuple[Any, Any]] | None,
        grad_clip: float,
        grad_clip_value: float | None,
        n_eval_batches: int,
        bn_recalibration_batches: int,
        epochs: int,
        collapse_threshold: float | None,
        early_stop: bool,
        device: str | torch.device | None,
        seed: int | None,
        checkpoint_path: str | Path | None,
        dashboard: DashboardCallback | None,
    ) -> None:
        self.evaluator = ModelEvaluator(
            supernet,
            train_data,
            valid_data,
            loss_fn=loss_fn,
            metric=metric,
            direction=direction,
            optimizer=optimizer,
            batch_fn=batch_fn,
            n_eval_batches=n_eval_batches,
            bn_recalibration_batches=bn_recalibration_batches,
            device=device,
        )
        self.supernet = supernet
        self.space = supernet.space
        self.train_data = train_data
        self._loss_fn: LossFn = loss_fn if loss_fn is not None else nn.functional.cross_entropy
        _, self._metric_fn, _ = ModelEvaluator._resolve_metric(metric, direction)
        self._batch_fn = batch_fn if batch_fn is not None else split_batch
        self._train = BatchStream("train_data", train_data)
        self._arch_stream = (
            BatchStream("arch_data", arch_data) if arch_data is not None else self._train
        )
        self._separate_arch_data = arch_data is not None
        self._valid = BatchStream("valid_data", valid_data)
        self.n_eval_batches = check_int("n_eval_batches", n_eval_batches, 1, 10**6)
        self.grad_clip = check_positive("grad_clip", grad_clip, allow_inf=True)
        self.grad_clip_value = (
            None if grad_clip_value is None else check_positive("grad_clip_value", grad_clip_value)
        )
        self.default_epochs = check_int("epochs", epochs)
        self.collapse = (
            None
            if collapse_threshold is None
            else CollapseMonitor(collapse_threshold, early_stop=early_stop)
        )
        if early_stop and collapse_threshold is None:
            raise ValueError("early_stop=True needs a collapse_threshold.")
        self.dashboard = dashboard
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        seed = check_seed("seed", seed)
        self.seed = seed
        self._rng = np.random.default_rng(fresh_seed() if seed is None else seed)
        self.device = next((p.device for p in supernet.parameters()), torch.device("cpu"))
        self.weight_optimizer = self.evaluator.optimizer
        for group in self.weight_optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.weights: list[nn.Parameter] = [  # frozen parameters left out
            p for g in self.weight_optimizer.param_groups for p in g["params"] if p.requires_grad
        ]
        self.relaxation: ChoiceRelaxation  # set by the subclass
        self.epoch = 0
        self.n_weight_steps = 0
        self.n_skipped = 0
        self.history: list[EpochRecord] = []
        self._plan: tuple[int, int] | None = None

    # -- to implement ----------------------------------------------------------------------------
    def _train_step(self, epoch: int, n_epochs: int) -> None:
        raise NotImplementedError

    def _end_of_epoch(self, epoch: int) -> None:
        """After an epoch's steps, before it is scored (DSO-NAS prunes here)."""

    def _phase(self) -> str:
        return "search"

    def _summary_extra(self) -> dict[str, float]:
        return {}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers by name (their ``state_dict`` goes into checkpoints)."""
        raise NotImplementedError

    # -- pieces ----------------------------------------------------------------------------------
    @property
    def arch(self) -> list[nn.Parameter]:
        """The architecture parameters (``alpha`` / ``lambda``), one per decision."""
        return self.relaxation.arch_parameters()

    @property
    def direction(self) -> Direction:
        """Create the study with ``direction=searcher.direction``."""
        return self.evaluator.direction

    def _inputs(self, batch: Batch) -> tuple[tuple[Any, ...], Any]:
        x, y = self._batch_fn(batch)
        x, y = to_device(x, self.device), to_device(y, self.device)
        return (x if isinstance(x, tuple) else (x,)), y

    def _mixed_loss(self, batch: Batch) -> torch.Tensor:
        """The loss of the mixed supernet (train mode) on ``batch``."""
        args, y = self._inputs(batch)
        self.supernet.train()
        self.relaxation.mix()
        return self._loss_fn(self.supernet(*args), y)

    def _finite(self, loss: torch.Tensor) -> bool:
        value = float(loss.detach())
        if math.isfinite(value):
            return True
        self.n_skipped += 1
        _logger.warning(f"Skipped a one-shot step: the loss is {value}.")
        return False

    def _clip(self, grads: Sequence[torch.Tensor], *, norm: bool) -> None:
        if self.grad_clip_value is not None:
            for g in grads:
                g.clamp_(-self.grad_clip_value, self.grad_clip_value)
        if norm and math.isfinite(self.grad_clip) and grads:
            total = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
            coef = self.grad_clip / (total + 1e-6)
            if coef < 1.0:
                for g in grads:
                    g.mul_(coef)

    def _weight_step(self, loss: torch.Tensor) -> None:
        """An optimizer step of the shared weights on ``loss`` (gradients clipped)."""
        grads = grads_of(loss, self.weights)
        self._clip(grads, norm=True)
        self.weight_optimizer.zero_grad(set_to_none=True)
        for p, g in zip(self.weights, grads, strict=True):
            p.grad = g.detach()
        self.weight_optimizer.step()
        self.weight_optimizer.zero_grad(set_to_none=True)

    # -- scoring ---------------------------------------------------------------------------------
    def relaxed_score(self, n_batches: int | None = None) -> float:
        """The metric of the mixed supernet on the next validation batches (eval mode)."""
        n = self.n_eval_batches if n_batches is None else check_int("n_batches", n_batches)
        net = self.supernet
        net.eval()
        total, weight = 0.0, 0
        try:
            with torch.no_grad():
                self.relaxation.mix()
                for _ in range(n):
                    args, y = self._inputs(self._valid.next())
                    out = net(*args)
                    fn = self._metric_fn
                    v = float(self._loss_fn(out, y)) if fn is None else float(fn(out, y))
                    if not math.isfinite(v):
                        return WORST[self.direction]
                    total += v * batch_size_of(y)
                    weight += batch_size_of(y)
        finally:
            net.train()
        return total / max(weight, 1)

    def score(self, arch: Architecture | dict[str, Any], n_batches: int | None = None) -> float:
        """``arch``'s metric on the current weights, discretely (``supernet.activate(arch)``):
        :meth:`ModelEvaluator.evaluate` of :attr:`evaluator`; each epoch's trial value."""
        return self.evaluator.evaluate(arch, n_batches)

    def _score_epoch(self, epoch: int) -> EpochRecord:
        relaxed = self.relaxed_score()
        arch = self.relaxation.derive()
        summary = {**self.relaxation.arch_summary(), **self._summary_extra()}
        return EpochRecord(
            epoch=epoch,
            n_weight_steps=self.n_weight_steps,
            architecture=arch,
            value=self.score(arch),
            relaxed_value=relaxed,
            summary=summary,
            tables=self.relaxation.arch_tables(),
            phase=self._phase(),
        )

    def _user_attrs(self, record: EpochRecord) -> dict[str, Any]:
        return {
            "epoch": record.epoch,
            "weight_steps": record.n_weight_steps,
            "phase": record.phase,
            "metric": self.evaluator.metric,
            "relaxed_value": record.relaxed_value,
            TABLES_KEY: compact_json(record.tables),
            **record.summary,
        }

    # -- the search ------------------------------------------------------------------------------
    def _default_steps_per_epoch(self) -> int:
        try:
            n = len(self.train_data)  # type: ignore[arg-type]
        except TypeError:
            raise ValueError("steps_per_epoch is required when train_data has no len().") from None
        return max(1, n if self._separate_arch_data else n // 2)

    def search(
        self,
        study: optuna.Study | None,
        *,
        n_steps: int | None = None,
        steps_per_epoch: int | None = None,
        callbacks: Sequence[Callable[[Any, EpochRecord], None]] = (),
    ) -> SearchResult:
        """Run to ``n_steps`` weight steps in all, recording one trial per epoch.

        Args:
            study: Where the epochs are recorded (a single-objective study of
                :attr:`direction`); ``None`` records nothing.
            n_steps: Weight steps in all (earlier :meth:`search` calls included). ``None``:
                ``epochs`` (the constructor's) times ``steps_per_epoch``.
            steps_per_epoch: Weight steps per epoch (one trial each). ``None``: one pass over
                the batches the weight steps take (``len(train_data)``, half of it when the
                architecture steps share ``train_data``).
            callbacks: ``callback(searcher, record)`` after each epoch is recorded.

        Returns:
            A :class:`~optuna_enas.oneshot.SearchResult`: the last derived architecture (the
            last below the collapse threshold after an ``early_stop``), its value, the
            history.
        """
        if study is not None:
            names = [d.name.lower() for d in study.directions]
            if names != [self.direction]:
                raise ValueError(
                    f"study must be a single-objective study with direction "
                    f"{self.direction!r} (the {self.evaluator.metric!r} metric), but it has "
                    f"{names}."
                )
        spe = self._default_steps_per_epoch() if steps_per_epoch is None else steps_per_epoch
        spe = check_int("steps_per_epoch", spe, 1)
        total = check_int("n_steps", self.default_epochs * spe if n_steps is None else n_steps)
        if self._plan is not None and self._plan != (total, spe):
            raise ValueError(
                f"this searcher ran (or was resumed from) a search of n_steps={self._plan[0]} "
                f"and steps_per_epoch={self._plan[1]}; it must continue with the same (got "
                f"n_steps={total}, steps_per_epoch={spe})."
            )
        self._plan = (total, spe)
        n_epochs = math.ceil(total / spe)
        while self.n_weight_steps < total and not (self.collapse and self.collapse.should_stop):
            epoch = self.epoch
            for _ in range(min(spe, total - self.n_weight_steps)):
                self._train_step(epoch, n_epochs)
                self.n_weight_steps += 1
            self._end_of_epoch(epoch)
            record = self._score_epoch(epoch)
            if self.collapse is not None:
                self.collapse.update(epoch, record.summary["param_free_share"])
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
            if self.checkpoint_path is not None:
                self.save(self.checkpoint_path)
            for callback in callbacks:
                callback(self, record)
        return self.result()

    def result(self) -> SearchResult:
        """The :class:`~optuna_enas.oneshot.SearchResult` of the epochs run so far."""
        if not self.history:
            raise ValueError("the search has not finished an epoch yet.")
        chosen = self.history[-1]
        stopped = self.collapse is not None and self.collapse.should_stop
        if stopped and self.collapse is not None:
            below = [
                r
                for r in self.history
                if not r.summary["param_free_share"] > self.collapse.threshold
            ]
            chosen = below[-1] if below else chosen
        return SearchResult(
            architecture=chosen.architecture,
            value=chosen.value,
            history=list(self.history),
            stopped_early=stopped,
            n_weight_steps=self.n_weight_steps,
        )

    # -- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed search needs: weights, architecture parameters, optimisers,
        the positions of every batch stream, the generator, counters and history."""
        ev = self.evaluator
        return {
            "kind": _KIND,
            "method": self.method,
            "space": self.space.to_dict(),
            "supernet": self.supernet.state_dict(),
            "relaxation": self.relaxation.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self._optimizers().items()},
            "streams": {
                "train": self._train.state(),
                "arch": self._arch_stream.state() if self._separate_arch_data else None,
                "valid": self._valid.state(),
                "score_valid": ev._valid.state(),
                "score_train": ev._train.state(),
            },
            "rng": self._rng.bit_generator.state,
            "epoch": self.epoch,
            "n_weight_steps": self.n_weight_steps,
            "n_skipped": self.n_skipped,
            "plan": None if self._plan is None else list(self._plan),
            "collapse": None if self.collapse is None else self.collapse.state_dict(),
            "history": [r.to_state() for r in self.history],
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Atomically write :meth:`state_dict` to ``path`` (default ``checkpoint_path``);
        the search does it after every epoch when ``checkpoint_path`` is set."""
        dest = path if path is not None else self.checkpoint_path
        if dest is None:
            raise ValueError("path is required: this searcher has no checkpoint_path.")
        return save_checkpoint(self.state_dict(), dest)

    def load(self, path: str | Path) -> None:
        """Continue from a checkpoint of a searcher built the same way (same supernet
        declaration, loaders and arguments); :meth:`search` then goes on with the same
        ``n_steps`` and ``steps_per_epoch``, exactly where it stopped."""
        source = str(path)
        state = load_checkpoint(path)
        if state.get("kind") != _KIND or state.get("method") != self.method:
            raise ValueError(f"resume_from={source!r} is not a {self.method} searcher checkpoint.")
        if state["space"] != self.space.to_dict():
            raise ValueError(
                f"resume_from={source!r} holds another search space than this supernet's "
                "(labels or choices differ)."
            )
        try:
            self.supernet.load_state_dict(state["supernet"])
            self.relaxation.load_state_dict(state["relaxation"])
            for name, opt in self._optimizers().items():
                opt.load_state_dict(state["optimizers"][name])
        except (RuntimeError, ValueError, KeyError) as e:
            raise ValueError(f"resume_from={source!r} does not fit this searcher: {e}") from e
        streams = state["streams"]
        if (streams["arch"] is not None) != self._separate_arch_data:
            raise ValueError(
                f"resume_from={source!r} was saved with{'' if streams['arch'] else 'out'} "
                "arch_data; build the searcher the same way."
            )
        # The scorer's streams first: a loader's generator is shared by every stream over it,
        # and the search's own streams must leave it as they found it.
        for stream, key in (
            (self.evaluator._valid, "score_valid"),
            (self.evaluator._train, "score_train"),
        ):
            if (
                streams[key]["index"]
                or streams[key]["epoch"]
                or streams[key]["generator"] is not None
            ):
                stream.restore(streams[key])
        self._valid.restore(streams["valid"])
        if self._separate_arch_data:
            self._arch_stream.restore(streams["arch"])
        self._train.restore(streams["train"])
        self._rng.bit_generator.state = state["rng"]
        self.epoch = int(state["epoch"])
        self.n_weight_steps = int(state["n_weight_steps"])
        self.n_skipped = int(state["n_skipped"])
        plan = state["plan"]
        self._plan = None if plan is None else (int(plan[0]), int(plan[1]))
        if self.collapse is not None and state["collapse"] is not None:
            self.collapse.load_state_dict(state["collapse"])
        self.history = [EpochRecord.from_state(r) for r in state["history"]]

    def export(self, arch: Architecture | dict[str, Any] | None = None) -> nn.Module:
        """``supernet.export`` of ``arch`` (default: the relaxation's current derivation)."""
        return self.supernet.export(self.relaxation.derive() if arch is None else arch)


def _darts_optimizer(lr: float, momentum: float, weight_decay: float) -> OptimizerFactory:
    def factory(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    return factory


class ModelDARTS(_ModelOneShot):
    """DARTS (Liu et al., ICLR 2019) on your own model, one Optuna trial per epoch.

    Each weight step is preceded by an architecture step (Adam on ``alpha``), as the official
    ``cnn/train_search.py``: first order uses ``grad_alpha`` of the loss on an architecture
    batch (the paper's ``xi = 0``); ``order=2`` the unrolled hypergradient with the
    finite-difference Hessian-vector product
    (:func:`~optuna_enas.oneshot._darts.darts_hypergradient`; the unrolled step is SGD with the
    weight optimizer's lr, momentum buffer and weight decay, exact for the default SGD, an
    approximation for other optimizers). Defaults: the official CNN search
    (:data:`~optuna_enas.oneshot._darts.DARTS_CNN`).

    Example:

        .. code-block:: python

            supernet = Supernet(MyNet(), example_input=x[:2])
            darts = ModelDARTS(supernet, train_loader, valid_loader, metric="accuracy", seed=0)
            study = optuna.create_study(direction=darts.direction, storage="sqlite:///nas.db")
            result = darts.search(study, n_steps=2000, steps_per_epoch=100)
            model = supernet.export(result.architecture)  # plain torch

    Args:
        supernet: The :class:`~optuna_enas.nn.Supernet` of your model.
        train_data: Batches for the weight steps (a ``DataLoader``; cycled).
        valid_data: Batches that score each epoch's derived architecture (never trained on).
        arch_data: Batches for the architecture steps; ``None``: the next batch of
            ``train_data``.
        loss_fn, metric, direction, batch_fn, n_eval_batches, bn_recalibration_batches,
            device: As :class:`~optuna_enas.ModelEvaluator`.
        optimizer: ``optimizer(params)`` for the shared weights. ``None``: SGD with ``lr``,
            ``momentum``, ``weight_decay``.
        order: 1 (first-order approximation) or 2 (second order).
        lr: Weight learning rate of the default optimizer, 0.025 (``--learning_rate``).
        lr_min: Cosine annealing of every weight lr (the default optimizer's or yours) from
            its initial value to ``lr_min`` over the epochs, 0.001 (``--learning_rate_min``);
            ``None``: constant.
        momentum: 0.9 (``--momentum``). weight_decay: 3e-4 (``--weight_decay``).
        grad_clip: Global-norm clip of the weight gradients, 5 (``--grad_clip``).
        arch_lr: Adam lr of ``alpha``, 3e-4 (``--arch_learning_rate``).
        arch_betas: Adam betas, (0.5, 0.999) (``cnn/architect.py``).
        arch_weight_decay: 1e-3 (``--arch_weight_decay``).
        init_std: Initial ``alpha`` scale, 1e-3 (``model_search.py``).
        r: Finite-difference scale of the second order, 0.01 (``architect.py``).
        epochs: Default budget of :meth:`search` in epochs, 50 (``--epochs``).
        collapse_threshold: Warn (``CollapseWarning``) when the derived architecture's share
            of parameter-free LayerChoice candidates rises above it; ``None``: not tracked.
        early_stop: Stop at that crossing (DARTS+).
        seed: Seeds ``alpha``'s initialisation and the dropout masks of the second order.
        checkpoint_path: Where :meth:`save` writes the whole state after every epoch.
        resume_from: A checkpoint to continue from (the searcher built the same way);
            resume is exact when the loaders' order comes from their ``generator=`` (with
            ``bn_recalibration_batches > 0`` the scorer also draws from ``train_data``'s
            generator and the order of those draws is not replayed).
        example_input: Checks the mixed forward once
            (:class:`~optuna_enas.oneshot.DARTSRelaxation`).
        dashboard: Draws each recorded trial on the optuna-dashboard trial page.
    """

    method = "darts"

    def __init__(
        self,
        supernet: Supernet,
        train_data: Iterable[Batch],
        valid_data: Iterable[Batch],
        *,
        arch_data: Iterable[Batch] | None = None,
        loss_fn: LossFn | None = None,
        metric: str | MetricFn = "loss",
        direction: Direction | None = None,
        optimizer: OptimizerFactory | None = None,
        batch_fn: Callable[[Batch], tuple[Any, Any]] | None = None,
        order: int = 1,
        lr: float = DARTS_CNN.lr,
        lr_min: float | None = DARTS_CNN.lr_min,
        momentum: float = DARTS_CNN.momentum,
        weight_decay: float = DARTS_CNN.weight_decay,
        grad_clip: float = DARTS_CNN.grad_clip,
        arch_lr: float = DARTS_CNN.arch_lr,
        arch_betas: tuple[float, float] = DARTS_CNN.arch_betas,
        arch_weight_decay: float = DARTS_CNN.arch_weight_decay,
        init_std: float = DARTS_INIT_STD,
        r: float = FINITE_DIFFERENCE_R,
        epochs: int = DARTS_CNN.epochs,
        n_eval_batches: int = 1,
        bn_recalibration_batches: int = 0,
        collapse_threshold: float | None = None,
        early_stop: bool = False,
        device: str | torch.device | None = None,
        seed: int | None = None,
        checkpoint_path: str | Path | None = None,
        resume_from: str | Path | None = None,
        example_input: Any = None,
        dashboard: DashboardCallback | None = None,
    ) -> None:
        if isinstance(order, bool) or order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, but got {order!r}.")
        self.order = int(order)
        self.lr_min = None if lr_min is None else check_non_negative("lr_min", lr_min)
        self.r = check_positive("r", r)
        betas = arch_betas
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"arch_betas must be two floats in [0, 1), but got {betas!r}.")
        factory = optimizer
        if factory is None:
            factory = _darts_optimizer(
                check_positive("lr", lr),
                check_fraction("momentum", momentum),
                check_non_negative("weight_decay", weight_decay),
            )
        super().__init__(
            supernet,
            train_data,
            valid_data,
            arch_data=arch_data,
            loss_fn=loss_fn,
            metric=metric,
            direction=direction,
            optimizer=factory,
            batch_fn=batch_fn,
            grad_clip=grad_clip,
            grad_clip_value=None,
            n_eval_batches=n_eval_batches,
            bn_recalibration_batches=bn_recalibration_batches,
            epochs=epochs,
            collapse_threshold=collapse_threshold,
            early_stop=early_stop,
            device=device,
            seed=seed,
            checkpoint_path=checkpoint_path,
            dashboard=dashboard,
        )
        generator = torch.Generator().manual_seed(int(self._rng.integers(2**31 - 1)))
        self.relaxation = DARTSRelaxation(
            supernet, init_std=init_std, generator=generator, example_input=example_input
        )
        self.arch_optimizer = torch.optim.Adam(
            self.arch,
            lr=check_positive("arch_lr", arch_lr),
            betas=(check_fraction("arch_betas", betas[0]), check_fraction("arch_betas", betas[1])),
            weight_decay=check_non_negative("arch_weight_decay", arch_weight_decay),
        )
        if resume_from is not None:
            self.load(resume_from)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"weights": self.weight_optimizer, "arch": self.arch_optimizer}

    def _set_lr(self, epoch: int, n_epochs: int) -> None:
        if self.lr_min is None:
            return
        for group in self.weight_optimizer.param_groups:
            group["lr"] = cosine_lr(epoch, n_epochs, group["initial_lr"], self.lr_min)

    def _replayable(self, batch: Batch) -> Callable[[], torch.Tensor]:
        """The mixed loss on ``batch``, with the same dropout masks at every call."""
        seed = int(self._rng.integers(2**31 - 1))
        devices: list[int] = []
        if self.device.type == "cuda":
            index = self.device.index
            devices = [torch.cuda.current_device() if index is None else index]

        def loss() -> torch.Tensor:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                return self._mixed_loss(batch)

        return loss

    def _arch_grads(self) -> tuple[list[torch.Tensor], Batch | None]:
        if self.order == 1:
            loss = self._mixed_loss(self._arch_stream.next())
            return (grads_of(loss, self.arch) if self._finite(loss) else []), None
        batch = self._train.next()
        group = self.weight_optimizer.param_groups[0]
        state = self.weight_optimizer.state
        grads = darts_hypergradient(
            self.weights,
            self.arch,
            self._replayable(batch),
            lambda: self._mixed_loss(self._arch_stream.next()),
            eta=float(group["lr"]),
            momentum=float(group.get("momentum", 0.0)),
            momentum_buffers=[state.get(w, {}).get("momentum_buffer") for w in self.weights],
            weight_decay=float(group.get("weight_decay", 0.0)),
            grad_clip=self.grad_clip,
            r=self.r,
        )
        return grads, batch

    def _train_step(self, epoch: int, n_epochs: int) -> None:
        self._set_lr(epoch, n_epochs)
        # the architecture step, then the weight step (cnn/train_search.py l.135-155)
        grads, batch = self._arch_grads()
        if grads and all(bool(torch.isfinite(g).all()) for g in grads):
            self.arch_optimizer.zero_grad(set_to_none=True)
            for p, g in zip(self.arch, grads, strict=True):
                p.grad = g.detach()
            self.arch_optimizer.step()
            self.arch_optimizer.zero_grad(set_to_none=True)
        elif grads:
            self.n_skipped += 1
        loss = self._mixed_loss(self._train.next() if batch is None else batch)
        if self._finite(loss):
            self._weight_step(loss)


def _dsonas_optimizer(
    lr: float, momentum: float, nesterov: bool, weight_decay: float
) -> OptimizerFactory:
    def factory(params: list[nn.Parameter]) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        )

    return factory


class ModelDSONAS(_ModelOneShot):
    """DSO-NAS (Zhang, Huang and Wang, 2019) on your own model, one Optuna trial per epoch.

    Every choice gets a scaling factor ``lambda`` (init 1; :class:`~optuna_enas.nn.
    DSONASRelaxation`). The search trains the weights alone for ``warmup_fraction`` of the
    weight steps (lambda fixed), then alternates a weight step and a ``lambda`` step that
    minimises ``loss + gamma * sum |lambda|`` with the modified APG
    (:class:`~optuna_enas.oneshot._apg.APG`: soft-thresholding makes exact zeros; clamped at 0 as
    the official ``APGNAG``); every ``prune_every`` epochs of the joint phase the zeros are
    frozen for good. The derived architecture takes the largest ``|lambda|`` per decision;
    its trial value is the discrete path's metric (the factors' scale is not part of it: the
    exported module has no factors; ``relaxed_value`` is the mixed supernet's).

    Defaults: the official CIFAR search (:data:`~optuna_enas.oneshot._dsonas.DSONAS_CNN`,
    XinbangZhang/DSO-NAS ``Cifar/config/cfgs.py``): weight SGD lr 0.1, 0.05 in the warm-up,
    Nesterov momentum 0.9, weight decay 1e-4, gradients clipped element-wise at 2.0,
    ``gamma`` 0.001, APG lr 0.1 and momentum 0.9, half of the budget as warm-up, pruning every
    5 epochs, 240 epochs.

    Args:
        supernet, train_data, valid_data, arch_data, loss_fn, metric, direction, batch_fn,
            n_eval_batches, bn_recalibration_batches, collapse_threshold, early_stop, device,
            example_input, dashboard: As :class:`ModelDARTS`.
        optimizer: ``optimizer(params)`` for the shared weights; its learning rates are then
            kept as they are in both phases. ``None``: SGD with ``lr`` (``warmup_lr`` in the
            warm-up), ``momentum`` (Nesterov), ``weight_decay``.
        lr, warmup_lr, momentum, weight_decay: See above.
        grad_clip: Global-norm clip of the weight gradients (default none).
        grad_clip_value: Element-wise clip of the weight and ``lambda`` gradients.
        lambda_lr, lambda_momentum, gamma: The APG's step size, momentum and L1 strength.
        warmup_fraction: Share of the weight steps before the ``lambda`` steps start.
        prune_every: Freeze the zero factors every this many epochs.
        init: The factors' initial value (1).
        epochs: Default budget of :meth:`search` in epochs.
        seed: Accepted for symmetry; DSO-NAS draws nothing itself (the loaders' own
            generators fix the batches).
        checkpoint_path, resume_from: As :class:`ModelDARTS`.
    """

    method = "dsonas"

    def __init__(
        self,
        supernet: Supernet,
        train_data: Iterable[Batch],
        valid_data: Iterable[Batch],
        *,
        arch_data: Iterable[Batch] | None = None,
        loss_fn: LossFn | None = None,
        metric: str | MetricFn = "loss",
        direction: Direction | None = None,
        optimizer: OptimizerFactory | None = None,
        batch_fn: Callable[[Batch], tuple[Any, Any]] | None = None,
        lr: float = DSONAS_CNN.lr,
        warmup_lr: float = DSONAS_CNN.warmup_lr,
        momentum: float = DSONAS_CNN.momentum,
        weight_decay: float = DSONAS_CNN.weight_decay,
        grad_clip: float = DSONAS_CNN.grad_clip,
        grad_clip_value: float | None = DSONAS_CNN.grad_clip_value,
        lambda_lr: float = DSONAS_CNN.lambda_lr,
        lambda_momentum: float = DSONAS_CNN.lambda_momentum,
        gamma: float = DSONAS_CNN.gamma,
        warmup_fraction: float = DSONAS_CNN.warmup_fraction,
        prune_every: int = DSONAS_CNN.prune_every,
        init: float = DSONAS_INIT,
        epochs: int = DSONAS_CNN.epochs,
        n_eval_batches: int = 1,
        bn_recalibration_batches: int = 0,
        collapse_threshold: float | None = None,
        early_stop: bool = False,
        device: str | torch.device | None = None,
        seed: int | None = None,
        checkpoint_path: str | Path | None = None,
        resume_from: str | Path | None = None,
        example_input: Any = None,
        dashboard: DashboardCallback | None = None,
    ) -> None:
        self._own_optimizer = optimizer is None
        self.lr = check_positive("lr", lr)
        self.warmup_lr = check_positive("warmup_lr", warmup_lr)
        momentum = check_fraction("momentum", momentum)
        factory = optimizer
        if factory is None:
            factory = _dsonas_optimizer(
                self.lr,
                momentum,
                momentum > 0.0,
                check_non_negative("weight_decay", weight_decay),
            )
        self.gamma = check_non_negative("gamma", gamma)
        self.warmup_fraction = check_fraction("warmup_fraction", warmup_fraction)
        self.prune_every = check_int("prune_every", prune_every)
        super().__init__(
            supernet,
            train_data,
            valid_data,
            arch_data=arch_data,
            loss_fn=loss_fn,
            metric=metric,
            direction=direction,
            optimizer=factory,
            batch_fn=batch_fn,
            grad_clip=grad_clip,
            grad_clip_value=grad_clip_value,
            n_eval_batches=n_eval_batches,
            bn_recalibration_batches=bn_recalibration_batches,
            epochs=epochs,
            collapse_threshold=collapse_threshold,
            early_stop=early_stop,
            device=device,
            seed=seed,
            checkpoint_path=checkpoint_path,
            dashboard=dashboard,
        )
        self.relaxation = DSONASRelaxation(supernet, init=init, example_input=example_input)
        self.lambda_optimizer = APG(
            self.arch,
            lr=check_positive("lambda_lr", lambda_lr),
            momentum=check_fraction("lambda_momentum", lambda_momentum),
            gamma=self.gamma,
        )
        if resume_from is not None:
            self.load(resume_from)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"weights": self.weight_optimizer, "lambda": self.lambda_optimizer}

    def warmup_steps(self) -> int:
        """Weight-only steps before the ``lambda`` steps (a share of the whole budget)."""
        return 0 if self._plan is None else int(round(self.warmup_fraction * self._plan[0]))

    def in_warmup(self) -> bool:
        return self.n_weight_steps < self.warmup_steps()

    def _phase(self) -> str:
        return "warmup" if self.n_weight_steps <= self.warmup_steps() else "search"

    def regularized_objective(self, loss: float) -> float:
        """``loss + gamma * sum |lambda|`` (what the ``lambda`` steps minimise)."""
        return loss + l1_penalty(self.arch, [None] * len(self.arch), self.gamma)

    def _train_step(self, epoch: int, n_epochs: int) -> None:
        warm = self.in_warmup()
        if self._own_optimizer:
            for group in self.weight_optimizer.param_groups:
                group["lr"] = self.warmup_lr if warm else self.lr
        loss = self._mixed_loss(self._train.next())
        if self._finite(loss):
            self._weight_step(loss)
        if warm:
            return
        loss = self._mixed_loss(self._arch_stream.next())
        if not self._finite(loss):
            return
        grads = grads_of(loss, self.arch)
        self._clip(grads, norm=False)
        self.lambda_optimizer.zero_grad(set_to_none=True)
        for p, g in zip(self.arch, grads, strict=True):
            p.grad = g.detach()
        self.lambda_optimizer.step()
        self.lambda_optimizer.zero_grad(set_to_none=True)

    def _end_of_epoch(self, epoch: int) -> None:
        if not self.in_warmup() and (epoch + 1) % self.prune_every == 0:
            self.lambda_optimizer.prune_zeros()

    def _summary_extra(self) -> dict[str, float]:
        return {"n_pruned": float(self.lambda_optimizer.n_pruned())}


__all__ = ["ModelDARTS", "ModelDSONAS"]
