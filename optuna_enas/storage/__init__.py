"""Durable, fast storage for long searches: an in-memory study mirrored to a journal file."""

from optuna_enas.storage._mirror import TrialMirror
from optuna_enas.storage._mirror import load_study_in_memory
from optuna_enas.storage._url import storage_url


__all__ = ["TrialMirror", "load_study_in_memory", "storage_url"]
