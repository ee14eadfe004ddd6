"""The public names of optuna_enas, for mypy and (optuna_enas._lazy) at run time."""

__version__: str

from optuna_enas.final import DerivedArchitecture as DerivedArchitecture
from optuna_enas.final import RankCheckResult as RankCheckResult
from optuna_enas.final import RetrainResult as RetrainResult
from optuna_enas.final import derive as derive
from optuna_enas.final import export_architecture as export_architecture
from optuna_enas.final import import_architecture as import_architecture
from optuna_enas.final import rank_check as rank_check
from optuna_enas.final import retrain as retrain
from optuna_enas.oneshot import DARTS as DARTS
from optuna_enas.oneshot import DSONAS as DSONAS
from optuna_enas.oneshot import ModelDARTS as ModelDARTS
from optuna_enas.oneshot import ModelDSONAS as ModelDSONAS
from optuna_enas.sampler import PRESETS as PRESETS
from optuna_enas.sampler import ControllerConfig as ControllerConfig
from optuna_enas.sampler import ENASSampler as ENASSampler
from optuna_enas.sampler import LSTMController as LSTMController
from optuna_enas.sampler import direction_reward as direction_reward
from optuna_enas.sampler import perplexity_reward as perplexity_reward
from optuna_enas.sampler import weighted_sum_reward as weighted_sum_reward
from optuna_enas.spaces import Architecture as Architecture
from optuna_enas.spaces import Decision as Decision
from optuna_enas.spaces import MacroSpace as MacroSpace
from optuna_enas.spaces import MicroSpace as MicroSpace
from optuna_enas.spaces import RNNCellSpace as RNNCellSpace
from optuna_enas.spaces import SearchSpace as SearchSpace
from optuna_enas.spaces import make_space as make_space
from optuna_enas.spaces import space_from_dict as space_from_dict
from optuna_enas.spaces import suggest_architecture as suggest_architecture
from optuna_enas.storage import BatchedStorage as BatchedStorage
from optuna_enas.storage import TrialMirror as TrialMirror
from optuna_enas.storage import configure_sqlite as configure_sqlite
from optuna_enas.storage import fail_running_trials as fail_running_trials
from optuna_enas.storage import load_study_in_memory as load_study_in_memory
from optuna_enas.training import ModelEvaluator as ModelEvaluator
from optuna_enas.training import StandaloneEvaluator as StandaloneEvaluator
from optuna_enas.training import SupernetEvaluator as SupernetEvaluator
from optuna_enas.training import TrainingConfig as TrainingConfig
from optuna_enas.training import objective_over as objective_over
