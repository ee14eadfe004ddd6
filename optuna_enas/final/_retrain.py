"""Retrain one architecture from scratch and report its test metric."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from optuna_enas._validation import check_int
from optuna_enas._validation import check_seed
from optuna_enas._validation import fresh_seed
from optuna_enas.data._corpus import Corpus
from optuna_enas.data._images import ImageData
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.training._config import TrainingConfig
from optuna_enas.training._config import fold_training
from optuna_enas.training._trainer import TrainingSetup
from optuna_enas.training._trainer import train_from_scratch


_logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class RetrainResult:
    """The outcome of :func:`retrain`.

    Args:
        architecture: The architecture.
        metric: ``"ppl"`` or ``"accuracy"``.
        valid_value: Full validation-set metric after the last epoch.
        test_value: Full test-set metric after the last epoch.
        history: Validation metric after each epoch.
        model: The trained network (a supernet used only with ``architecture``).
    """

    architecture: Architecture
    metric: str
    valid_value: float
    test_value: float
    history: tuple[float, ...]
    model: nn.Module


def retrain(
    arch: Architecture,
    space: SearchSpace,
    data: Corpus | ImageData | None = None,
    *,
    n_epochs: int = 10,
    n_steps_per_epoch: int | None = None,
    training: TrainingConfig | None = None,
    supernet_kwargs: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    bptt: int | None = None,
    lr: float | None = None,
    grad_clip: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    device: str | torch.device | None = None,
    seed: int | None = None,
) -> RetrainResult:
    """Train ``arch`` from scratch in a fresh model and report its test metric.

    The model is a new supernet (no shared weights) trained on ``arch`` alone with the same
    optimizer defaults as :class:`~optuna_enas.SupernetEvaluator`, constant learning rate.
    ENAS retrains far longer with learning-rate decay and heavy regularization
    (``ptb_final.sh``); pass larger ``supernet_kwargs``/``n_epochs`` for that.

    Args:
        arch: The architecture (e.g. ``derive(...)[0].architecture``).
        space: Its search space.
        data: A Corpus (RNN) or ImageData (CNN); ``None``: the embedded defaults.
        n_epochs: Training epochs.
        n_steps_per_epoch: Minibatches per epoch; ``None``: one pass over the training data.
        training: The training settings as one
            :class:`~optuna_enas.TrainingConfig` (e.g. a search evaluator's
            ``evaluator.training``; defaults as the evaluators). The flat keywords
            ``supernet_kwargs``, ``batch_size``, ``bptt``, ``lr``, ``grad_clip``, ``momentum``,
            ``weight_decay`` and ``device`` are shorthands for its fields; giving one that
            ``training`` also sets raises ``ValueError``.
        supernet_kwargs: Model size and dropout (see the supernets).
        batch_size: Training minibatch size (default 64, as the evaluators).
        bptt: Truncated-BPTT length (RNN; default 35).
        lr: SGD learning rate (default per space, see the evaluator).
        grad_clip: Maximum gradient norm (default per space).
        momentum: SGD momentum (default per space).
        weight_decay: L2 penalty (default per space).
        device: Torch device; ``None`` picks CUDA when available.
        seed: Seed of initialization and shuffling; ``None`` draws one.
    """
    if not isinstance(arch, Architecture):
        raise ValueError(f"arch must be an Architecture, but got {arch!r}.")
    arch = space.coerce(arch)
    check_int("n_epochs", n_epochs, 1)
    if n_steps_per_epoch is not None:
        check_int("n_steps_per_epoch", n_steps_per_epoch, 1)
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
    setup = TrainingSetup.from_config(space, data, training)
    model, history, score = train_from_scratch(
        setup,
        arch,
        n_epochs=n_epochs,
        n_steps_per_epoch=n_steps_per_epoch,
        seed=seed if seed is not None else fresh_seed(),
    )
    metric = setup.kind.metric
    result = RetrainResult(
        architecture=arch,
        metric=metric,
        valid_value=history[-1],
        test_value=score("test"),
        history=tuple(history),
        model=model,
    )
    _logger.info(
        f"Retrained {space.describe(arch)}: valid {metric} {result.valid_value:.6g}, test "
        f"{metric} {result.test_value:.6g}."
    )
    return result


__all__ = ["RetrainResult", "retrain"]
