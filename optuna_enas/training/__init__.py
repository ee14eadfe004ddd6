"""The evaluation half: evaluators that train and score architectures, checkpoints, data parallel.

Names load lazily (PEP 562), so the torch-free :class:`TrainingConfig` and
:class:`OptimConfig` import without torch.

- :mod:`._config`: :class:`TrainingConfig`, the training settings every method takes;
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

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
