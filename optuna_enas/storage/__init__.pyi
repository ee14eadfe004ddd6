"""The public names of optuna_enas.storage, for mypy and (optuna_enas._lazy) at run time."""

from optuna_enas.storage._batched import BatchedStorage as BatchedStorage
from optuna_enas.storage._batched import SecondWriterError as SecondWriterError
from optuna_enas.storage._batched import configure_sqlite as configure_sqlite
from optuna_enas.storage._batched import fail_running_trials as fail_running_trials
from optuna_enas.storage._batched import leave_wal as leave_wal
from optuna_enas.storage._mirror import TrialMirror as TrialMirror
from optuna_enas.storage._mirror import load_study_in_memory as load_study_in_memory
from optuna_enas.storage._url import storage_url as storage_url
