"""The public names of optuna_enas.training, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.training._config import TrainingConfig as TrainingConfig
from optuna_enas.training._evaluator import StandaloneEvaluator as StandaloneEvaluator
from optuna_enas.training._evaluator import SupernetEvaluator as SupernetEvaluator
from optuna_enas.training._model_evaluator import ModelEvaluator as ModelEvaluator
from optuna_enas.training._model_evaluator import objective_over as objective_over
from optuna_enas.training._optim import OptimConfig as OptimConfig
