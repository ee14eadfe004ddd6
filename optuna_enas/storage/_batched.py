"""A storage that writes a trial once: one transaction (or one journal record) per trial.

Why: Optuna writes every ``suggest`` and every attribute to its storage as its own transaction.
The 23 decisions of the paper's RNN cell cost ~99 ms per trial on SQLite and ~96 ms on
PostgreSQL (issue #13), more than a frozen-weight evaluation. :class:`BatchedStorage` wraps an
Optuna storage and keeps a trial's writes in memory until the trial finishes, then writes the
whole trial with Optuna's public ``create_new_trial(study_id, template_trial=finished_trial)``:
one transaction on an ``RDBStorage`` (SQLite, PostgreSQL...), one record on a
``JournalStorage``. On an ``RDBStorage`` of a tested Optuna release the same rows are written
by :func:`optuna_enas.storage._compat.sql_trial_writer` (a few SQL statements in one
transaction instead of Optuna's ORM path: 4.5-5.4 ms of CPU per 23-parameter trial instead of
37-41 ms); it is used only where a test shows it writes what ``create_new_trial`` writes.
Nothing else reaches into Optuna's tables or caches; every private name the wrapper needs is
in :mod:`optuna_enas.storage._compat`, each with a test.

Two modes:

``exclusive=True`` (single writer per study; the CLI's default storage).
    A trial created by ``study.ask()`` exists only in memory while it runs: its id is a
    negative number until it is written. When it finishes, the whole trial (state, values,
    parameters, attributes, intermediate values) is written at once; from then on, and in
    every trial an Optuna callback or a read of the study gets, the trial has its id in the
    storage (the negative id keeps working for lookups). Reads are served from an in-memory
    copy of the study, loaded once and updated by every write this object makes, so the
    sampler's per-trial reads cost no query; the copy equals what the storage holds
    (``tests/test_storage_property.py`` compares them after every step of random sequences).

    Trials are written in number order. A trial that finishes (or is enqueued, or added with
    ``study.add_trial``) while an earlier-numbered trial still runs in memory first writes that
    earlier trial as a RUNNING row (its later writes then go straight to the storage, one
    write each, as do those of an enqueued trial: both are rare).

    The declaration: this object is the only writer of the trials of the studies it writes
    (the CLI holds a per-study lock; see ``optuna_enas/cli/_lock.py``). The storage numbers a
    trial inside the transaction that writes it (Optuna counts the study's earlier rows), so
    two writers never produce one number twice; a write whose number is not the one this
    writer expected means a second writer: the call raises a ``RuntimeError`` naming the
    study, and every later write of this object to that study is refused before it is made.
    RUNNING trials found in the storage when this object first writes a study belong to a
    dead process: they are marked FAIL, and count as not run.

``exclusive=False`` (several workers on one study, e.g. PostgreSQL).
    Every call goes straight to the storage, through the cache ``optuna.create_study`` puts
    around an ``RDBStorage``: exactly Optuna's own behaviour (a running trial's parameters
    and ``enas:sample`` are in the storage as soon as they are set, so a heartbeat's retry
    replays the same architecture; a trial another worker failed is refused at ``tell``).
    There is no batching in this mode: each write is its own transaction, as in Optuna.

What a crash (the process killed at any instant) can lose:

* ``exclusive=True``: only the trials that were running. Every finished trial's write
  committed before ``tell`` returned; a trial never is half-written (one transaction). The
  killed trial is not in the storage at all, so a resumed study runs it again under the same
  trial number (ENASSampler's draw for a number is seeded by it: the rerun samples the same
  architecture). A running trial written early (above) is RUNNING in the storage and is
  failed by the next writer.
* ``exclusive=False``: what Optuna's storage loses; the trials stay RUNNING until the
  heartbeat (if configured) or :func:`fail_running_trials` marks them FAIL.

SQLite: :func:`configure_sqlite` puts the database in WAL mode (one append per commit instead
of a rollback journal) with ``synchronous=FULL`` (each commit is fsynced: durable also across
power loss) or ``NORMAL`` (durable across process crashes; a power loss can drop the last
commits but never corrupts the file), and makes a writer wait up to ``busy_timeout`` seconds
for another process's write lock. :func:`leave_wal` turns WAL off again when the last writer is
done, so a finished database file can be copied and opened read-only by any SQLite reader.
See https://www.sqlite.org/wal.html and https://www.sqlite.org/pragma.html#pragma_synchronous.
"""

