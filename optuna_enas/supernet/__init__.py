"""Shared-weight supernets of ENAS (Pham et al., 2018) for the three ENAS search spaces."""

from optuna_enas.supernet._macro import MacroSupernet
from optuna_enas.supernet._micro import MicroSupernet
from optuna_enas.supernet._rnn import RNNSupernet


__all__ = ["MacroSupernet", "MicroSupernet", "RNNSupernet"]
