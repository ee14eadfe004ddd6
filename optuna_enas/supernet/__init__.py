"""Shared-weight supernets of ENAS (Pham et al., 2018) for the three ENAS search spaces."""

from optuna_enas import _lazy


__getattr__, __dir__, __all__ = _lazy.exports_from_stub(__name__, __file__)
