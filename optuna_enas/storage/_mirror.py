"""Keep a fast in-memory study durable: copy each finished trial to a storage in the background.

Optuna writes every ``suggest`` to its storage: about 30 writes per trial for the 23-decision RNN
cell, which costs ~60 ms per trial on SQLite and ~100 ms on a journal file with fsync (see
BENCHMARKS.md). ENAS wants ~10^5 trials. :class:`TrialMirror` runs the study in memory and
copies each *finished* trial to the durable storage as one ``add_trial`` (one journal record, one
fsync) on a background thread, off the trial's critical path. :func:`load_study_in_memory`
reads the mirror back to resume. What a crash can lose: the trials still in the queue (those
that finished within the last few milliseconds) and the running ones.

For several worker processes, use a shared RDB or journal storage directly instead (each
ENASSampler learns from the others' trials through it).

:class:`~optuna_enas.storage.BatchedStorage` is the exact alternative (the CLI's default): one
study object, each finished trial written in one transaction before ``tell`` returns, so a
crash loses only the running trial; about as fast (BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from optuna_enas.storage._url import storage_url


_logger = logging.getLogger(__name__)
_STOP = object()


class TrialMirror:
    """An Optuna callback that copies finished trials to ``storage`` on a background thread.

    Example:
        .. code-block:: python

            journal = JournalStorage(JournalFileBackend("nas.log"))
            study = load_study_in_memory(journal, "nas", sampler=ENASSampler(space, seed=0))
            with TrialMirror(journal, study_name="nas", directions=study.directions) as mirror:
                study.optimize(objective, n_trials=100_000, callbacks=[mirror])

    Args:
        storage: The durable storage (URL or object), e.g. a ``JournalStorage``.
        study_name: The study to write to; created if it does not exist.
        directions: Directions for a new durable study. Default: those of the study being
            mirrored (read at its first finished trial). A durable study whose directions differ
            from the mirrored study's is refused with a ``ValueError`` at the first trial.
    """

    def __init__(
        self,
        storage: str | BaseStorage,
        *,
        study_name: str,
        directions: list[optuna.study.StudyDirection] | None = None,
    ) -> None:
        self._storage = storage_url(storage) if isinstance(storage, str) else storage
        self._study_name = study_name
        self._study: optuna.Study | None = None
        self._checked = False
        if directions is not None:
            self._study = self._durable(directions)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self.n_written = 0
        self._thread = threading.Thread(target=self._run, name="optuna-enas-mirror", daemon=True)
        self._thread.start()

    def _durable(self, directions: list[optuna.study.StudyDirection]) -> optuna.Study:
        # Load an existing study as it is: create_study(load_if_exists=True) would first log a
        # create record with ``directions`` into a journal even when the study exists.
        storage = optuna.storages.get_storage(self._storage)
        if any(s.study_name == self._study_name for s in storage.get_all_studies()):
            return optuna.load_study(study_name=self._study_name, storage=storage)
        return optuna.create_study(
            storage=storage, study_name=self._study_name, directions=directions
        )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self._error is not None:
            raise RuntimeError("TrialMirror stopped after a write error") from self._error
        if self._study is None:
            self._study = self._durable(study.directions)
        if not self._checked:
            mine = [d.name.lower() for d in self._study.directions]
            theirs = [d.name.lower() for d in study.directions]
            if mine != theirs:
                raise ValueError(
                    f"directions: the durable study {self._study_name!r} has directions {mine}, "
                    f"but the mirrored study has {theirs}; pass directions=study.directions "
                    "(or another study_name)."
                )
            self._checked = True
        self._queue.put(trial)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                assert self._study is not None  # set by __call__ before the first put
                self._study.add_trial(item)
                self.n_written += 1
            except BaseException as e:  # keep the first error; the callback re-raises it
                _logger.error(f"could not mirror trial {item.number}: {e}")
                self._error = e
                return

    def close(self) -> None:
        """Write every queued trial, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            raise RuntimeError("TrialMirror could not write every trial") from self._error

    def __enter__(self) -> TrialMirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_study_in_memory(
    storage: str | BaseStorage,
    study_name: str,
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    directions: list[optuna.study.StudyDirection] | None = None,
) -> optuna.Study:
    """An in-memory copy of ``study_name`` (empty, with ``directions``, if it does not exist)."""
    if isinstance(storage, str):
        storage = storage_url(storage)
    durable = optuna.create_study(
        storage=storage, study_name=study_name, directions=directions, load_if_exists=True
    )
    study = optuna.create_study(
        sampler=sampler, pruner=pruner, directions=durable.directions, study_name=study_name
    )
    for key, value in durable.user_attrs.items():
        study.set_user_attr(key, value)
    study.add_trials(durable.get_trials(deepcopy=False))
    return study
