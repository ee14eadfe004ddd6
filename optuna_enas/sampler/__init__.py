"""The sampling half: the Optuna sampler, its LSTM controller and the REINFORCE learner.

- :mod:`._sampler`: :class:`ENASSampler` (the Optuna adapter: replay, bookkeeping);
- :mod:`._controller`: :class:`LSTMController` (the policy);
- :mod:`._reinforce`: the REINFORCE learner (baseline, advantages, update);
- :mod:`._elite`: the ``"elite"`` learner (maximum likelihood on the history's best trials) and
  :class:`EliteConfig`;
- :mod:`._config`: :class:`ControllerConfig` and the cited presets;
- :mod:`._reward`: functions that turn an objective value into a reward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optuna_enas._lazy import lazy_exports


_EXPORTS = {
    "PRESETS": "optuna_enas.sampler._config",
    "ControllerConfig": "optuna_enas.sampler._config",
    "EliteConfig": "optuna_enas.sampler._elite",
    "LSTMController": "optuna_enas.sampler._controller",
    "direction_reward": "optuna_enas.sampler._reward",
    "perplexity_reward": "optuna_enas.sampler._reward",
    "weighted_sum_reward": "optuna_enas.sampler._reward",
    "mnasnet_reward": "optuna_enas.sampler._reward",
    "ENASSampler": "optuna_enas.sampler._sampler",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from optuna_enas.sampler._config import PRESETS as PRESETS
    from optuna_enas.sampler._config import ControllerConfig as ControllerConfig
    from optuna_enas.sampler._controller import LSTMController as LSTMController
    from optuna_enas.sampler._elite import EliteConfig as EliteConfig
    from optuna_enas.sampler._reward import direction_reward as direction_reward
    from optuna_enas.sampler._reward import mnasnet_reward as mnasnet_reward
    from optuna_enas.sampler._reward import perplexity_reward as perplexity_reward
    from optuna_enas.sampler._reward import weighted_sum_reward as weighted_sum_reward
    from optuna_enas.sampler._sampler import ENASSampler as ENASSampler

__all__ = sorted(_EXPORTS)
