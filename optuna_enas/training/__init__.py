"""The evaluation half: evaluators that train and score architectures, checkpoints, data parallel.

Names load lazily (PEP 562), so the torch-free :mod:`._optim` imports without torch.

- :mod:`._evaluator`: :class:`SupernetEvaluator` (shared weights) and
  :class:`StandaloneEvaluator` (NAS-RL: each child trained from scratch);
- :mod:`._model_evaluator`: :class:`ModelEvaluator` / :func:`objective_over`, the same for a
  :class:`~optuna_enas.nn.Supernet` of your own model, data, loss and metric;
- :mod:`._tasks`: language modelling and image classification (data streams, loss, metric);
- :mod:`._trainer`: the supernet + optimizer + task, and :func:`train_from_scratch`;
- :mod:`._optim`: :class:`OptimConfig`, the optimizer settings and their ENAS defaults;
- :mod:`._checkpoint`: atomic checkpoints;
- :mod:`.distributed`: data-parallel training with torch.distributed (public module).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna_enas._lazy import lazy_exports


_EXPORTS = {
    "ModelEvaluator": "optuna_enas.training._model_evaluator",
    "objective_over": "optuna_enas.training._model_evaluator",
    "StandaloneEvaluator": "optuna_enas.training._evaluator",
    "SupernetEvaluator": "optuna_enas.training._evaluator",
    "OptimConfig": "optuna_enas.training._optim",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from optuna_enas.training._evaluator import StandaloneEvaluator as StandaloneEvaluator
    from optuna_enas.training._evaluator import SupernetEvaluator as SupernetEvaluator
    from optuna_enas.training._model_evaluator import ModelEvaluator as ModelEvaluator
    from optuna_enas.training._model_evaluator import objective_over as objective_over
    from optuna_enas.training._optim import OptimConfig as OptimConfig

__all__ = sorted(_EXPORTS)
