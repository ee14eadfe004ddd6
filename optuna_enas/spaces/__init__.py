"""Search spaces: ordered categorical decisions and the ENAS spaces. Torch-free.

- :mod:`._search_space`: :class:`Decision`, :class:`Architecture`, :class:`SearchSpace`,
  :func:`suggest_architecture`;
- :mod:`._enas`: the ENAS RNN cell, macro and micro spaces, :func:`make_space`,
  :func:`space_from_dict`;
- :mod:`._kinds`: what each kind of space is scored by (metric, direction, data).
"""

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
