"""optuna-enas: Efficient Neural Architecture Search (Pham et al., 2018) as an Optuna sampler."""

from optuna_enas._config import PRESETS
from optuna_enas._config import ControllerConfig
from optuna_enas._controller import LSTMController
from optuna_enas._derive import derive
from optuna_enas._derive import export_architecture
from optuna_enas._derive import import_architecture
from optuna_enas._derive import retrain
from optuna_enas._enas_spaces import MacroSpace
from optuna_enas._enas_spaces import MicroSpace
from optuna_enas._enas_spaces import RNNCellSpace
from optuna_enas._enas_spaces import make_space
from optuna_enas._enas_spaces import space_from_dict
from optuna_enas._evaluator import StandaloneEvaluator
from optuna_enas._evaluator import SupernetEvaluator
from optuna_enas._mirror import TrialMirror
from optuna_enas._mirror import load_study_in_memory
from optuna_enas._reward import direction_reward
from optuna_enas._reward import perplexity_reward
from optuna_enas._sampler import ENASSampler
from optuna_enas._search_space import Architecture
from optuna_enas._search_space import Decision
from optuna_enas._search_space import SearchSpace
from optuna_enas._search_space import suggest_architecture


__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "Architecture",
    "ControllerConfig",
    "Decision",
    "ENASSampler",
    "LSTMController",
    "MacroSpace",
    "MicroSpace",
    "RNNCellSpace",
    "SearchSpace",
    "StandaloneEvaluator",
    "SupernetEvaluator",
    "TrialMirror",
    "__version__",
    "derive",
    "direction_reward",
    "export_architecture",
    "import_architecture",
    "load_study_in_memory",
    "make_space",
    "perplexity_reward",
    "retrain",
    "space_from_dict",
    "suggest_architecture",
]
