"""Every access to a private part of Optuna that optuna-enas makes, in one place.

Each one has a test (``tests/test_storage_compat.py``) that fails when an Optuna release
changes it, so an upgrade that breaks one is caught by the suite, not by a corrupted study.
The range of Optuna versions the suite runs against is declared in ``pyproject.toml``.

1. :func:`unwrap_cached`: ``optuna.storages._CachedStorage._backend``, the ``RDBStorage``
   inside the cache that :func:`optuna.storages.get_storage` puts around it. Needed to accept
   ``get_storage(url)`` as a backend and still know the database (its URL, SQLite pragmas).
2. :func:`cached`: :func:`optuna.storages.get_storage` ("only for internal usage"), the cache
   ``optuna.create_study`` itself puts around an ``RDBStorage``. Shared mode reads through it.
3. :data:`BaseHeartbeat` (``optuna.storages._heartbeat``) and :func:`stale_trial_ids` (its
   abstract ``_get_stale_trial_ids``): how a storage tells Optuna it has a heartbeat; Optuna
   checks ``isinstance(storage, BaseHeartbeat)``.
4. :data:`FrozenStudy` (``optuna.study._frozen``): the type ``BaseStorage.get_all_studies``
   returns (annotations only).
"""

from __future__ import annotations

from optuna.storages import BaseStorage
from optuna.storages import RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.study._frozen import FrozenStudy


def unwrap_cached(storage: BaseStorage) -> BaseStorage:
    """The storage inside Optuna's cache (``storage`` itself when it is not one)."""
    from optuna.storages import _CachedStorage

    if isinstance(storage, _CachedStorage):
        inner = storage._backend
        assert isinstance(inner, RDBStorage), type(inner)
        return inner
    return storage


def cached(storage: RDBStorage) -> BaseStorage:
    """``storage`` in the cache Optuna puts around an RDB storage in ``create_study``."""
    from optuna.storages import get_storage

    return get_storage(storage)


def stale_trial_ids(storage: BaseHeartbeat, study_id: int) -> list[int]:
    """The running trials whose heartbeat stopped (``BaseHeartbeat._get_stale_trial_ids``)."""
    return storage._get_stale_trial_ids(study_id)


__all__ = ["BaseHeartbeat", "FrozenStudy", "cached", "stale_trial_ids", "unwrap_cached"]
