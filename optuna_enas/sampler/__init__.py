"""The sampling half: the Optuna sampler, its LSTM controller and its two learning rules.

- :mod:`._sampler`: :class:`ENASSampler` (the Optuna adapter: replay, bookkeeping);
- :mod:`._controller`: :class:`LSTMController` (the policy);
- :mod:`._reinforce`: the REINFORCE learner (baseline, advantages, update);
- :mod:`._elite`: the ``"elite"`` learner, the default (maximum likelihood on the history's best
  trials), and :class:`EliteConfig`;
- :mod:`._config`: :class:`ControllerConfig` and the cited presets;
- :mod:`._reward`: functions that turn an objective value into a reward.
"""

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
