"""The final architecture: derive it from a search, retrain it from scratch, export it; and
:func:`rank_check`, which tests the supernet's ranking against training from scratch."""

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
