"""One-shot NAS: relaxed (continuous) supernets for DARTS and DSO-NAS, and their searchers.

Names load lazily (PEP 562), so ``import optuna_enas`` does not import torch.

- :mod:`._relaxed`: :class:`RelaxedSupernet` (the contract the searchers build on);
  :mod:`._build`: :func:`build_relaxed`;
- :mod:`._mixed`: mixed-op and scaled-sum building blocks;
- :mod:`._relaxed_rnn`: the relaxed recurrent cell (DARTS recurrent space, DSO-NAS lambdas);
- :mod:`._relaxed_cnn`: the relaxed micro and macro CNN supernets;
- :mod:`._searcher`: the shared loop (budget in weight steps, one trial per epoch, checkpoints);
- :mod:`._darts`: :class:`DARTS` (first and second order); :mod:`._dsonas`: :class:`DSONAS`;
- :mod:`._apg`: soft-thresholding and the accelerated proximal gradient of DSO-NAS;
- :mod:`._record`: an epoch's derived architecture as an Optuna trial;
- :mod:`._collapse`: the share of parameter-free ops, its warning and DARTS+ early stopping;
- :mod:`._choice_relax`: :class:`DARTSRelaxation` / :class:`DSONASRelaxation`, a relaxation
  applied to the choice modules of a :class:`~optuna_enas.nn.Supernet` (your own model, and
  the built-in CNN supernets); :mod:`._model_search`: :class:`ModelDARTS` /
  :class:`ModelDSONAS`, the searchers over it with your loaders, loss and metric.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna_enas._lazy import lazy_exports


_EXPORTS = {
    "PARAM_FREE_OPS": "optuna_enas.oneshot._mixed",
    "RELAXATIONS": "optuna_enas.oneshot._relaxed",
    "Relaxation": "optuna_enas.oneshot._relaxed",
    "RelaxedSupernet": "optuna_enas.oneshot._relaxed",
    "build_relaxed": "optuna_enas.oneshot._build",
    "RelaxedRNNSupernet": "optuna_enas.oneshot._relaxed_rnn",
    "RelaxedMicroSupernet": "optuna_enas.oneshot._relaxed_cnn",
    "RelaxedMacroSupernet": "optuna_enas.oneshot._relaxed_cnn",
    "DARTS": "optuna_enas.oneshot._darts",
    "darts_hypergradient": "optuna_enas.oneshot._darts",
    "DSONAS": "optuna_enas.oneshot._dsonas",
    "EpochRecord": "optuna_enas.oneshot._searcher",
    "OneShotSearcher": "optuna_enas.oneshot._searcher",
    "SearchResult": "optuna_enas.oneshot._searcher",
    "APG": "optuna_enas.oneshot._apg",
    "soft_threshold": "optuna_enas.oneshot._apg",
    "CollapseMonitor": "optuna_enas.oneshot._collapse",
    "CollapseWarning": "optuna_enas.oneshot._collapse",
    "record_epoch": "optuna_enas.oneshot._record",
    "DARTSRelaxation": "optuna_enas.oneshot._choice_relax",
    "DSONASRelaxation": "optuna_enas.oneshot._choice_relax",
    "ModelDARTS": "optuna_enas.oneshot._model_search",
    "ModelDSONAS": "optuna_enas.oneshot._model_search",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from optuna_enas.oneshot._apg import APG as APG
    from optuna_enas.oneshot._apg import soft_threshold as soft_threshold
    from optuna_enas.oneshot._build import build_relaxed as build_relaxed
    from optuna_enas.oneshot._choice_relax import DARTSRelaxation as DARTSRelaxation
    from optuna_enas.oneshot._choice_relax import DSONASRelaxation as DSONASRelaxation
    from optuna_enas.oneshot._collapse import CollapseMonitor as CollapseMonitor
    from optuna_enas.oneshot._collapse import CollapseWarning as CollapseWarning
    from optuna_enas.oneshot._darts import DARTS as DARTS
    from optuna_enas.oneshot._darts import darts_hypergradient as darts_hypergradient
    from optuna_enas.oneshot._dsonas import DSONAS as DSONAS
    from optuna_enas.oneshot._mixed import PARAM_FREE_OPS as PARAM_FREE_OPS
    from optuna_enas.oneshot._model_search import ModelDARTS as ModelDARTS
    from optuna_enas.oneshot._model_search import ModelDSONAS as ModelDSONAS
    from optuna_enas.oneshot._record import record_epoch as record_epoch
    from optuna_enas.oneshot._relaxed import RELAXATIONS as RELAXATIONS
    from optuna_enas.oneshot._relaxed import Relaxation as Relaxation
    from optuna_enas.oneshot._relaxed import RelaxedSupernet as RelaxedSupernet
    from optuna_enas.oneshot._relaxed_cnn import RelaxedMacroSupernet as RelaxedMacroSupernet
    from optuna_enas.oneshot._relaxed_cnn import RelaxedMicroSupernet as RelaxedMicroSupernet
    from optuna_enas.oneshot._relaxed_rnn import RelaxedRNNSupernet as RelaxedRNNSupernet
    from optuna_enas.oneshot._searcher import EpochRecord as EpochRecord
    from optuna_enas.oneshot._searcher import OneShotSearcher as OneShotSearcher
    from optuna_enas.oneshot._searcher import SearchResult as SearchResult

__all__ = sorted(_EXPORTS)
