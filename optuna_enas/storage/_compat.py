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
5. :func:`sql_trial_writer`: Optuna's table models (``optuna.storages._rdb.models``), to write
   a finished trial with a few SQL statements in one transaction. Optuna's public
   ``create_new_trial(template_trial=...)`` writes the same rows in one transaction too, but
   through the ORM, ~6 queries per parameter: 37-41 ms of CPU per 23-parameter trial against
   4.5-5.4 ms (``benchmarks/results/storage_public_api_*.json``). It is used only where it is known
   to write exactly what Optuna writes: an Optuna release in :data:`TESTED_OPTUNA` (the range
   ``pyproject.toml`` declares and CI runs), on a database whose schema is the one that
   release's models describe (``RDBStorage.get_current_version() == get_head_version()``),
   with the columns this module writes. Anywhere else ``BatchedStorage`` writes through the
   public ``create_new_trial``: slower, never wrong.
6. :func:`reset_connections`: ``RDBStorage.engine``, the SQLAlchemy engine (an attribute
   without an underscore, but not documented). When Ctrl-C or SIGTERM lands inside a commit,
   the interrupted connection can keep its transaction open (SQLite: the write lock), so the
   next write, the one that records the interrupted run, waits out the lock and fails with
   ``StorageInternalError``; ``remove_session()`` (public) alone does not release it.
