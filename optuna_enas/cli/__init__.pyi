"""The public names of optuna_enas.cli, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.cli._main import main as main
from optuna_enas.cli._storage import default_artifact_dir as default_artifact_dir
from optuna_enas.cli._storage import open_storage as open_storage
