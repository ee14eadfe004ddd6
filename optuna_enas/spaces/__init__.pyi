"""The public names of optuna_enas.spaces, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.spaces._enas import MacroSpace as MacroSpace
from optuna_enas.spaces._enas import MicroSpace as MicroSpace
from optuna_enas.spaces._enas import RNNCellSpace as RNNCellSpace
from optuna_enas.spaces._enas import make_space as make_space
from optuna_enas.spaces._enas import space_from_dict as space_from_dict
from optuna_enas.spaces._search_space import Architecture as Architecture
from optuna_enas.spaces._search_space import Decision as Decision
from optuna_enas.spaces._search_space import SearchSpace as SearchSpace
from optuna_enas.spaces._search_space import suggest_architecture as suggest_architecture
