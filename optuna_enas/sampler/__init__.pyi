"""The public names of optuna_enas.sampler, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.sampler._config import PRESETS as PRESETS
from optuna_enas.sampler._config import ControllerConfig as ControllerConfig
from optuna_enas.sampler._controller import LSTMController as LSTMController
from optuna_enas.sampler._elite import EliteConfig as EliteConfig
from optuna_enas.sampler._reward import direction_reward as direction_reward
from optuna_enas.sampler._reward import mnasnet_reward as mnasnet_reward
from optuna_enas.sampler._reward import perplexity_reward as perplexity_reward
from optuna_enas.sampler._reward import weighted_sum_reward as weighted_sum_reward
from optuna_enas.sampler._sampler import ENASSampler as ENASSampler