from __future__ import annotations

import copy
import datetime
import json
import threading
import weakref
from collections.abc import Callable
from collections.abc import Container
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import optuna
import sqlalchemy
from optuna.distributions import BaseDistribution
from optuna.distributions import check_distribution_compatibility
from optuna.storages import BaseStorage
from optuna.storages import RDBStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_enas.storage import _compat
from optuna_enas.storage._compat import BaseHeartbeat
from optuna_enas.storage._compat import FrozenStudy


_FINISHED = frozenset({TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL})
_UNFINISHED = frozenset({TrialState.RUNNING, TrialState.WAITING})
SQLITE_SYNCHRONOUS = ("full", "normal")
_PRAGMAS: weakref.WeakKeyDictionary[Any, Callable[[Any, Any], None]] = (
    weakref.WeakKeyDictionary()
)  # engine -> the connect listener configure_sqlite added
SQLITE_BUSY_TIMEOUT_S = 600.0
"""How long a SQLite writer waits for another process's write lock before it gives up."""


class SecondWriterError(RuntimeError):
    """Another process wrote trials to a study a ``BatchedStorage(exclusive=True)`` writes."""


def configure_sqlite(
    storage: RDBStorage,
    *,
    synchronous: str = "full",
    busy_timeout: float = SQLITE_BUSY_TIMEOUT_S,
) -> None:
    """WAL journal, ``synchronous`` and ``busy_timeout`` for a SQLite ``RDBStorage``.

    A no-op for other databases. ``synchronous``: ``"full"`` (fsync each commit) or
    ``"normal"`` (see the module docstring). ``busy_timeout``: seconds a write waits for
    another process's write lock (SQLite's ``PRAGMA busy_timeout``).
    """
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(
            f"synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS)}, but got {synchronous!r}."
        )
    if (
        isinstance(busy_timeout, bool)
        or not isinstance(busy_timeout, (int, float))
        or not 0 <= busy_timeout <= 86400
    ):
        raise ValueError(f"busy_timeout must be in [0, 86400] seconds, but got {busy_timeout!r}.")
    engine = storage.engine
    if engine.dialect.name != "sqlite":
        return
    pragmas = (
        "PRAGMA journal_mode=WAL",
        f"PRAGMA synchronous={synchronous.upper()}",
        f"PRAGMA busy_timeout={int(busy_timeout * 1000)}",
    )

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    previous = _PRAGMAS.pop(engine, None)
    if previous is not None:
        sqlalchemy.event.remove(engine, "connect", previous)
    sqlalchemy.event.listen(engine, "connect", on_connect)
    _PRAGMAS[engine] = on_connect
    engine.dispose()  # connections opened before the listener get the pragmas when reopened


def leave_wal(storage: RDBStorage) -> bool:
    """Turn a SQLite database back to SQLite's default journal (``DELETE``); True if done.

    WAL needs a ``-shm`` file next to the database, so a WAL database on read-only media
    cannot be opened by readers that cannot create it. Call it when the study's last writer
    is done; it does nothing (False) while another connection still uses the file, or for
    other databases.
    """
    engine = storage.engine
    if engine.dialect.name != "sqlite":
        return False
    listener = _PRAGMAS.pop(engine, None)
    if listener is not None:  # new connections stay out of WAL
        sqlalchemy.event.remove(engine, "connect", listener)
    storage.remove_session()
    engine.dispose()
    try:
        with engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode=DELETE").scalar()
    except sqlalchemy.exc.OperationalError:
        return False
    finally:
        engine.dispose()
    return str(mode).lower() == "delete"


