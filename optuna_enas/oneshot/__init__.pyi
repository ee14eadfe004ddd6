"""The public names of optuna_enas.oneshot, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.oneshot._build import build_relaxed as build_relaxed
from optuna_enas.oneshot._choice_relax import DARTSRelaxation as DARTSRelaxation
from optuna_enas.oneshot._choice_relax import DSONASRelaxation as DSONASRelaxation
from optuna_enas.oneshot._collapse import CollapseWarning as CollapseWarning
from optuna_enas.oneshot._darts import DARTS as DARTS
from optuna_enas.oneshot._dsonas import DSONAS as DSONAS
from optuna_enas.oneshot._model_search import ModelDARTS as ModelDARTS
from optuna_enas.oneshot._model_search import ModelDSONAS as ModelDSONAS
from optuna_enas.oneshot._relaxed import RelaxedSupernet as RelaxedSupernet
from optuna_enas.oneshot._searcher import EpochRecord as EpochRecord
from optuna_enas.oneshot._searcher import SearchResult as SearchResult
