"""Search spaces: ordered categorical decisions and the ENAS spaces. Torch-free.

- :mod:`._search_space`: :class:`Decision`, :class:`Architecture`, :class:`SearchSpace`,
  :func:`suggest_architecture`;
- :mod:`._enas`: the ENAS RNN cell, macro and micro spaces, :func:`make_space`,
  :func:`space_from_dict`;
- :mod:`._kinds`: what each kind of space is scored by (metric, direction, data).
"""

from optuna_enas.spaces._enas import MacroSpace
from optuna_enas.spaces._enas import MicroSpace
from optuna_enas.spaces._enas import RNNCellSpace
from optuna_enas.spaces._enas import make_space
from optuna_enas.spaces._enas import space_from_dict
from optuna_enas.spaces._kinds import KINDS
from optuna_enas.spaces._kinds import SpaceKind
from optuna_enas.spaces._kinds import kind_of
from optuna_enas.spaces._search_space import Architecture
from optuna_enas.spaces._search_space import Decision
from optuna_enas.spaces._search_space import SearchSpace
from optuna_enas.spaces._search_space import suggest_architecture


__all__ = [
    "KINDS",
    "SpaceKind",
    "kind_of",
    "Architecture",
    "Decision",
    "MacroSpace",
    "MicroSpace",
    "RNNCellSpace",
    "SearchSpace",
    "make_space",
    "space_from_dict",
    "suggest_architecture",
]