def _same(a: BaseDistribution, b: BaseDistribution) -> bool:
    """Equal distributions, compared fast (the distribution classes are plain attributes)."""
    return a is b or (type(a) is type(b) and a.__dict__ == b.__dict__)


def _json_value(value: Any) -> Any:
    """``value`` as the storage will return it: a snapshot through JSON (refuses non-JSON)."""
    return json.loads(json.dumps(value))


def _copy_trial(trial: FrozenTrial) -> FrozenTrial:
    """A copy whose dicts are new (what ``Trial`` mutates); the values in them are shared."""
    found = copy.copy(trial)
    found.params = dict(trial.params)
    found.distributions = dict(trial.distributions)
    found.user_attrs = dict(trial.user_attrs)
    found.system_attrs = dict(trial.system_attrs)
    found.intermediate_values = dict(trial.intermediate_values)
    return found


@dataclass
class _Live:
    """An unfinished trial this object writes (exclusive mode)."""

    study_id: int
    trial: FrozenTrial  # the view: also the study cache's entry for its number
    stored: bool  # the row exists in the storage: every write goes straight to it


@dataclass
class _StudyCache:
    """Exclusive mode: every trial of one study, by number, as the storage holds them."""

    trials: list[FrozenTrial]
    distributions: dict[str, BaseDistribution]
    open: set[int] = field(default_factory=set)  # numbers of unfinished trials
    views: dict[frozenset[TrialState], list[FrozenTrial]] = field(default_factory=dict)
    unsorted: set[frozenset[TrialState]] = field(default_factory=set)
    checked: bool = False  # stale RUNNING trials failed
    refused: str | None = None  # a second writer was found: why every write is refused

    def add_finished(self, trial: FrozenTrial) -> None:
        for key, view in self.views.items():
            if trial.state in key:
                if view and view[-1].number > trial.number:
                    self.unsorted.add(key)
                view.append(trial)

    def view(self, key: frozenset[TrialState]) -> list[FrozenTrial]:
        found = self.views.get(key)
        if found is None:
            found = [t for t in self.trials if t.state in key]
            self.views[key] = found
        elif key in self.unsorted:
            found.sort(key=lambda t: t.number)
            self.unsorted.discard(key)
        return found

    def select(self, states: Container[TrialState] | None) -> list[FrozenTrial]:
        if states is None:
            return list(self.trials)
        key = frozenset(s for s in TrialState if s in states)
        finished = list(self.view(key & _FINISHED)) if key & _FINISHED else []
        if not key & _UNFINISHED:
            return finished
        unfinished = [self.trials[n] for n in sorted(self.open) if self.trials[n].state in key]
        if not finished:
            return unfinished
        return sorted(finished + unfinished, key=lambda t: t.number)


