"""optuna-enas: Efficient Neural Architecture Search (Pham et al., 2018) as an Optuna sampler."""

from optuna_enas._config import PRESETS
from optuna_enas._config import ControllerConfig
from optuna_enas._controller import LSTMController
from optuna_enas._enas_spaces import MacroSpace
from optuna_enas._enas_spaces import MicroSpace
from optuna_enas._enas_spaces import RNNCellSpace
from optuna_enas._enas_spaces import make_space
from optuna_enas._enas_spaces import space_from_dict
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
    "__version__",
    "direction_reward",
    "make_space",
    "perplexity_reward",
    "space_from_dict",
    "suggest_architecture",
]
