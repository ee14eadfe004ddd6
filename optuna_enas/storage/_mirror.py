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
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial


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
        directions: Directions for a new study (default minimize).
    """

    def __init__(
        self,
        storage: str | BaseStorage,
        *,
        study_name: str,
        directions: list[optuna.study.StudyDirection] | None = None,
    ) -> None:
        self._study = optuna.create_study(
            storage=storage,
            study_name=study_name,
            directions=directions,
            load_if_exists=True,
        )
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self.n_written = 0
        self._thread = threading.Thread(target=self._run, name="optuna-enas-mirror", daemon=True)
        self._thread.start()

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self._error is not None:
            raise RuntimeError("TrialMirror stopped after a write error") from self._error
        self._queue.put(trial)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
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