class BatchedStorage(BaseStorage, BaseHeartbeat):
    """An Optuna storage that writes each trial in one transaction (see the module docstring).

    Example:
        .. code-block:: python

            rdb = optuna.storages.RDBStorage("sqlite:///nas.db")
            configure_sqlite(rdb)
            storage = BatchedStorage(rdb)  # exclusive=True: this process is the only writer
            study = optuna.create_study(storage=storage, study_name="nas", load_if_exists=True)
            study.optimize(objective, n_trials=10_000)

    Args:
        backend: The durable Optuna storage: an ``RDBStorage`` (or a URL for one), a
            ``JournalStorage``, or any other Optuna storage.
        exclusive: ``True``: this object is the only writer of the trials of the studies it
            writes; running trials live in memory and each finished trial is one write.
            ``False``: several writers; every call goes straight to the storage.
    """

    def __init__(self, backend: BaseStorage | str, *, exclusive: bool = True) -> None:
        if not isinstance(exclusive, bool):
            raise ValueError(f"exclusive must be True or False, but got {exclusive!r}.")
        if isinstance(backend, str):
            from optuna_enas.storage._url import storage_url

            backend = RDBStorage(storage_url(backend))
        if isinstance(backend, BatchedStorage) or not isinstance(backend, BaseStorage):
            raise ValueError(
                f"backend must be an Optuna storage (not a BatchedStorage), but got {backend!r}."
            )
        inner = _compat.unwrap_cached(backend)
        self._rdb: RDBStorage | None = inner if isinstance(inner, RDBStorage) else None
        self._inner = inner
        if not exclusive and self._rdb is not None:
            inner = _compat.cached(self._rdb)  # what optuna.create_study would read through
        self._backend = inner
        self._sql_writer = (
            _compat.sql_trial_writer(self._rdb) if exclusive and self._rdb is not None else None
        )
        self.exclusive = exclusive
        self._lock = threading.RLock()
        self._live: dict[int, _Live] = {}  # by the id the storage gave (or the temporary id)
        self._alias: dict[int, int] = {}  # temporary id -> id in the storage
        self._next_temp_id = -1
        self._studies: dict[int, _StudyCache] = {}
        self._trial_study: dict[int, int] = {}  # trial id -> study id
        self._by_id: dict[int, FrozenTrial] = {}  # trial id -> the study cache's entry
        self.n_transactions = 0
        """Trial writes made in exclusive mode: one per ``create_new_trial`` on the storage (a
        finished trial, an enqueued one, an early RUNNING row) and one per end of a trial
        whose row already existed. What the tests count."""

    @property
    def backend(self) -> BaseStorage:
        """The wrapped storage (an ``RDBStorage`` itself, not Optuna's cache around it)."""
        return self._inner

    @property
    def url(self) -> str | None:
        """The database URL of an RDB backend, else None."""
        return None if self._rdb is None else str(self._rdb.url)

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a BatchedStorage holds unwritten trials and cannot be pickled.")

    def reload(self) -> None:
        """Forget what was read (exclusive mode): the next access reads the backend again.

        For a writer that starts after another one stopped (the CLI calls it once it holds the
        study's lock). Refused while this object has running trials.
        """
        with self._lock:
            if self._live:
                raise RuntimeError("reload: this storage has running trials.")
            self._studies.clear()
            self._by_id.clear()
            self._trial_study.clear()

    # -- studies: passed through ---------------------------------------------------------------
    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        return self._backend.create_new_study(directions, study_name)

    def delete_study(self, study_id: int) -> None:
        with self._lock:
            self._studies.pop(study_id, None)
            self._backend.delete_study(study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._backend.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._backend.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._backend.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._backend.get_study_name_from_id(study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self._backend.get_study_directions(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._backend.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._backend.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[FrozenStudy]:
        return self._backend.get_all_studies()

    def remove_session(self) -> None:
        self._backend.remove_session()

    # -- exclusive mode: the study cache -------------------------------------------------------
    def _cache(self, study_id: int) -> _StudyCache:
        cache = self._studies.get(study_id)
        if cache is None:
            trials = sorted(
                self._backend.get_all_trials(study_id, deepcopy=True), key=lambda t: t.number
            )
            dists: dict[str, BaseDistribution] = {}
            for t in trials:
                for name, dist in t.distributions.items():
                    dists.setdefault(name, dist)
            cache = _StudyCache(trials=list(trials), distributions=dists)
            cache.open = {t.number for t in trials if not t.state.is_finished()}
            self._studies[study_id] = cache
            for t in trials:
                self._trial_study[t._trial_id] = study_id
                self._by_id[t._trial_id] = t
        return cache

    def _prepare_to_write(self, study_id: int) -> _StudyCache:
        """The cache, after failing RUNNING trials a dead process left (exclusive mode)."""
        cache = self._cache(study_id)
        if cache.refused is not None:
            raise SecondWriterError(cache.refused)
        if cache.checked:
            return cache
        for number in sorted(cache.open):
            t = cache.trials[number]
            if t.state == TrialState.RUNNING and t._trial_id not in self._live:
                self._backend.set_trial_state_values(t._trial_id, TrialState.FAIL)
                self._replace(cache, self._backend.get_trial(t._trial_id))
        cache.checked = True
        return cache

    def _replace(self, cache: _StudyCache, stored: FrozenTrial) -> None:
        """Put the storage's copy of a trial in the cache (its number's entry)."""
        cache.trials[stored.number] = stored
        self._by_id[stored._trial_id] = stored
        if stored.state.is_finished():
            cache.open.discard(stored.number)
            cache.add_finished(stored)
        else:
            cache.open.add(stored.number)

    # -- trials --------------------------------------------------------------------------------
    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if not self.exclusive:
            return self._backend.create_new_trial(study_id, template_trial)
        with self._lock:
            cache = self._prepare_to_write(study_id)
            number = len(cache.trials)
            if template_trial is None:  # ask: in memory until it finishes
                trial_id = self._next_temp_id
                self._next_temp_id -= 1
                frozen = FrozenTrial(
                    number=number,
                    state=TrialState.RUNNING,
                    value=None,
                    datetime_start=datetime.datetime.now(),
                    datetime_complete=None,
                    params={},
                    distributions={},
                    user_attrs={},
                    system_attrs={},
                    intermediate_values={},
                    trial_id=trial_id,
                )
                self._live[trial_id] = _Live(study_id, frozen, stored=False)
                cache.trials.append(frozen)
                cache.open.add(number)
                self._trial_study[trial_id] = study_id
                self._by_id[trial_id] = frozen
                return trial_id
            # enqueue_trial (WAITING) or add_trial (finished): written at once, whole.
            frozen = copy.deepcopy(template_trial)
            frozen.number = number
            frozen._trial_id = self._next_temp_id  # the template's own id means nothing here
            self._next_temp_id -= 1
            frozen.user_attrs = _json_value(frozen.user_attrs)
            frozen.system_attrs = _json_value(frozen.system_attrs)
            for name, dist in frozen.distributions.items():
                previous = cache.distributions.get(name)
                if previous is not None and not _same(previous, dist):
                    check_distribution_compatibility(previous, dist)
            cache.trials.append(frozen)
            cache.open.add(number)
            try:
                trial_id = self._write(study_id, cache, frozen)
            except BaseException:
                if cache.trials and cache.trials[-1] is frozen:
                    cache.trials.pop()
                    cache.open.discard(number)
                raise
            for name, dist in frozen.distributions.items():
                cache.distributions.setdefault(name, dist)
            return trial_id

    def _write(self, study_id: int, cache: _StudyCache, frozen: FrozenTrial) -> int:
        """Write ``frozen`` (the cache's entry for its number) whole; its id in the storage.

        Earlier-numbered trials still in memory are written first (as they are now), so the
        storage numbers every trial as this writer did.
        """
        for earlier in sorted(cache.open):
            if earlier >= frozen.number:
                break
            entry = cache.trials[earlier]
            temp_id = entry._trial_id
            live = self._live.get(temp_id)
            if live is not None and not live.stored:
                real = self._write_one(study_id, cache, entry)
                del self._live[temp_id]
                live.stored = True
                self._live[real] = live
        return self._write_one(study_id, cache, frozen)

    def _write_one(self, study_id: int, cache: _StudyCache, frozen: FrozenTrial) -> int:
        temp_id = frozen._trial_id
        if self._sql_writer is not None:
            trial_id, number = self._sql_writer(study_id, frozen)
        else:
            template = _copy_trial(frozen)
            trial_id = self._backend.create_new_trial(study_id, template_trial=template)
            number = self._backend.get_trial_number_from_id(trial_id)
        self.n_transactions += 1
        if number != frozen.number:
            name = self._backend.get_study_name_from_id(study_id)
            message = (
                f"study {name!r}: another process wrote trials to it (this writer's trial "
                f"{frozen.number} was stored as trial {number}). "
                "BatchedStorage(exclusive=True) must be the study's only writer; use "
                "exclusive=False for several workers. This storage writes no more to the study."
            )
            self._studies[study_id] = fresh = self._cache_from_storage(study_id)
            fresh.refused = message
            if temp_id < 0:
                self._alias[temp_id] = trial_id
            raise SecondWriterError(message)
        if temp_id < 0:
            self._alias[temp_id] = trial_id
            self._by_id.pop(temp_id, None)
        frozen._trial_id = trial_id
        self._trial_study[trial_id] = study_id
        self._replace(cache, frozen)
        return trial_id

    def _cache_from_storage(self, study_id: int) -> _StudyCache:
        self._studies.pop(study_id, None)
        cache = self._cache(study_id)
        cache.checked = True  # the other writer's RUNNING trials are not a dead process's
        return cache

    def _resolve(self, trial_id: int) -> int:
        return self._alias.get(trial_id, trial_id)

    def _open_trial(self, trial_id: int) -> _Live | None:
        """The live trial behind ``trial_id``, taking over an unfinished stored one."""
        real = self._resolve(trial_id)
        live = self._live.get(real)
        if live is not None:
            return live
        entry = self._by_id.get(real)
        if entry is None or entry.state.is_finished():
            return None
        study_id = self._trial_study[real]
        self._prepare_to_write(study_id)
        live = _Live(study_id, entry, stored=True)
        self._live[real] = live
        return live

    def _updatable(self, trial_id: int) -> _Live | None:
        """The live trial to write (exclusive mode); raises for a finished one."""
        live = self._open_trial(trial_id)
        if live is None:
            found = self._by_id.get(self._resolve(trial_id))
            if found is not None:
                self.check_trial_is_updatable(trial_id, found.state)
            return None
        cache = self._studies.get(live.study_id)
        if cache is not None and cache.refused is not None:
            raise SecondWriterError(cache.refused)
        self.check_trial_is_updatable(trial_id, live.trial.state)
        return live

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        if not self.exclusive:
            self._backend.set_trial_param(trial_id, param_name, param_value_internal, distribution)
            return
        with self._lock:
            live = self._updatable(trial_id)
            if live is None:
                self._backend.set_trial_param(
                    self._resolve(trial_id), param_name, param_value_internal, distribution
                )
                return
            own = live.trial.distributions.get(param_name)
            if own is not None:
                check_distribution_compatibility(own, distribution)
            cache = self._studies[live.study_id]
            previous = cache.distributions.get(param_name)
            if previous is not None and not _same(previous, distribution):
                check_distribution_compatibility(previous, distribution)
            if live.stored:
                self._backend.set_trial_param(
                    live.trial._trial_id, param_name, param_value_internal, distribution
                )
            cache.distributions.setdefault(param_name, distribution)
            live.trial.params[param_name] = distribution.to_external_repr(param_value_internal)
            live.trial.distributions[param_name] = distribution

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._set_attr(trial_id, key, value, system=False)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._set_attr(trial_id, key, value, system=True)

    def _set_attr(self, trial_id: int, key: str, value: Any, *, system: bool) -> None:
        if not self.exclusive:
            if system:
                self._backend.set_trial_system_attr(trial_id, key, value)
            else:
                self._backend.set_trial_user_attr(trial_id, key, value)
            return
        with self._lock:
            live = self._updatable(trial_id)
            target = self._resolve(trial_id) if live is None else live.trial._trial_id
            if live is None or live.stored:
                if system:
                    self._backend.set_trial_system_attr(target, key, value)
                else:
                    self._backend.set_trial_user_attr(target, key, value)
            if live is None:
                return
            # A snapshot, as the storage keeps it (a list changed later stays as it was).
            stored = _json_value(value)
            (live.trial.system_attrs if system else live.trial.user_attrs)[key] = stored

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        if not self.exclusive:
            self._backend.set_trial_intermediate_value(trial_id, step, intermediate_value)
            return
        with self._lock:
            live = self._updatable(trial_id)
            target = self._resolve(trial_id) if live is None else live.trial._trial_id
            if live is None or live.stored:
                self._backend.set_trial_intermediate_value(target, step, intermediate_value)
            if live is not None:
                live.trial.intermediate_values[step] = float(intermediate_value)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if not self.exclusive:
            return self._backend.set_trial_state_values(trial_id, state, values)
        with self._lock:
            live = self._updatable(trial_id)
            if live is None:
                return self._backend.set_trial_state_values(self._resolve(trial_id), state, values)
            cache = self._studies[live.study_id]
            if live.stored:
                if not self._backend.set_trial_state_values(live.trial._trial_id, state, values):
                    return False
                stored = self._backend.get_trial(live.trial._trial_id)
                self._replace(cache, stored)
                if state.is_finished():
                    self.n_transactions += 1
                    del self._live[live.trial._trial_id]
                else:
                    live.trial = stored
                return True
            if not state.is_finished():
                return False  # a memory-only trial is RUNNING: "already running"
            final = _copy_trial(live.trial)
            final.state = state
            final.values = None if values is None else [float(v) for v in values]
            final.datetime_complete = datetime.datetime.now()
            temp_id = live.trial._trial_id
            cache.trials[final.number] = final
            try:
                self._write(live.study_id, cache, final)
            except SecondWriterError:
                del self._live[temp_id]
                raise
            except BaseException:
                cache.trials[final.number] = live.trial  # nothing written: tell may retry
                raise
            del self._live[temp_id]
            return True

    # -- reads ---------------------------------------------------------------------------------
    def get_trial(self, trial_id: int) -> FrozenTrial:
        if not self.exclusive:
            return self._backend.get_trial(trial_id)
        with self._lock:
            real = self._resolve(trial_id)
            found = self._by_id.get(real)
            if found is not None:
                # Trial mutates an unfinished trial's copy (its params dict).
                return found if found.state.is_finished() else _copy_trial(found)
        return self._backend.get_trial(real)

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        return dict(self.get_trial(trial_id).system_attrs)

    def get_trial_user_attrs(self, trial_id: int) -> dict[str, Any]:
        return dict(self.get_trial(trial_id).user_attrs)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        if self.exclusive:
            with self._lock:
                cache = self._cache(study_id)
                if 0 <= trial_number < len(cache.trials):
                    return cache.trials[trial_number]._trial_id
        return self._backend.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        if not self.exclusive:
            return self._backend.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        with self._lock:
            trials = self._cache(study_id).select(states)
            return copy.deepcopy(trials) if deepcopy else trials

    # -- heartbeat: the backend's (shared mode) ------------------------------------------------
    def record_heartbeat(self, trial_id: int) -> None:
        if isinstance(self._backend, BaseHeartbeat) and not self.exclusive:
            self._backend.record_heartbeat(trial_id)

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        if isinstance(self._backend, BaseHeartbeat) and not self.exclusive:
            return _compat.stale_trial_ids(self._backend, study_id)
        return []

    def get_heartbeat_interval(self) -> int | None:
        if isinstance(self._backend, BaseHeartbeat) and not self.exclusive:
            return self._backend.get_heartbeat_interval()
        return None

    def get_heartbeat_stale_trial_callback(
        self,
    ) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        if isinstance(self._backend, BaseHeartbeat) and not self.exclusive:
            return self._backend.get_heartbeat_stale_trial_callback()
        return None


def fail_running_trials(storage: BaseStorage, study_name: str) -> list[int]:
    """Mark every RUNNING trial of ``study_name`` FAIL; the numbers of those trials.

    For a study whose workers all stopped (crashed) without a heartbeat: run it before
    restarting them so the dead workers' trials count as not run.
    """
    study_id = storage.get_study_id_from_name(study_name)
    failed = []
    for t in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        failed.append(t.number)
    return failed


__all__ = [
    "SQLITE_BUSY_TIMEOUT_S",
    "SQLITE_SYNCHRONOUS",
    "BatchedStorage",
    "SecondWriterError",
    "configure_sqlite",
    "fail_running_trials",
    "leave_wal",
]
