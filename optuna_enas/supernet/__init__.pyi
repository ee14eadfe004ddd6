"""The public names of optuna_enas.supernet, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.supernet._macro import MacroSupernet as MacroSupernet
from optuna_enas.supernet._micro import MicroSupernet as MicroSupernet
from optuna_enas.supernet._rnn import RNNSupernet as RNNSupernet
