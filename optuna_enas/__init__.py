"""optuna-enas: Efficient Neural Architecture Search (Pham et al., 2018) as an Optuna sampler.

The package has two halves that meet only through Optuna params:

- sampling: :mod:`optuna_enas.spaces` (torch-free) and :mod:`optuna_enas.sampler`;
- evaluation: :mod:`optuna_enas.nn` (choice modules for your own model and its
  :class:`~optuna_enas.nn.Supernet`), :mod:`optuna_enas.supernet` (the ENAS spaces' supernets),
  :mod:`optuna_enas.training`, :mod:`optuna_enas.data`;

and :mod:`optuna_enas.oneshot` (DARTS, DSO-NAS), :mod:`optuna_enas.final` (derive, retrain,
export), :mod:`optuna_enas.storage`, :mod:`optuna_enas.dashboard` and :mod:`optuna_enas.cli`
around them. Names are loaded lazily
(PEP 562): ``import optuna_enas`` and the spaces work without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna_enas._lazy import lazy_exports


__version__ = "0.1.0"

_EXPORTS = {
    # spaces (torch-free)
    "Architecture": "optuna_enas.spaces._search_space",
    "Decision": "optuna_enas.spaces._search_space",
    "SearchSpace": "optuna_enas.spaces._search_space",
    "suggest_architecture": "optuna_enas.spaces._search_space",
    "MacroSpace": "optuna_enas.spaces._enas",
    "MicroSpace": "optuna_enas.spaces._enas",
    "RNNCellSpace": "optuna_enas.spaces._enas",
    "make_space": "optuna_enas.spaces._enas",
    "space_from_dict": "optuna_enas.spaces._enas",
    # sampler (ControllerConfig, PRESETS and the rewards are torch-free)
    "PRESETS": "optuna_enas.sampler._config",
    "ControllerConfig": "optuna_enas.sampler._config",
    "direction_reward": "optuna_enas.sampler._reward",
    "perplexity_reward": "optuna_enas.sampler._reward",
    "weighted_sum_reward": "optuna_enas.sampler._reward",
    "ENASSampler": "optuna_enas.sampler._sampler",
    "LSTMController": "optuna_enas.sampler._controller",
    # training
    "ModelEvaluator": "optuna_enas.training._model_evaluator",
    "objective_over": "optuna_enas.training._model_evaluator",
    "StandaloneEvaluator": "optuna_enas.training._evaluator",
    "SupernetEvaluator": "optuna_enas.training._evaluator",
    # one-shot searchers (DARTS, DSO-NAS)
    "DARTS": "optuna_enas.oneshot._darts",
    "DSONAS": "optuna_enas.oneshot._dsonas",
    "ModelDARTS": "optuna_enas.oneshot._model_search",
    "ModelDSONAS": "optuna_enas.oneshot._model_search",
    # final architecture
    "DerivedArchitecture": "optuna_enas.final._derive",
    "RetrainResult": "optuna_enas.final._retrain",
    "derive": "optuna_enas.final._derive",
    "export_architecture": "optuna_enas.final._export",
    "import_architecture": "optuna_enas.final._export",
    "retrain": "optuna_enas.final._retrain",
    "RankCheckResult": "optuna_enas.final._rank_check",
    "rank_check": "optuna_enas.final._rank_check",
    # storage (torch-free)
    "BatchedStorage": "optuna_enas.storage._batched",
    "configure_sqlite": "optuna_enas.storage._batched",
    "fail_running_trials": "optuna_enas.storage._batched",
    "TrialMirror": "optuna_enas.storage._mirror",
    "load_study_in_memory": "optuna_enas.storage._mirror",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from optuna_enas.final._derive import DerivedArchitecture as DerivedArchitecture
    from optuna_enas.final._derive import derive as derive
    from optuna_enas.final._export import export_architecture as export_architecture
    from optuna_enas.final._export import import_architecture as import_architecture
    from optuna_enas.final._rank_check import RankCheckResult as RankCheckResult
    from optuna_enas.final._rank_check import rank_check as rank_check
    from optuna_enas.final._retrain import RetrainResult as RetrainResult
    from optuna_enas.final._retrain import retrain as retrain
    from optuna_enas.oneshot._darts import DARTS as DARTS
    from optuna_enas.oneshot._dsonas import DSONAS as DSONAS
    from optuna_enas.oneshot._model_search import ModelDARTS as ModelDARTS
    from optuna_enas.oneshot._model_search import ModelDSONAS as ModelDSONAS
    from optuna_enas.sampler._config import PRESETS as PRESETS
    from optuna_enas.sampler._config import ControllerConfig as ControllerConfig
    from optuna_enas.sampler._controller import LSTMController as LSTMController
    from optuna_enas.sampler._reward import direction_reward as direction_reward
    from optuna_enas.sampler._reward import perplexity_reward as perplexity_reward
    from optuna_enas.sampler._reward import weighted_sum_reward as weighted_sum_reward
    from optuna_enas.sampler._sampler import ENASSampler as ENASSampler
    from optuna_enas.spaces._enas import MacroSpace as MacroSpace
    from optuna_enas.spaces._enas import MicroSpace as MicroSpace
    from optuna_enas.spaces._enas import RNNCellSpace as RNNCellSpace
    from optuna_enas.spaces._enas import make_space as make_space
    from optuna_enas.spaces._enas import space_from_dict as space_from_dict
    from optuna_enas.spaces._search_space import Architecture as Architecture
    from optuna_enas.spaces._search_space import Decision as Decision
    from optuna_enas.spaces._search_space import SearchSpace as SearchSpace
    from optuna_enas.spaces._search_space import suggest_architecture as suggest_architecture
    from optuna_enas.storage._batched import BatchedStorage as BatchedStorage
    from optuna_enas.storage._batched import configure_sqlite as configure_sqlite
    from optuna_enas.storage._batched import fail_running_trials as fail_running_trials
    from optuna_enas.storage._mirror import TrialMirror as TrialMirror
    from optuna_enas.storage._mirror import load_study_in_memory as load_study_in_memory
    from optuna_enas.training._evaluator import StandaloneEvaluator as StandaloneEvaluator
    from optuna_enas.training._evaluator import SupernetEvaluator as SupernetEvaluator
    from optuna_enas.training._model_evaluator import ModelEvaluator as ModelEvaluator
    from optuna_enas.training._model_evaluator import objective_over as objective_over

__all__ = ["__version__", *sorted(_EXPORTS)]
