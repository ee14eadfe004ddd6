"""Durable, fast storage for long searches: one write per trial (BatchedStorage), or an in-memory
study mirrored to a journal file (TrialMirror)."""

from optuna_enas.storage._batched import BatchedStorage
from optuna_enas.storage._batched import SecondWriterError
from optuna_enas.storage._batched import configure_sqlite
from optuna_enas.storage._batched import fail_running_trials
from optuna_enas.storage._batched import leave_wal
from optuna_enas.storage._mirror import TrialMirror
from optuna_enas.storage._mirror import load_study_in_memory
from optuna_enas.storage._url import storage_url


__all__ = [
    "BatchedStorage",
    "SecondWriterError",
    "TrialMirror",
    "configure_sqlite",
    "fail_running_trials",
    "leave_wal",
    "load_study_in_memory",
    "storage_url",
]
