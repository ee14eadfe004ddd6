"""The ``optuna-enas`` command: search, compare samplers, derive, retrain, export, dashboard.

Run ``optuna-enas COMMAND --help`` (or ``python -m optuna_enas COMMAND --help``) for the
options. Every command works on an Optuna storage (default ``sqlite:///optuna-enas.db`` in the
current directory); a search is resumed by running the same command again. Bad input (an
unknown space, a missing data path, an unreachable storage) prints one line on stderr and exits
with status 2.
"""

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