"""

from __future__ import annotations

import datetime
import gc
import json
from collections.abc import Callable
from typing import Any

import optuna
import sqlalchemy
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


def reset_connections(storage: BaseStorage) -> None:
    """Close every connection of the RDB storage behind ``storage`` (a ``BatchedStorage``,
    Optuna's cache, or the ``RDBStorage`` itself; any other storage: nothing to do), rolling
    back a transaction an interrupt left open; the next call opens a fresh one. For a command
    that goes on writing after Ctrl-C / SIGTERM stopped it."""
    inner = getattr(storage, "backend", storage)  # BatchedStorage exposes its backend
    if not isinstance(inner, BaseStorage):
        return
    inner = unwrap_cached(inner)
    if isinstance(inner, RDBStorage):
        inner.remove_session()
        gc.collect()  # a connection held only by the interrupt's traceback goes back to the pool
        inner.engine.dispose()


def stale_trial_ids(storage: BaseHeartbeat, study_id: int) -> list[int]:
    """The running trials whose heartbeat stopped (``BaseHeartbeat._get_stale_trial_ids``)."""
    return storage._get_stale_trial_ids(study_id)


TESTED_OPTUNA = ((5, 0), (5, 1))
"""The Optuna releases (major, minor) whose table layout :func:`sql_trial_writer` writes."""

_COLUMNS = {
    "trials": {"trial_id", "number", "study_id", "state", "datetime_start", "datetime_complete"},
    "trial_params": {"param_id", "trial_id", "param_name", "param_value", "distribution_json"},
    "trial_values": {"trial_value_id", "trial_id", "objective", "value", "value_type"},
    "trial_user_attributes": {"trial_user_attribute_id", "trial_id", "key", "value_json"},
    "trial_system_attributes": {"trial_system_attribute_id", "trial_id", "key", "value_json"},
    "trial_intermediate_values": {
        "trial_intermediate_value_id",
        "trial_id",
        "step",
        "intermediate_value",
        "intermediate_value_type",
    },
}
"""The columns of each table the writer fills (the layout of the releases in TESTED_OPTUNA)."""

TrialWriter = Callable[[int, optuna.trial.FrozenTrial], tuple[int, int]]


def _release() -> tuple[int, int]:
    major, minor = optuna.__version__.split(".")[:2]
    return int(major), int(minor)


def sql_trial_writer(storage: RDBStorage) -> TrialWriter | None:
    """A function writing a whole trial in one transaction, or None where it is not known safe.

    The function takes ``(study_id, trial)`` and returns ``(trial_id, number)``: the trial is
    numbered inside the transaction as Optuna numbers it (its rows before it in the study),
    so two writers never get one number.
    """
    if _release() not in TESTED_OPTUNA:
        return None
    try:
        if storage.get_current_version() != storage.get_head_version():
            return None
        from optuna.storages._rdb import models
    except Exception:
        return None
    tables = {
        "trials": models.TrialModel.__table__,
        "trial_params": models.TrialParamModel.__table__,
        "trial_values": models.TrialValueModel.__table__,
        "trial_user_attributes": models.TrialUserAttributeModel.__table__,
        "trial_system_attributes": models.TrialSystemAttributeModel.__table__,
        "trial_intermediate_values": models.TrialIntermediateValueModel.__table__,
    }
    for name, table in tables.items():
        if table.name != name or {c.name for c in table.columns} != _COLUMNS[name]:
            return None
    return _SqlTrialWriter(storage.engine, tables, models)


class _SqlTrialWriter:
    def __init__(self, engine: Any, tables: dict[str, Any], models: Any) -> None:
        self._engine = engine
        self._t = tables
        self._models = models
        trials = tables["trials"]
        # Built once: constructing SQLAlchemy statements per trial costs more than running them.
        self._count_before = (
            sqlalchemy.select(sqlalchemy.func.count())
            .select_from(trials)
            .where(
                trials.c.study_id == sqlalchemy.bindparam("sid"),
                trials.c.trial_id < sqlalchemy.bindparam("tid"),
            )
        )
        self._set_number = (
            sqlalchemy.update(trials)
            .where(trials.c.trial_id == sqlalchemy.bindparam("tid"))
            .values(number=sqlalchemy.bindparam("n"))
        )
        self._inserts = {name: t.insert() for name, t in tables.items()}
        studies = models.StudyModel.__table__
        self._lock_study = (
            sqlalchemy.select(studies.c.study_id)
            .where(studies.c.study_id == sqlalchemy.bindparam("sid"))
            .with_for_update()
        )
        self._dist_json: dict[str, tuple[Any, str]] = {}

    def _json(self, name: str, dist: Any) -> str:
        found = self._dist_json.get(name)
        if found is not None and (
            found[0] is dist
            or (type(found[0]) is type(dist) and found[0].__dict__ == dist.__dict__)
        ):
            return found[1]
        text = optuna.distributions.distribution_to_json(dist)
        self._dist_json[name] = (dist, text)
        return text

    def __call__(self, study_id: int, trial: optuna.trial.FrozenTrial) -> tuple[int, int]:
        m = self._models
        with self._engine.begin() as conn:
            # The study row locked (PostgreSQL; SQLite has one writer at a time), the trial's
            # row, then its number: what Optuna's _create_new_trial does, in one transaction.
            conn.execute(self._lock_study, {"sid": study_id})
            result = conn.execute(
                self._inserts["trials"],
                {
                    "number": None,
                    "study_id": study_id,
                    "state": trial.state,
                    "datetime_start": _utc_naive(trial.datetime_start),
                    "datetime_complete": _utc_naive(trial.datetime_complete),
                },
            )
            key = result.inserted_primary_key
            assert key is not None
            trial_id = int(key[0])
            number = int(
                conn.execute(self._count_before, {"sid": study_id, "tid": trial_id}).scalar_one()
            )
            conn.execute(self._set_number, {"tid": trial_id, "n": number})
            if trial.values is not None:
                rows = []
                for objective, v in enumerate(trial.values):
                    stored, kind = m.TrialValueModel.value_to_stored_repr(v)
                    rows.append(
                        {"trial_id": trial_id, "objective": objective, "value": stored,
                         "value_type": kind}
                    )  # fmt: skip
                conn.execute(self._inserts["trial_values"], rows)
            if trial.params:
                conn.execute(
                    self._inserts["trial_params"],
                    [
                        {"trial_id": trial_id, "param_name": name,
                         "param_value": trial.distributions[name].to_internal_repr(value),
                         "distribution_json": self._json(name, trial.distributions[name])}
                        for name, value in trial.params.items()
                    ],
                )  # fmt: skip
            for table, attrs in (
                ("trial_user_attributes", trial.user_attrs),
                ("trial_system_attributes", trial.system_attrs),
            ):
                if attrs:
                    conn.execute(
                        self._inserts[table],
                        [
                            {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                            for k, v in attrs.items()
                        ],
                    )
            if trial.intermediate_values:
                to_stored = m.TrialIntermediateValueModel.intermediate_value_to_stored_repr
                rows = []
                for step, v in trial.intermediate_values.items():
                    stored_iv, iv_kind = to_stored(v)
                    rows.append(
                        {"trial_id": trial_id, "step": step, "intermediate_value": stored_iv,
                         "intermediate_value_type": iv_kind}
                    )  # fmt: skip
                conn.execute(self._inserts["trial_intermediate_values"], rows)
        return trial_id, number


def _utc_naive(when: datetime.datetime | None) -> datetime.datetime | None:
    """Optuna's RDB stores naive UTC (``optuna/storages/_rdb/models.py``, TrialModel)."""
    if when is None:
        return None
    return when.astimezone(datetime.timezone.utc).replace(tzinfo=None)


__all__ = [
    "TESTED_OPTUNA",
    "BaseHeartbeat",
    "FrozenStudy",
    "TrialWriter",
    "cached",
    "sql_trial_writer",
    "stale_trial_ids",
    "unwrap_cached",
]
